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
    // `wit/deps/warden` is a symlink to the repository's `wit/`.
    // `generate_all`: wit-bindgen otherwise wants a `with` mapping for the
    // interface of the foreign `acme:missing` package.
    wit_bindgen::generate!({ path: "wit", world: "unknown-import", generate_all });

    use acme::missing::api::ping;
    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

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
