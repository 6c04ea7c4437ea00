//! {{name}}: {{description}}

// The contract's bindings, from the WIT in `wit/`: the types and host
// functions under `warden::plugin`, the traits to implement under `exports`.
wit_bindgen::generate!({ path: "wit", world: "event-handler" });

use exports::warden::plugin::event_handling::Guest as EventHandlingGuest;
use exports::warden::plugin::plugin::Guest as PluginGuest;
use warden::plugin::logging::log;
use warden::plugin::types::{Event, KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus};

const NAME: &str = "{{name}}";
const VERSION: &str = "0.1.0";

struct Component;

impl PluginGuest for Component {
    fn get_metadata() -> PluginMetadata {
        PluginMetadata {
            name: NAME.to_string(),
            version: VERSION.to_string(),
            description: "{{description}}".to_string(),
            author: "you".to_string(),
        }
    }

    /// `config` is the plugin's `[config]` table; `warden::plugin::config::get_config(key)`
    /// reads one value at any time. An error fails the load.
    fn initialize(_config: Vec<KeyValue>) -> Result<(), PluginError> {
        log(LogLevel::Info, &format!("{NAME} ready"));
        Ok(())
    }

    fn shutdown() -> Result<(), PluginError> {
        Ok(())
    }

    fn get_status() -> PluginStatus {
        PluginStatus::Ready
    }
}

impl EventHandlingGuest for Component {
    fn on_event(event: Event) -> Result<(), PluginError> {
        let payload = String::from_utf8_lossy(&event.payload);
        log(
            LogLevel::Info,
            &format!(
                "{} from {} at {}: {payload}",
                event.event_type, event.source, event.timestamp
            ),
        );
        // To publish an event:
        //   warden::plugin::events::emit_event("thing.happened", br#"{"id": 1}"#);
        Ok(())
    }

    fn supported_events() -> Vec<String> {
        // Exact types ("order.created"), prefixes ("order.*") or "*" for all.
        vec!["*".to_string()]
    }
}

export!(Component);
