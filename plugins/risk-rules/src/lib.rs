//! `risk-rules`: the component glue between the Warden contract and the
//! scoring in [`rules`]; the thresholds are read here, through the host's
//! config import, on every call, so an operator's override applies at once.
//! Each customer's transaction and high-risk counts are kept in the host's
//! key-value store, and repeat high-risk customers score higher.
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
    use warden::plugin::store;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};

    fn to_plugin_error(e: RiskError) -> PluginError {
        match e {
            RiskError::InvalidInput(m) => PluginError::InvalidInput(m),
            RiskError::Internal(m) => PluginError::Internal(m),
        }
    }

    /// Applies and updates the customer's history in the host's store. The
    /// history is advisory: a store failure is logged, never fatal.
    fn remember(customer: &str, assessment: &mut rules::Assessment, thresholds: &Thresholds) {
        let high_key = format!("customer:{customer}:high-risk");
        let prior = store::get("", &high_key)
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        assessment.apply_history(prior, thresholds);
        let mut updates = vec![format!("customer:{customer}:transactions")];
        if assessment.level == rules::Level::High {
            updates.push(high_key);
        }
        for key in updates {
            if let Err(e) = store::increment("", &key, 1) {
                log(LogLevel::Warn, &format!("cannot update {key}: {e:?}"));
            }
        }
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let thresholds = Thresholds::from_config(get_config).map_err(to_plugin_error)?;
            let mut assessment =
                rules::assess_json(&request.input, &thresholds).map_err(to_plugin_error)?;
            if let Some(customer) = assessment.customer.clone() {
                remember(&customer, &mut assessment, &thresholds);
            }
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
