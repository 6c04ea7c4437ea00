//! `standard-interfaces`: a plugin that reaches the host only through the
//! standard WASI interfaces a Spin or wasmCloud component uses —
//! `wasi:keyvalue` (store, atomics, batch), `wasi:config/store` and
//! `wasi:logging` — and none of Warden's own host services. It exports
//! Warden's `processor` world so that Warden can call it.
//!
//! Options: `op` picks the operation, `bucket` the store (`default`: the
//! plugin's own), `key` the key; the input is the value where one is
//! needed.
//!
//! | op | does | answers |
//! |---|---|---|
//! | `set` / `get` / `exists` / `delete` | one key | the value, `<none>`, `true`/`false`, `ok` |
//! | `incr` | `atomics.increment` by `delta` (1) | the new value |
//! | `fill` | `batch.set-many` of keys `<key>0`..`<key>{count-1}` | `ok` |
//! | `get-many` | `batch.get-many` of the comma-separated `keys` | `k=v` lines, `k=<none>` |
//! | `delete-many` | `batch.delete-many` of `keys` | `ok` |
//! | `count` | every key, page by page with the cursor | `<keys> keys in <pages> pages` |
//! | `open` | opens the bucket `count` times, holding every handle until the call ends | `<count> open` |
//! | `config` | `store.get` of `key`, or `get-all` without one | the value, or `k=v` lines |
//! | `log` | `logging.log` of the input with `level` and `context` | `logged` |

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: [
            "../../wit",
            "../../wit/standard/keyvalue",
            "../../wit/standard/config",
            "../../wit/standard/logging",
        ],
        inline: "
            package example:standard-interfaces;
            world plugin {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
                import wasi:config/store@0.2.0-rc.1;
                import wasi:logging/logging@0.1.0-draft;
                export warden:plugin/plugin@0.1.0;
                export warden:plugin/processing@0.1.0;
            }
        ",
        world: "example:standard-interfaces/plugin",
        generate_all,
    });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use wasi::config::store as config;
    use wasi::keyvalue::{atomics, batch, store};
    use wasi::logging::logging::{self, Level};
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct Standard;

    warden_guest::plugin_lifecycle!(Standard);

    fn kv_error(e: store::Error) -> PluginError {
        match e {
            store::Error::NoSuchStore => PluginError::Unsupported("no such store".into()),
            store::Error::AccessDenied => PluginError::Unsupported("access denied".into()),
            store::Error::Other(m) => PluginError::Internal(m),
        }
    }

    fn config_error(e: config::Error) -> PluginError {
        match e {
            config::Error::Upstream(m) | config::Error::Io(m) => PluginError::Internal(m),
        }
    }

    fn level(name: &str) -> Result<Level, PluginError> {
        Ok(match name {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            "critical" => Level::Critical,
            other => return Err(PluginError::InvalidInput(format!("no level `{other}`"))),
        })
    }

    fn number<T: std::str::FromStr>(value: Option<String>, default: T) -> Result<T, PluginError> {
        value.map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| PluginError::InvalidInput(format!("`{v}` is not a number")))
        })
    }

    impl ProcessorGuest for Standard {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let op = option("op").unwrap_or_default();
            let key = option("key").unwrap_or_default();
            let keys = || -> Vec<String> {
                option("keys")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            let bucket = || {
                store::open(&option("bucket").unwrap_or_else(|| "default".into()))
                    .map_err(kv_error)
            };
            let out: String = match op.as_str() {
                "set" => {
                    bucket()?.set(&key, &request.input).map_err(kv_error)?;
                    "ok".into()
                }
                "get" => match bucket()?.get(&key).map_err(kv_error)? {
                    Some(value) => String::from_utf8_lossy(&value).into_owned(),
                    None => "<none>".into(),
                },
                "exists" => bucket()?.exists(&key).map_err(kv_error)?.to_string(),
                "delete" => {
                    bucket()?.delete(&key).map_err(kv_error)?;
                    "ok".into()
                }
                "incr" => {
                    let delta = number(option("delta"), 1u64)?;
                    atomics::increment(&bucket()?, &key, delta)
                        .map_err(kv_error)?
                        .to_string()
                }
                "fill" => {
                    let count = number(option("count"), 1usize)?;
                    let pairs: Vec<(String, Vec<u8>)> = (0..count)
                        .map(|i| (format!("{key}{i}"), request.input.clone()))
                        .collect();
                    batch::set_many(&bucket()?, &pairs).map_err(kv_error)?;
                    "ok".into()
                }
                "open" => {
                    let count = number(option("count"), 1usize)?;
                    let held = (0..count).map(|_| bucket()).collect::<Result<Vec<_>, _>>()?;
                    format!("{} open", held.len())
                }
                "get-many" => batch::get_many(&bucket()?, &keys())
                    .map_err(kv_error)?
                    .into_iter()
                    .zip(keys())
                    .map(|(found, asked)| match found {
                        Some((k, v)) => format!("{k}={}\n", String::from_utf8_lossy(&v)),
                        None => format!("{asked}=<none>\n"),
                    })
                    .collect(),
                "delete-many" => {
                    batch::delete_many(&bucket()?, &keys()).map_err(kv_error)?;
                    "ok".into()
                }
                "count" => {
                    let bucket = bucket()?;
                    let (mut keys, mut pages, mut cursor) = (0, 0, None);
                    loop {
                        let page = bucket.list_keys(cursor).map_err(kv_error)?;
                        keys += page.keys.len();
                        pages += 1;
                        cursor = page.cursor;
                        if cursor.is_none() {
                            break;
                        }
                    }
                    format!("{keys} keys in {pages} pages")
                }
                "config" if key.is_empty() => config::get_all()
                    .map_err(config_error)?
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect(),
                "config" => config::get(&key)
                    .map_err(config_error)?
                    .unwrap_or_else(|| "<none>".into()),
                "log" => {
                    let level = level(&option("level").unwrap_or_else(|| "info".into()))?;
                    let context = option("context").unwrap_or_default();
                    logging::log(level, &context, &String::from_utf8_lossy(&request.input));
                    "logged".into()
                }
                other => {
                    return Err(PluginError::InvalidInput(format!(
                        "unknown op `{other}`; see the crate docs for the ops"
                    )));
                }
            };
            Ok(ProcessResponse {
                output: out.into_bytes(),
                content_type: "text/plain; charset=utf-8".into(),
                items_processed: 1,
            })
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(Standard);
}
