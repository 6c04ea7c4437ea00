//! How a forwarded call and its answer travel as NATS messages: the
//! input or the body as the payload, everything else in headers (single
//! line values; the options and response headers as JSON).

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use warden_server::remote::{RemoteAnswer, RemoteCall};

const TARGET: &str = "Warden-Target";
const CALL_ID: &str = "Warden-Call-Id";
const TIMEOUT_MS: &str = "Warden-Timeout-Ms";
const CONTENT_TYPE: &str = "Warden-Content-Type";
const ROUTING_KEY: &str = "Warden-Routing-Key";
const OPTIONS: &str = "Warden-Options";
const STATUS: &str = "Warden-Status";
const NODE: &str = "Warden-Node";
const HEADERS: &str = "Warden-Headers";
const TRACEPARENT: &str = "Warden-Traceparent";

/// The longest trace context taken from a message: a W3C `traceparent` of
/// version 00 is 55 characters, and a longer value would only cost memory
/// to parse.
const MAX_TRACEPARENT: usize = 128;

/// The subject a plugin's calls go to; every node that has the plugin
/// listens on it in one queue group.
pub fn call_subject(plugin: &str) -> String {
    format!("warden.call.{plugin}")
}

/// The queue group of call subjects.
pub const CALL_QUEUE: &str = "warden";

fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.as_str().to_string())
}

/// The headers of a call; the payload is its input.
pub fn call_headers(call: &RemoteCall) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(TARGET, call.target.as_str());
    h.insert(CALL_ID, call.call_id.as_str());
    h.insert(TIMEOUT_MS, call.timeout.as_millis().to_string().as_str());
    if let Some(ct) = &call.content_type {
        h.insert(CONTENT_TYPE, ct.as_str());
    }
    if let Some(key) = &call.routing_key {
        h.insert(ROUTING_KEY, key.as_str());
    }
    if let Some(trace) = &call.trace {
        h.insert(TRACEPARENT, trace.as_str());
    }
    if !call.options.is_empty() {
        h.insert(
            OPTIONS,
            serde_json::to_string(&call.options)
                .unwrap_or_default()
                .as_str(),
        );
    }
    h
}

/// The call a message carries, or what is wrong with it.
pub fn call_of(
    headers: Option<&HeaderMap>,
    payload: Bytes,
    max_timeout: Duration,
) -> Result<RemoteCall, String> {
    let headers = headers.ok_or("the message has no headers")?;
    let target = get(headers, TARGET).ok_or("no target")?;
    let timeout = get(headers, TIMEOUT_MS)
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_millis)
        .ok_or("no timeout")?
        .min(max_timeout);
    let options = match get(headers, OPTIONS) {
        Some(json) => serde_json::from_str(&json).map_err(|e| format!("options: {e}"))?,
        None => Vec::new(),
    };
    Ok(RemoteCall {
        target,
        input: payload,
        options,
        content_type: get(headers, CONTENT_TYPE),
        routing_key: get(headers, ROUTING_KEY),
        call_id: get(headers, CALL_ID).unwrap_or_default(),
        timeout,
        trace: get(headers, TRACEPARENT).filter(|t| t.len() <= MAX_TRACEPARENT),
    })
}

/// The headers of an answer; the payload is its body.
pub fn answer_headers(answer: &RemoteAnswer) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(STATUS, answer.status.to_string().as_str());
    h.insert(NODE, answer.node.as_str());
    h.insert(
        HEADERS,
        serde_json::to_string(&answer.headers)
            .unwrap_or_default()
            .as_str(),
    );
    h
}

/// The answer a reply carries.
pub fn answer_of(headers: Option<&HeaderMap>, payload: Bytes) -> Option<RemoteAnswer> {
    let headers = headers?;
    Some(RemoteAnswer {
        status: get(headers, STATUS)?.parse().ok()?,
        headers: serde_json::from_str(&get(headers, HEADERS)?).ok()?,
        body: payload,
        node: get(headers, NODE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_and_its_answer_survive_the_trip() {
        let call = RemoteCall {
            target: "text-transform@^1".into(),
            input: Bytes::from_static(b"hi"),
            options: vec![("op".into(), "upper".into()), ("x".into(), "a\nb".into())],
            content_type: Some("text/plain".into()),
            routing_key: None,
            call_id: "id-1".into(),
            timeout: Duration::from_secs(30),
            trace: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let back = call_of(
            Some(&call_headers(&call)),
            call.input.clone(),
            Duration::from_secs(5),
        )
        .expect("decodes");
        assert_eq!(back.options, call.options);
        assert_eq!(back.target, call.target);
        assert_eq!(back.trace, call.trace);
        assert_eq!(
            back.timeout,
            Duration::from_secs(5),
            "capped by the server's own limit"
        );
        let answer = RemoteAnswer {
            status: 422,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: Bytes::from_static(b"{}"),
            node: "node-a".into(),
        };
        let back = answer_of(Some(&answer_headers(&answer)), answer.body.clone()).expect("decodes");
        assert_eq!(
            (back.status, back.node, back.headers),
            (422, "node-a".into(), answer.headers)
        );
        assert!(call_of(None, Bytes::new(), Duration::from_secs(1)).is_err());
        let mut long = call_headers(&call);
        long.insert(TRACEPARENT, "0".repeat(MAX_TRACEPARENT + 1).as_str());
        let back = call_of(Some(&long), Bytes::new(), Duration::from_secs(1)).expect("decodes");
        assert_eq!(back.trace, None, "an oversized trace context is dropped");
    }
}
