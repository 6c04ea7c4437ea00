//! Host service `warden:plugin/events`: plugins publish events onto the
//! host's event bus. An event emitted while handling an event is one hop
//! further than that event; the bus drops it past the hop limit, and the
//! drop is audited here.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::audit::AuditKind;
use crate::capabilities::{Capability, InstanceContext};
use crate::contract::bindings::events;
use crate::events::{Event, EventBus, NotPublished};
use crate::scope::CallScope;
use crate::state::PluginState;

/// The per-instance state of the events service.
pub(crate) struct Events {
    bus: Arc<EventBus>,
    scope: Arc<CallScope>,
}

/// The capability: emitting events onto the bus (`warden:plugin/events`).
pub(crate) struct EventsCapability;

impl Capability for EventsCapability {
    type State = Events;

    fn name(&self) -> &'static str {
        "events"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Events {
        let ctx = cx.inner;
        Events {
            bus: ctx.bus.clone(),
            scope: ctx.scope.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Events,
    ) -> wasmtime::Result<()> {
        events::add_to_linker::<_, HasSelf<Events>>(linker, get)
    }
}

impl events::Host for Events {
    async fn emit_event(&mut self, event_type: String, payload: Vec<u8>) {
        if !self.scope.charge_event() {
            return;
        }
        if let Err(why) = Event::check_type(&event_type) {
            let shown: String = event_type.chars().take(64).collect();
            self.scope.audit(
                AuditKind::EventCap,
                format!("event `{shown}`"),
                &format!("dropped: {why}"),
            );
            return;
        }
        let mut event = Event::new(event_type, payload, &self.scope.plugin);
        event.hops = self.scope.emit_hops();
        let (event_type, hops, bytes) = (event.event_type.clone(), event.hops, event.payload.len());
        match self.bus.publish(event) {
            Ok(_) => {}
            Err(NotPublished::TooManyHops { max }) => self.scope.audit(
                AuditKind::EventHops,
                format!("event `{event_type}` at hop {hops}"),
                &format!("dropped: events may be at most {max} hops from their origin"),
            ),
            Err(NotPublished::TooLarge { max }) => self.scope.audit(
                AuditKind::EventCap,
                format!("event `{event_type}` of {bytes} bytes"),
                &format!("dropped: event payloads may be at most {max} bytes"),
            ),
        }
    }
}
