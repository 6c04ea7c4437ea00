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
    use warden::plugin::events::emit_event;
    use warden::plugin::logging::log;
    use warden::plugin::types::{Event, KeyValue, LogLevel, PluginError};

    /// The counts; `None` until `initialize`, and events before that use
    /// the defaults.
    static AUDITOR: Mutex<Option<Auditor>> = Mutex::new(None);

    fn auditor() -> std::sync::MutexGuard<'static, Option<Auditor>> {
        // Poisoning only follows a panic, which traps the instance anyway.
        AUDITOR.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn initialize(config: Vec<KeyValue>) -> Result<(), PluginError> {
        let every = config
            .iter()
            .find(|kv| kv.key == "summary-every")
            .map(|kv| kv.value.as_str());
        let (every, warning) = audit::parse_summary_every(every);
        if let Some(warning) = warning {
            log(LogLevel::Warn, &warning);
        }
        *auditor() = Some(Auditor::new(every));
        Ok(())
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component, initialize = initialize);

    impl EventHandlerGuest for Component {
        fn on_event(event: Event) -> Result<(), PluginError> {
            let outcome = auditor().get_or_insert_with(Auditor::default).record(
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
