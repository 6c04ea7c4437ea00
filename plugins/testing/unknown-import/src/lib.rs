//! `unknown-import`: a test fixture whose component imports
//! `acme:missing/api@1.0.0` besides the usual host services. A Warden host
//! must refuse to load it, naming the missing import, instead of failing
//! later at call time. `process` calls `ping` so the import survives in the
//! built component (unused imports are dropped when the component is made).
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod reply;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    // `wit/deps/warden` is a symlink to the repository's `wit/`.
    // `generate_all`: wit-bindgen otherwise wants a `with` mapping for the
    // interface of the foreign `acme:missing` package.
    wit_bindgen::generate!({ path: "wit", world: "unknown-import", generate_all });

    use acme::missing::api::ping;
    use exports::warden::plugin::plugin::Guest as PluginGuest;
    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::types::{
        KeyValue, PluginError, PluginMetadata, PluginStatus, ProcessRequest, ProcessResponse,
    };

    static STATUS: Mutex<PluginStatus> = Mutex::new(PluginStatus::Uninitialized);

    fn set_status(status: PluginStatus) {
        *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = status;
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

        fn initialize(_config: Vec<KeyValue>) -> Result<(), PluginError> {
            // A correct host never gets this far, so there is no config worth keeping.
            set_status(PluginStatus::Ready);
            Ok(())
        }

        fn shutdown() -> Result<(), PluginError> {
            set_status(PluginStatus::Stopped);
            Ok(())
        }

        fn get_status() -> PluginStatus {
            *STATUS.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl ProcessorGuest for Component {
        fn process(_request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let output = crate::reply::reply(&ping());
            Ok(ProcessResponse {
                output: output.into_bytes(),
                content_type: "text/plain; charset=utf-8".to_string(),
                items_processed: 1,
            })
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(Component);
}
