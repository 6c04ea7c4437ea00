//! `json-transform`: the component glue between the Warden contract and the
//! JSON reshaping in [`transform`].
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod transform;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::transform::{self, JsonError, Options};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};

    fn to_plugin_error(e: JsonError) -> PluginError {
        match e {
            JsonError::InvalidInput(m) => PluginError::InvalidInput(m),
            JsonError::Unsupported(m) => PluginError::Unsupported(m),
            JsonError::Internal(m) => PluginError::Internal(m),
        }
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let opts = Options::parse(
                request
                    .options
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            )
            .map_err(to_plugin_error)?;
            let out = transform::transform(&request.input, &opts).map_err(to_plugin_error)?;
            log(
                LogLevel::Debug,
                &format!(
                    "transformed {} objects, {} bytes in, {} out",
                    out.items,
                    request.input.len(),
                    out.json.len()
                ),
            );
            Ok(ProcessResponse {
                output: out.json,
                content_type: "application/json".to_string(),
                items_processed: out.items,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            transform::validate(&input)
        }
    }

    export!(Component);
}
