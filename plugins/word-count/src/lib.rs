//! `word-count`: counts bytes, lines and words of the input (cross-language
//! conformance plugin; see [`count`]).
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod count;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{KeyValue, LogLevel, PluginError, ProcessRequest, ProcessResponse};

    struct Component;

    fn initialize(_config: Vec<KeyValue>) -> Result<(), PluginError> {
        log(LogLevel::Info, "word-count ready");
        Ok(())
    }

    warden_guest::plugin_lifecycle!(Component, initialize = initialize);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let counts = crate::count::count(&request.input);
            Ok(ProcessResponse {
                output: counts.to_json().into_bytes(),
                content_type: "application/json".to_string(),
                items_processed: counts.words as u64,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            std::str::from_utf8(&input).is_ok()
        }
    }

    export!(Component);
}
