//! `risk-rules`: the component glue between the Warden contract and the
//! scoring in [`rules`]; the thresholds are read here, through the host's
//! config import, on every call, so an operator's override applies at once.
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod rules;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use crate::rules::{self, RiskError, Thresholds};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::plugin::Guest as PluginGuest;
    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::config::get_config;
    use warden::plugin::logging::log;
    use warden::plugin::types::{
        KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus, ProcessRequest,
        ProcessResponse,
    };

    /// Scoring reads configuration through `get-config` instead, so that
    /// host-side overrides made after `initialize` still apply; the copy is
    /// kept because the contract says `initialize` stores it.
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

    fn to_plugin_error(e: RiskError) -> PluginError {
        match e {
            RiskError::InvalidInput(m) => PluginError::InvalidInput(m),
            RiskError::Internal(m) => PluginError::Internal(m),
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
