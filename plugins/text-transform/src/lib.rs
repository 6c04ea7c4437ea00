//! `text-transform`: the component glue between the Warden contract and the
//! text operations in [`transform`].
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod transform;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::transform::{self, TransformError};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};

    fn to_plugin_error(e: TransformError) -> PluginError {
        match e {
            TransformError::InvalidInput(m) => PluginError::InvalidInput(m),
            TransformError::Unsupported(m) => PluginError::Unsupported(m),
        }
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let op = request
                .options
                .iter()
                .find(|kv| kv.key == "op")
                .map(|kv| kv.value.as_str());
            let len = request.input.len();
            let result = transform::run(op, request.input);
            log(
                LogLevel::Debug,
                &format!(
                    "op={} input={len} bytes result={}",
                    op.unwrap_or("<missing>"),
                    match &result {
                        Ok(out) => format!("ok, {} items", out.items),
                        Err(e) => format!("error: {e}"),
                    }
                ),
            );
            let out = result.map_err(to_plugin_error)?;
            Ok(ProcessResponse {
                output: out.text.into_bytes(),
                content_type: "text/plain; charset=utf-8".to_string(),
                items_processed: out.items,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            transform::validate(&input)
        }
    }

    export!(Component);
}
