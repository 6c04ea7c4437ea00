//! `audit-logger`: the component glue between the Warden contract and the
//! bookkeeping in [`audit`]; here the counts meet the host's logging and
//! events imports.
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod audit;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::Mutex;

    use crate::audit::{self, Auditor, Outcome};

    wit_bindgen::generate!({ path: "../../wit", world: "event-handler" });

    use exports::warden::plugin::event_handling::Guest as EventHandlerGuest;
    use exports::warden::plugin::plugin::Guest as PluginGuest;
    use warden::plugin::events::emit_event;
    use warden::plugin::logging::log;
    use warden::plugin::types::{
        Event, KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus,
    };

    struct State {
        status: PluginStatus,
        /// Only `summary-every` is used, read once in `initialize`; the rest
        /// is kept because the contract says `initialize` stores it.
        #[allow(dead_code)]
        config: Vec<(String, String)>,
        /// `None` until `initialize`; events before that use the defaults.
        auditor: Option<Auditor>,
    }

    static STATE: Mutex<State> = Mutex::new(State {
        status: PluginStatus::Uninitialized,
        config: Vec::new(),
        auditor: None,
    });

    fn state() -> std::sync::MutexGuard<'static, State> {
        // Poisoning only follows a panic, which traps the instance anyway.
        STATE.lock().unwrap_or_else(|e| e.into_inner())
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
            let config: Vec<(String, String)> =
                config.into_iter().map(|kv| (kv.key, kv.value)).collect();
            let every = config
                .iter()
                .find(|(k, _)| k == "summary-every")
                .map(|(_, v)| v.as_str());
            let (every, warning) = audit::parse_summary_every(every);
            if let Some(warning) = warning {
                log(LogLevel::Warn, &warning);
            }
            let mut s = state();
            s.config = config;
            s.auditor = Some(Auditor::new(every));
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

    impl EventHandlerGuest for Component {
        fn on_event(event: Event) -> Result<(), PluginError> {
            let outcome = state().auditor.get_or_insert_with(Auditor::default).record(
                &event.event_type,
                &event.source,
                event.payload.len(),
            );
            // The lock is released by now: host calls must not run under it.
            if let Outcome::Counted { log_line, summary } = outcome {
                log(LogLevel::Info, &log_line);
                if let Some(payload) = summary {
                    emit_event(audit::SUMMARY_EVENT, &payload);
                }
            }
            Ok(())
        }

        fn supported_events() -> Vec<String> {
            vec!["*".to_string()]
        }
    }

    export!(Component);
}
