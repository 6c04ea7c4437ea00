//! `text-stats`: an example plugin of contract **0.2.0**. It reads the
//! call id the host puts in the request and lists its options through
//! `describe-options`, the two things 0.2.0 added.
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod stats;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::stats::{self, StatsError};

    // The 0.2.0 contract reuses 0.1.0's unchanged interfaces, so the
    // bindings hold both versions, in modules named after them.
    // `generate_all`: wit-bindgen otherwise wants a `with` mapping for the
    // 0.1.0 interfaces, which come from another package version.
    wit_bindgen::generate!({ path: "../../wit/0.2.0", world: "processor", generate_all });

    use exports::warden::plugin0_2_0::processing::Guest as ProcessorGuest;
    use warden::plugin0_1_0::types::{PluginError, ProcessResponse};
    use warden::plugin0_2_0::types::{OptionDoc, ProcessRequest};

    struct Component;

    warden_guest::plugin_lifecycle!(bindings = plugin0_1_0, Component);

    fn to_plugin_error(e: StatsError) -> PluginError {
        match e {
            StatsError::InvalidInput(m) => PluginError::InvalidInput(m),
            StatsError::Unsupported(m) => PluginError::Unsupported(m),
        }
    }

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let top = stats::parse_top(option("top").as_deref()).map_err(to_plugin_error)?;
            let stats = stats::compute(&request.input, top).map_err(to_plugin_error)?;
            let output = serde_json::json!({
                "call_id": request.call_id,
                "stats": stats,
            });
            Ok(ProcessResponse {
                output: output.to_string().into_bytes(),
                content_type: "application/json".to_string(),
                items_processed: stats.words as u64,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            std::str::from_utf8(&input).is_ok()
        }

        fn describe_options() -> Vec<OptionDoc> {
            vec![OptionDoc {
                name: "top".to_string(),
                description: format!(
                    "How many of the most frequent words to list (0 to {}).",
                    stats::MAX_TOP
                ),
                values: Vec::new(),
                default: Some("5".to_string()),
            }]
        }
    }

    export!(Component);
}
