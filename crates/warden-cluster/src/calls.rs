//! Calls across nodes. Each node listens on one subject per plugin it has,
//! in one queue group, so NATS hands each forwarded call to one of the
//! nodes that has the plugin; a node that dies is out of the group as soon
//! as its connection drops. A node serves at most `max_concurrency`
//! forwarded calls at once and answers the rest busy at once, and never
//! forwards a call it was forwarded.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use futures::StreamExt;
use tokio::task::JoinHandle;
use warden_server::remote::{RemoteAnswer, RemoteCall};

use crate::wire;
use crate::{ClusterSettings, Inner};

/// How often the subscriptions are matched to the plugins loaded here.
const RECONCILE_EVERY: Duration = Duration::from_millis(250);

/// Sends `call` to a node that has its plugin. `None`: no node has it.
pub(crate) async fn forward(inner: &Inner, call: RemoteCall) -> Option<RemoteAnswer> {
    let plugin = call
        .target
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string();
    // The name comes from the request's path: only a valid plugin name may
    // become a subject (a long or odd one would make the NATS server drop
    // this node's connection).
    if warden::validate_name(&plugin).is_err() {
        return None;
    }
    let max_payload = inner.client.server_info().max_payload;
    if call.input.len() > max_payload {
        return Some(RemoteAnswer::problem(
            413,
            "too-large-to-forward",
            format!(
                "`{plugin}` is on another node, and the input of {} bytes is larger than the \
                 {max_payload} bytes a cluster message may carry (`max_payload` of the NATS server)",
                call.input.len()
            ),
            &inner.node,
        ));
    }
    let request = async_nats::Request::new()
        .headers(wire::call_headers(&call))
        .payload(call.input.clone())
        .timeout(Some(call.timeout));
    inner.forwarded.fetch_add(1, Ordering::Relaxed);
    match inner
        .client
        .send_request(wire::call_subject(&plugin), request)
        .await
    {
        Ok(reply) => match wire::answer_of(reply.headers.as_ref(), reply.payload) {
            Some(answer) => Some(answer),
            None => Some(RemoteAnswer::problem(
                502,
                "bad-forwarded-answer",
                format!("the node serving `{plugin}` sent an answer this node cannot read"),
                &inner.node,
            )),
        },
        Err(e) if e.kind() == RequestErrorKind::NoResponders => None,
        Err(e) if e.kind() == RequestErrorKind::MaxPayloadExceeded => Some(RemoteAnswer::problem(
            413,
            "too-large-to-forward",
            format!(
                "`{plugin}` is on another node, and the call is larger than the {max_payload} \
                 bytes a cluster message may carry (`max_payload` of the NATS server)"
            ),
            &inner.node,
        )),
        Err(e) if e.kind() == RequestErrorKind::TimedOut => Some(RemoteAnswer::problem(
            504,
            "timeout",
            format!(
                "the node serving `{plugin}` did not answer within the call's {:?} deadline",
                call.timeout
            ),
            &inner.node,
        )),
        Err(e) => {
            tracing::warn!(plugin, call_id = call.call_id, error = %e, "forwarding a call failed");
            Some(RemoteAnswer::problem(
                502,
                "forward-failed",
                format!(
                    "forwarding the call to `{plugin}` to another node failed; the server log \
                     has the details under request id {}",
                    call.call_id
                ),
                &inner.node,
            ))
        }
    }
}

/// Keeps one queue subscription per plugin loaded here, for as long as the
/// node runs.
pub(crate) async fn serve(inner: Arc<Inner>) {
    let mut serving: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let mut names: Vec<String> = inner
            .warden
            .plugins()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        names.sort();
        names.dedup();
        serving.retain(|name, task| {
            let keep = names.contains(name) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for name in names {
            if serving.contains_key(&name) {
                continue;
            }
            match inner
                .client
                .queue_subscribe(wire::call_subject(&name), wire::CALL_QUEUE.to_string())
                .await
            {
                Ok(subscriber) => {
                    let task = tokio::spawn(answer_calls(inner.clone(), subscriber));
                    serving.insert(name, task);
                }
                Err(e) => {
                    tracing::warn!(plugin = name, error = %e, "cannot take calls from the cluster")
                }
            }
        }
        tokio::time::sleep(RECONCILE_EVERY).await;
    }
}

/// Answers the calls one subscription brings.
async fn answer_calls(inner: Arc<Inner>, mut subscriber: async_nats::Subscriber) {
    while let Some(message) = subscriber.next().await {
        let Some(reply) = message.reply.clone() else {
            continue;
        };
        let inner = inner.clone();
        let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
            let answer = RemoteAnswer::problem(
                503,
                "busy",
                "this node is serving as many forwarded calls as it may; retry later",
                &inner.node,
            );
            send(&inner, reply, answer).await;
            continue;
        };
        tokio::spawn(async move {
            let max_body = inner.client.server_info().max_payload.saturating_sub(4096);
            let answer = match wire::call_of(
                message.headers.as_ref(),
                message.payload,
                inner.settings.max_call_time,
            ) {
                Ok(call) => match over_limits(&inner.settings, &call) {
                    Some((status, code, detail)) => {
                        RemoteAnswer::problem(status, code, detail, &inner.node)
                    }
                    None => {
                        inner.served.fetch_add(1, Ordering::Relaxed);
                        warden_server::remote::answer(&inner.warden, call, &inner.node, max_body)
                            .await
                    }
                },
                Err(e) => RemoteAnswer::problem(
                    400,
                    "bad-forwarded-call",
                    format!("a forwarded call could not be read: {e}"),
                    &inner.node,
                ),
            };
            send(&inner, reply, answer).await;
            drop(permit);
        });
    }
}

/// What of this node's own request limits a forwarded call breaks, if
/// any: the node that took it applied its limits, and they may be looser.
fn over_limits(
    settings: &ClusterSettings,
    call: &RemoteCall,
) -> Option<(u16, &'static str, String)> {
    if call.input.len() > settings.max_input_bytes {
        return Some((
            413,
            "body-too-large",
            format!(
                "the input is {} bytes, more than the {} this node takes (`server.max-body-bytes`)",
                call.input.len(),
                settings.max_input_bytes
            ),
        ));
    }
    if call.options.len() > settings.max_options {
        return Some((
            400,
            "too-many-options",
            format!(
                "the call has {} options, more than this node's limit of {} (`server.max-options`)",
                call.options.len(),
                settings.max_options
            ),
        ));
    }
    None
}

async fn send(inner: &Inner, reply: async_nats::Subject, answer: RemoteAnswer) {
    let headers = wire::answer_headers(&answer);
    if let Err(e) = inner
        .client
        .publish_with_headers(reply, headers, answer.body)
        .await
    {
        tracing::warn!(error = %e, "cannot send a forwarded call's answer");
    }
}
