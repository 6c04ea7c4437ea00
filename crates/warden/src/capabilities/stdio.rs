//! A plugin's stdout and stderr: never inherited from the host, always
//! turned into host log lines (through the call's [`CallScope`]), bounded
//! by the call's log budget.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::scope::{CallScope, Stream};

/// How much a guest may write in one go; the scope buffers it anyway.
const WRITE_PERMIT: usize = 64 << 10;

/// The stdout or stderr of one instance.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    scope: Arc<CallScope>,
    stream: Stream,
}

impl GuestOutput {
    pub(crate) fn stdout(scope: Arc<CallScope>) -> Self {
        GuestOutput {
            scope,
            stream: Stream::Stdout,
        }
    }

    pub(crate) fn stderr(scope: Arc<CallScope>) -> Self {
        GuestOutput {
            scope,
            stream: Stream::Stderr,
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.scope.write_output(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.scope.write_output(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
