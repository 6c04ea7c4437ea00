//! `url-fetcher`: fetches a URL with the standard `wasi:http/outgoing-handler`
//! and returns the response body. The host only lets requests through to the
//! origins the plugin was granted (`[permissions] http`); the fetcher follows
//! redirects itself, so every hop is checked again.
//!
//! The URL is the `url` option or else the input text. Options:
//! `max-redirects` (default 5), `timeout-ms` (asks the host for shorter
//! connect / first-byte / between-bytes timeouts than its own).

pub mod url;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::url::{self, Target};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingResponse, Method, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    struct Fetcher;

    warden_guest::plugin_lifecycle!(Fetcher);

    /// The error a caller sees for a failed request.
    fn http_error(target: &Target, code: ErrorCode) -> PluginError {
        match code {
            ErrorCode::HttpRequestDenied => PluginError::Unsupported(format!(
                "request to {target} denied by the host: its origin is not in this plugin's \
                 `http` permissions"
            )),
            ErrorCode::HttpResponseBodySize(_) => PluginError::Internal(format!(
                "the response from {target} exceeds the host's size limit"
            )),
            other => PluginError::Internal(format!("fetching {target}: {other:?}")),
        }
    }

    /// Sends one GET and waits for the response head.
    fn send(target: &Target, timeout_ns: Option<u64>) -> Result<IncomingResponse, PluginError> {
        let request = OutgoingRequest::new(Fields::new());
        let scheme = if target.scheme == "http" {
            Scheme::Http
        } else {
            Scheme::Https
        };
        let invalid = |what: &str| PluginError::InvalidInput(format!("{target}: invalid {what}"));
        request
            .set_method(&Method::Get)
            .map_err(|()| invalid("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        request
            .set_authority(Some(&target.authority))
            .map_err(|()| invalid("host"))?;
        request
            .set_path_with_query(Some(&target.path))
            .map_err(|()| invalid("path"))?;
        let options = timeout_ns.map(|ns| {
            let options = RequestOptions::new();
            // The host caps these at its own limits; refusals keep the defaults.
            let _ = options.set_connect_timeout(Some(ns));
            let _ = options.set_first_byte_timeout(Some(ns));
            let _ = options.set_between_bytes_timeout(Some(ns));
            options
        });
        let pending =
            outgoing_handler::handle(request, options).map_err(|e| http_error(target, e))?;
        pending.subscribe().block();
        match pending.get() {
            Some(Ok(Ok(response))) => Ok(response),
            Some(Ok(Err(code))) => Err(http_error(target, code)),
            _ => Err(PluginError::Internal(format!("{target}: no response"))),
        }
    }

    /// Reads the whole body of `response`.
    fn read_body(target: &Target, response: &IncomingResponse) -> Result<Vec<u8>, PluginError> {
        let body = response
            .consume()
            .map_err(|()| PluginError::Internal(format!("{target}: body already read")))?;
        let mut out = Vec::new();
        {
            let stream = body
                .stream()
                .map_err(|()| PluginError::Internal(format!("{target}: no body stream")))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => out.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(match wasip2::http::types::http_error_code(&e) {
                            Some(code) => http_error(target, code),
                            None => PluginError::Internal(format!(
                                "reading {target}: {}",
                                e.to_debug_string()
                            )),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn header(response: &IncomingResponse, name: &str) -> Option<String> {
        let values = response.headers().get(name);
        values
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    impl ProcessorGuest for Fetcher {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let url = match option("url") {
                Some(url) => url,
                None => String::from_utf8_lossy(&request.input).into_owned(),
            };
            let mut target = Target::parse(&url).map_err(PluginError::InvalidInput)?;
            let max_redirects = url::max_redirects(option("max-redirects").as_deref())
                .map_err(PluginError::InvalidInput)?;
            let timeout_ns = match option("timeout-ms") {
                None => None,
                Some(v) => Some(
                    v.trim().parse::<u64>().map_err(|_| {
                        PluginError::InvalidInput(format!(
                            "option `timeout-ms` must be a number, got `{v}`"
                        ))
                    })? * 1_000_000,
                ),
            };
            let mut redirects = 0;
            loop {
                let response = send(&target, timeout_ns)?;
                let status = response.status();
                if url::is_redirect(status) {
                    let location = header(&response, "location").ok_or_else(|| {
                        PluginError::Internal(format!("{target}: redirect without a Location"))
                    })?;
                    if redirects == max_redirects {
                        return Err(PluginError::Internal(format!(
                            "{target}: more than {max_redirects} redirects"
                        )));
                    }
                    redirects += 1;
                    let next = target.join(&location).map_err(PluginError::Internal)?;
                    log(LogLevel::Debug, &format!("{target} redirects to {next}"));
                    target = next;
                    continue;
                }
                let body = read_body(&target, &response)?;
                if !(200..300).contains(&status) {
                    return Err(PluginError::Internal(format!(
                        "{target} answered HTTP {status}"
                    )));
                }
                log(
                    LogLevel::Info,
                    &format!("fetched {target}: {} bytes", body.len()),
                );
                return Ok(ProcessResponse {
                    content_type: header(&response, "content-type")
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    output: body,
                    items_processed: 1,
                });
            }
        }

        fn validate(input: Vec<u8>) -> bool {
            Target::parse(&String::from_utf8_lossy(&input)).is_ok()
        }
    }

    export!(Fetcher);
}
