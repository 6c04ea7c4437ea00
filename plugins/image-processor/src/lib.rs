//! `image-processor`: the component glue between the Warden contract and the
//! image pipeline in [`imaging`].
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod imaging;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use crate::imaging::{self, ImageError, Options};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::plugin::Guest as PluginGuest;
    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{
        KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus, ProcessRequest,
        ProcessResponse,
    };

    /// The configuration is unused today, but the contract says `initialize`
    /// stores it.
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
        // Poisoning only follows a panic, which traps the instance anyway.
        STATE.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn to_plugin_error(e: ImageError) -> PluginError {
        match e {
            ImageError::InvalidInput(m) => PluginError::InvalidInput(m),
            ImageError::Unsupported(m) => PluginError::Unsupported(m),
            ImageError::Internal(m) => PluginError::Internal(m),
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
            let opts = Options::parse(
                request
                    .options
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            )
            .map_err(to_plugin_error)?;
            let out = imaging::process(&request.input, &opts).map_err(to_plugin_error)?;
            log(
                LogLevel::Debug,
                &format!(
                    "{} bytes in, {}x{} {} out ({} bytes)",
                    request.input.len(),
                    out.width,
                    out.height,
                    out.format.content_type(),
                    out.bytes.len()
                ),
            );
            let items_processed = out.pixels();
            Ok(ProcessResponse {
                content_type: out.format.content_type().to_string(),
                output: out.bytes,
                items_processed,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            imaging::validate(&input)
        }
    }

    export!(Component);
}
