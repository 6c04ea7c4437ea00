//! `risk-rules`: the component glue between the Warden contract and the
//! scoring in [`rules`]; the thresholds are read here, through the host's
//! config import, on every call, so an operator's override applies at once.
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod rules;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::rules::{self, RiskError, Thresholds};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::config::get_config;
    use warden::plugin::logging::log;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};

    fn to_plugin_error(e: RiskError) -> PluginError {
        match e {
            RiskError::InvalidInput(m) => PluginError::InvalidInput(m),
            RiskError::Internal(m) => PluginError::Internal(m),
        }
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let thresholds = Thresholds::from_config(get_config).map_err(to_plugin_error)?;
            let assessment =
                rules::assess_json(&request.input, &thresholds).map_err(to_plugin_error)?;
            log(
                LogLevel::Debug,
                &format!(
                    "transaction {} scored {} ({})",
                    assessment.id,
                    assessment.score,
                    assessment.level.as_str()
                ),
            );
            let output = serde_json::to_vec(&assessment.to_json())
                .map_err(|e| PluginError::Internal(format!("cannot serialize result: {e}")))?;
            Ok(ProcessResponse {
                output,
                content_type: "application/json".to_string(),
                items_processed: 1,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            rules::validate(&input)
        }
    }

    export!(Component);
}
