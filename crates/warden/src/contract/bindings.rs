//! Host-side bindings generated from the contract.
//!
//! The host binds one world that imports every host service and exports
//! every plugin interface in every version it serves; each plugin interface
//! is then looked up on its own, so a component only needs the exports of
//! the world and contract version it targets. With two versions of the
//! package present, the generated modules carry the version
//! (`plugin0_1_0`, `plugin0_2_0`).

wasmtime::component::bindgen!({
    // The newest contract version's directory; older versions come in
    // through its `deps/`.
    path: "../../wit/0.2.0",
    inline: "
        package warden:host;
        world host {
            include warden:plugin/host-services@0.1.0;
            export warden:plugin/plugin@0.1.0;
            export warden:plugin/processing@0.1.0;
            export warden:plugin/processing@0.2.0;
            export warden:plugin/event-handling@0.1.0;
        }
    ",
    world: "warden:host/host",
    // Each import runs in a TRACE span (see `crate::trace`).
    imports: { default: async | tracing },
    exports: { default: async },
});

pub(crate) use self::warden::plugin0_1_0::{config, events, logging, store, types};
pub(crate) use exports::warden::plugin0_1_0::{event_handling as event_handler, plugin};

/// The generated modules of each version of `processing` and its types.
pub(crate) mod processing {
    pub(crate) use super::exports::warden::plugin0_1_0::processing as processing0_1_0;
    pub(crate) use super::exports::warden::plugin0_2_0::processing as processing0_2_0;
    pub(crate) use super::warden::plugin0_2_0::types as types0_2_0;
}
