//! `order-events`: checks an order and tells the rest of the system about it
//! through the host's event bus (`order.created`, and `order.large` at or
//! above config `large-order-threshold`). Event-handler plugins that
//! subscribe to `order.*` (such as `audit-logger`) take it from there.

pub mod order;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::order;

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::config::get_config;
    use warden::plugin::events::emit_event;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct OrderEvents;

    warden_guest::plugin_lifecycle!(OrderEvents);

    impl ProcessorGuest for OrderEvents {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let threshold = order::threshold(get_config("large-order-threshold").as_deref())
                .map_err(PluginError::Internal)?;
            let (accepted, payload) =
                order::accept(&request.input, threshold).map_err(PluginError::InvalidInput)?;
            for event_type in &accepted.events {
                emit_event(event_type, &payload);
            }
            let output =
                serde_json::to_vec(&accepted).map_err(|e| PluginError::Internal(e.to_string()))?;
            Ok(ProcessResponse {
                output,
                content_type: "application/json".into(),
                items_processed: 1,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            order::accept(&input, f64::INFINITY).is_ok()
        }
    }

    export!(OrderEvents);
}
