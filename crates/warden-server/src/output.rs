//! What a plugin call's HTTP response looks like, wherever it is made: on
//! the node that took the request, or on the node a cluster forwarded it
//! to.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use warden::ProcessResponse;

/// The header whose value keeps a caller on one side of a canary.
pub const ROUTING_KEY_HEADER: &str = "x-warden-routing-key";
/// The response header naming the plugin version that answered.
pub const VERSION_HEADER: &str = "x-warden-version";
/// The response header with the call's duration in milliseconds.
pub const DURATION_HEADER: &str = "x-warden-duration-ms";
/// The response header with the plugin's count of items processed.
pub const ITEMS_HEADER: &str = "x-warden-items";

/// The response for a call's output, `millis` after it started.
pub(crate) fn output_response(r: ProcessResponse, millis: f64) -> Response {
    let mut response = r.output.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&r.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    // A plugin's output is the plugin's: served on the dashboard's origin,
    // HTML from it must not run as a page of that origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&r.version) {
        headers.insert(VERSION_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{millis:.3}")) {
        headers.insert(DURATION_HEADER, v);
    }
    headers.insert(ITEMS_HEADER, HeaderValue::from(r.items_processed));
    response
}
