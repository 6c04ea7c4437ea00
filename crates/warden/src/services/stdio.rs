//! A plugin's stdout and stderr: never inherited from the host, always
//! turned into host log lines, bounded by the call's log budget.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::write_log;
use crate::contract::bindings::types::LogLevel;
use crate::sandbox::CallScope;

/// A partial line longer than this is logged without waiting for its newline.
const MAX_LINE: usize = 4096;

/// The stdout or stderr of every instance of a plugin.
pub(crate) struct GuestOutput {
    scope: Arc<CallScope>,
    stderr: bool,
}

impl GuestOutput {
    pub(crate) fn stdout(scope: Arc<CallScope>) -> Self {
        GuestOutput { scope, stderr: false }
    }

    pub(crate) fn stderr(scope: Arc<CallScope>) -> Self {
        GuestOutput { scope, stderr: true }
    }

    fn sink(&self) -> LineSink {
        LineSink { scope: self.scope.clone(), stderr: self.stderr, pending: Vec::new() }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.sink())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.sink())
    }
}

/// Splits written bytes into lines and logs each one.
struct LineSink {
    scope: Arc<CallScope>,
    stderr: bool,
    pending: Vec<u8>,
}

impl LineSink {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(newline) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LINE {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if self.stderr {
            self.scope.remember_stderr(text);
            write_log(&self.scope, LogLevel::Warn, "stderr", text);
        } else {
            write_log(&self.scope, LogLevel::Info, "stdout", text);
        }
    }
}

impl Drop for LineSink {
    fn drop(&mut self) {
        self.flush_pending();
    }
}

#[async_trait::async_trait]
impl Pollable for LineSink {
    async fn ready(&mut self) {}
}

impl OutputStream for LineSink {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.flush_pending();
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(MAX_LINE)
    }
}

impl AsyncWrite for LineSink {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
