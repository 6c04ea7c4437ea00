//! `counter`: counters and small records in the host's key-value store
//! (`warden:plugin/store`). The `store` option picks a named shared store;
//! without it the plugin's own namespace is used.

pub mod ops;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::ops::{self, Op};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::store::{self, StoreError};
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct Counter;

    warden_guest::plugin_lifecycle!(Counter);

    fn store_error(e: StoreError) -> PluginError {
        match e {
            StoreError::InvalidKey(m)
            | StoreError::ValueTooLarge(m)
            | StoreError::NotANumber(m) => PluginError::InvalidInput(m),
            StoreError::QuotaExceeded(m) => PluginError::Internal(format!("quota exceeded: {m}")),
            StoreError::NoSuchStore(m) => PluginError::Unsupported(m),
            StoreError::Internal(m) => PluginError::Internal(m),
        }
    }

    fn text(output: impl Into<Vec<u8>>) -> ProcessResponse {
        ProcessResponse {
            output: output.into(),
            content_type: "text/plain; charset=utf-8".into(),
            items_processed: 1,
        }
    }

    impl ProcessorGuest for Counter {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let name = option("store").unwrap_or_default();
            let op = ops::parse(option).map_err(PluginError::InvalidInput)?;
            let out = match op {
                Op::Incr { key, delta } => store::increment(&name, &key, delta)
                    .map_err(store_error)?
                    .to_string(),
                Op::Get { key } => match store::get(&name, &key).map_err(store_error)? {
                    Some(value) => return Ok(text(value)),
                    None => "<none>".to_string(),
                },
                Op::Set { key } => {
                    store::set(&name, &key, &request.input).map_err(store_error)?;
                    "ok".to_string()
                }
                Op::Delete { key } => store::delete(&name, &key).map_err(store_error)?.to_string(),
                Op::List {
                    prefix,
                    cursor,
                    limit,
                } => {
                    let page = store::list_keys(&name, &prefix, cursor.as_deref(), limit)
                        .map_err(store_error)?;
                    let mut lines = page.keys;
                    if let Some(next) = page.next_cursor {
                        lines.push(format!("next: {next}"));
                    }
                    lines.join("\n")
                }
                Op::Cas { key, expected } => {
                    let expected = expected.map(String::into_bytes);
                    match store::compare_and_swap(&name, &key, expected.as_deref(), &request.input)
                        .map_err(store_error)?
                    {
                        true => "swapped".to_string(),
                        false => "unchanged".to_string(),
                    }
                }
            };
            Ok(text(out))
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(Counter);
}
