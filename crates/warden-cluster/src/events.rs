//! Events on every node: each event put on this node's bus is published
//! to the cluster, and each event another node published is put on this
//! node's bus, its source marked `node/source`. A marked event is never
//! published again, so an event crosses the cluster once; its hop count
//! travels with it, so plugins answering each other across nodes stop at
//! the bus's hop limit as they do on one node.

use std::sync::Arc;

use async_nats::HeaderMap;
use futures::StreamExt;
use warden::Event;

use crate::Inner;

/// The subject events travel on.
const SUBJECT: &str = "warden.events";
/// Events waiting to be published; past it, events are dropped (and
/// counted in the log) rather than held.
const QUEUE: usize = 1024;

const TYPE: &str = "Warden-Event-Type";
const SOURCE: &str = "Warden-Event-Source";
const HOPS: &str = "Warden-Event-Hops";
const TIMESTAMP: &str = "Warden-Event-Timestamp";
const ORIGIN: &str = "Warden-Origin";

/// Starts both directions.
pub(crate) fn bridge(inner: Arc<Inner>) -> warden::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(QUEUE);
    let dropped = std::sync::atomic::AtomicU64::new(0);
    inner.warden.subscribe(move |event| {
        if !event.source.contains('/') && tx.try_send(event.clone()).is_err() {
            // The first drop and every thousandth: a flood of events must
            // not become a flood of log lines.
            let n = dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                tracing::warn!(
                    event = event.event_type,
                    dropped = n + 1,
                    "the cluster's event queue is full; events not sent to other nodes"
                );
            }
        }
    })?;
    let out = inner.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let mut headers = HeaderMap::new();
            headers.insert(TYPE, event.event_type.as_str());
            headers.insert(SOURCE, event.source.as_str());
            headers.insert(HOPS, event.hops.to_string().as_str());
            headers.insert(TIMESTAMP, event.timestamp_ms.to_string().as_str());
            headers.insert(ORIGIN, out.node.as_str());
            if let Err(e) = out
                .client
                .publish_with_headers(SUBJECT, headers, event.payload.into())
                .await
            {
                tracing::warn!(error = %e, "cannot publish an event to the cluster");
            }
        }
    });
    tokio::spawn(async move {
        let mut subscriber = match inner.client.subscribe(SUBJECT).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot receive the cluster's events");
                return;
            }
        };
        while let Some(message) = subscriber.next().await {
            let Some(headers) = message.headers.as_ref() else {
                continue;
            };
            let get = |name: &str| headers.get(name).map(|v| v.as_str().to_string());
            let (Some(origin), Some(event_type), Some(source)) =
                (get(ORIGIN), get(TYPE), get(SOURCE))
            else {
                continue;
            };
            if origin == inner.node || Event::check_type(&event_type).is_err() {
                continue;
            }
            let mut event = Event::new(
                event_type,
                message.payload.to_vec(),
                &format!("{origin}/{source}"),
            );
            event.hops = get(HOPS).and_then(|h| h.parse().ok()).unwrap_or(0);
            if let Some(ts) = get(TIMESTAMP).and_then(|t| t.parse().ok()) {
                event.timestamp_ms = ts;
            }
            inner.warden.publish(event);
        }
    });
    Ok(())
}
