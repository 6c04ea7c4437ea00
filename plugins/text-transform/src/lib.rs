//! `text-transform`: the component glue between the Warden contract and the
//! text operations in [`transform`].
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod transform;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use crate::transform::{self, TransformError};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::plugin::Guest as PluginGuest;
    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{
        KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus, ProcessRequest,
        ProcessResponse,
    };

    /// Nothing here needs the configuration, but the contract says
    /// `initialize` stores it; keeping it makes a later option-from-config
    /// change a one-line edit.
    struct State {
        status: PluginStatus,
        #[allow(dead_code)]
        config: Vec<(String, String)>,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        status: PluginStatus::Uninitialized,
        config: Vec::new(),
    });

    fn state() -> std::sync::MutexGuard<'static, State> {
        // A poisoned lock means an earlier call panicked, which traps the whole
        // instance; the data is still consistent, so carry on with it.
        STATE.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn to_plugin_error(e: TransformError) -> PluginError {
        match e {
            TransformError::InvalidInput(m) => PluginError::InvalidInput(m),
            TransformError::Unsupported(m) => PluginError::Unsupported(m),
        }
    }

    struct Component;

    impl PluginGuest for Component {
        fn get_metadata() -> PluginMetadata {
            PluginMetadata {
                name: env!("CARGO_PKG_NAME").to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                description: env!("CARGO_PKG_DESCRIPTION").to_string(),
                author: "Warden contributors".to_string(),
            }
        }

        fn initialize(config: Vec<KeyValue>) -> Result<(), PluginError> {
            let mut s = state();
            s.config = config.into_iter().map(|kv| (kv.key, kv.value)).collect();
            s.status = PluginStatus::Ready;
            Ok(())
        }

        fn shutdown() -> Result<(), PluginError> {
            state().status = PluginStatus::Stopped;
            Ok(())
        }

        fn get_status() -> PluginStatus {
            state().status
        }
    }

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let op = request
                .options
                .iter()
                .find(|kv| kv.key == "op")
                .map(|kv| kv.value.as_str());
            let result = transform::run(op, &request.input);
            log(
                LogLevel::Debug,
                &format!(
                    "op={} input={} bytes result={}",
                    op.unwrap_or("<missing>"),
                    request.input.len(),
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
