//! Host-side bindings of the standard WASI interfaces Warden offers beside
//! its own contract: `wasi:keyvalue` (store, atomics, batch), `wasi:config`,
//! `wasi:logging` and `wasi:otel/tracing`. Their WIT is in the repository's `wit/standard/`,
//! exactly as published, so a component built for another runtime that
//! imports them links here unchanged.

wasmtime::component::bindgen!({
    path: [
        "../../wit/standard/keyvalue",
        "../../wit/standard/config",
        "../../wit/standard/logging",
        "../../wit/standard/otel",
    ],
    inline: "
        package warden:standard;
        world standard {
            include wasi:keyvalue/imports@0.2.0-draft;
            include wasi:config/imports@0.2.0-rc.1;
            include wasi:logging/imports@0.1.0-draft;
            include wasi:otel/imports@0.2.0-rc.2;
        }
    ",
    world: "warden:standard/standard",
    // Each import runs in a TRACE span (see `crate::trace`).
    imports: { default: async | tracing },
    // The clocks' types are WASI's, already linked for every plugin.
    with: { "wasi:clocks": wasmtime_wasi::p2::bindings::clocks },
});

pub(crate) use self::wasi::config::store as config;
pub(crate) use self::wasi::keyvalue::{atomics, batch, store as keyvalue};
pub(crate) use self::wasi::logging::logging;
pub(crate) use self::wasi::otel::{tracing as otel, types as otel_types};
