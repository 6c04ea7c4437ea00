//! `event-echo` (test fixture): answers every `ping.*` event with the same
//! event, so that, subscribed to its own output, it would loop forever. The
//! host's hop limit ends the loop.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit", world: "event-handler" });

    use exports::warden::plugin::event_handling::Guest as EventHandlerGuest;
    use warden::plugin::events::emit_event;
    use warden::plugin::types::{Event, PluginError};

    struct Echo;

    warden_guest::plugin_lifecycle!(Echo);

    impl EventHandlerGuest for Echo {
        fn on_event(event: Event) -> Result<(), PluginError> {
            emit_event(&event.event_type, &event.payload);
            Ok(())
        }

        fn supported_events() -> Vec<String> {
            vec!["ping.*".to_string()]
        }
    }

    export!(Echo);
}
