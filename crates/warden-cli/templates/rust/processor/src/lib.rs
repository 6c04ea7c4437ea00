//! {{name}}: {{description}}

// The contract's bindings, from the WIT in `wit/`: the types and host
// functions under `warden::plugin`, the traits to implement under `exports`.
wit_bindgen::generate!({ path: "wit", world: "processor" });

use exports::warden::plugin::plugin::Guest as PluginGuest;
use exports::warden::plugin::processing::Guest as ProcessingGuest;
use warden::plugin::logging::log;
use warden::plugin::types::{
    KeyValue, LogLevel, PluginError, PluginMetadata, PluginStatus, ProcessRequest, ProcessResponse,
};

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

impl ProcessingGuest for Component {
    fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
        // An `Err` is for the caller (the instance keeps serving); a panic
        // traps the instance.
        let text = String::from_utf8(request.input)
            .map_err(|_| PluginError::InvalidInput("the input is not UTF-8 text".to_string()))?;
        let chars = text.chars().count();
        log(LogLevel::Info, &format!("uppercasing {chars} characters"));
        Ok(ProcessResponse {
            output: text.to_uppercase().into_bytes(),
            content_type: "text/plain".to_string(),
            items_processed: chars as u64,
        })
    }

    fn validate(input: Vec<u8>) -> bool {
        std::str::from_utf8(&input).is_ok()
    }
}

export!(Component);
