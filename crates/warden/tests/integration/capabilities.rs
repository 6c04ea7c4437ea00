//! An embedder's own capability through the public [`Capability`] trait: a
//! clock, written in this one file and registered with one line. It links
//! its interface, checks each plugin at load against the operator's list
//! and the plugin's `[capabilities.clock]` section, and gives each instance
//! its own state.

use warden_testkit as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use warden::{
    Capability, Error, InstanceContext, PluginContext, PluginState, ProcessRequest, Warden,
};
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package example:clock;

            interface now {
                now: func() -> u64;
            }

            world host-side {
                import now;
            }
        ",
        world: "example:clock/host-side",
    });
}

use bindings::example::clock::now;

/// The capability: the operator's list of plugins that may read the clock,
/// and the clock itself.
struct Clock {
    allowed: Vec<String>,
    ticks: Arc<AtomicU64>,
}

/// What one instance keeps: the clock, and the offset its plugin's config
/// asks for.
struct ClockState {
    ticks: Arc<AtomicU64>,
    offset: u64,
}

impl now::Host for ClockState {
    fn now(&mut self) -> u64 {
        self.ticks.fetch_add(1, Ordering::SeqCst) + self.offset
    }
}

impl Capability for Clock {
    type State = ClockState;

    fn name(&self) -> &'static str {
        "clock"
    }

    fn check(&self, plugin: &PluginContext<'_>) -> warden::Result<()> {
        if !plugin.imports_any("example:clock/") {
            return Ok(());
        }
        if !self.allowed.iter().any(|p| p == plugin.name()) {
            return Err(plugin.refuse(self.name(), "the plugin is not on the clock's list"));
        }
        match plugin.section().and_then(|s| s.get("resolution")) {
            None => Ok(()),
            Some(r) if r.as_str() == Some("tick") => Ok(()),
            Some(other) => Err(plugin.refuse(
                self.name(),
                &format!("resolution {other} is not offered; use \"tick\""),
            )),
        }
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> ClockState {
        ClockState {
            ticks: self.ticks.clone(),
            offset: cx
                .config("offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut ClockState,
    ) -> wasmtime::Result<()> {
        now::add_to_linker::<_, HasSelf<ClockState>>(linker, get)
    }
}

fn host(allowed: &[&str]) -> Warden {
    let clock = Clock {
        allowed: allowed.iter().map(|s| s.to_string()).collect(),
        ticks: Arc::new(AtomicU64::new(100)),
    };
    // The one line that registers the capability.
    Warden::builder().capability(clock).build().expect("host")
}

fn load(host: &Warden, extra: &str) -> warden::Result<warden::Plugin> {
    let text = std::fs::read_to_string(common::plugin_dir("clock-reader").join("plugin.toml"))
        .expect("manifest");
    host.load_bytes_blocking(
        common::manifest_from(&format!("{text}\n{extra}\n")),
        common::wasm("clock-reader"),
    )
}

fn read(plugin: &warden::Plugin) -> String {
    let out = plugin
        .process_blocking(ProcessRequest::new(""))
        .expect("call");
    String::from_utf8(out.output).expect("utf-8")
}

#[test]
fn an_embedders_capability_is_linked_checked_and_stateful() {
    let host = host(&["clock-reader"]);
    let plugin = load(&host, "[capabilities.clock]\nresolution = \"tick\"").expect("load");
    assert_eq!(read(&plugin), "100");
    assert_eq!(read(&plugin), "101");
    let calls = plugin.metrics().capability_calls;
    assert_eq!(calls.get("clock"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("http"), None, "never called: {calls:?}");

    // Per-instance state is built from the plugin's config.
    host.unload_blocking("clock-reader").expect("unload");
    let plugin = load(&host, "[config]\noffset = \"1000\"").expect("load with offset");
    assert_eq!(read(&plugin), "1102");
}

#[test]
fn the_capability_refuses_plugins_at_load() {
    // Not on the operator's list.
    let err = load(&host(&["someone-else"]), "").expect_err("not allowed");
    assert!(
        matches!(&err, Error::CapabilityRefused { capability, .. } if capability == "clock"),
        "{err}"
    );
    assert!(err.to_string().contains("not on the clock's list"), "{err}");

    // A manifest section the capability does not accept.
    let err = load(
        &host(&["clock-reader"]),
        "[capabilities.clock]\nresolution = \"ns\"",
    )
    .expect_err("bad section");
    assert!(err.to_string().contains("resolution \"ns\""), "{err}");

    // A section for a capability the host does not have.
    let err = load(&host(&["clock-reader"]), "[capabilities.sundial]\nx = 1")
        .expect_err("unknown capability");
    assert!(
        err.to_string().contains("this host has no such capability"),
        "{err}"
    );

    // A host without the capability: the import is unsatisfied.
    let err = load(&common::host(), "").expect_err("no clock on this host");
    assert!(matches!(err, Error::UnsatisfiedImport { .. }), "{err}");
}

#[test]
fn a_plugin_that_does_not_import_the_capability_is_not_its_concern() {
    let host = host(&[]);
    host.load_blocking(common::plugin_dir("text-transform"))
        .expect("text-transform imports no clock");
}

/// A second capability with the clock's interface but its own state type,
/// named as asked.
struct Sundial(&'static str);

impl Capability for Sundial {
    type State = u64;

    fn name(&self) -> &'static str {
        self.0
    }

    fn instance_state(&self, _cx: &InstanceContext<'_>) -> u64 {
        0
    }

    fn add_to_linker(
        _linker: &mut Linker<PluginState>,
        _get: fn(&mut PluginState) -> &mut u64,
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[test]
fn capabilities_may_not_share_a_name_or_a_state_type_or_take_a_builtin_name() {
    let clock = || Clock {
        allowed: Vec::new(),
        ticks: Arc::default(),
    };
    let err = Warden::builder()
        .capability(clock())
        .capability(clock())
        .build()
        .expect_err("the same state type twice");
    assert!(err.to_string().contains("ClockState"), "{err}");

    let err = Warden::builder()
        .capability(clock())
        .capability(Sundial("clock"))
        .build()
        .expect_err("the same name twice");
    assert!(
        err.to_string()
            .contains("two capabilities are named `clock`"),
        "{err}"
    );

    let err = Warden::builder()
        .capability(Sundial("kv"))
        .build()
        .expect_err("a built-in's name");
    assert!(
        err.to_string().contains("the name of a built-in one"),
        "{err}"
    );
}

#[test]
fn each_capabilitys_calls_are_counted_per_plugin_version() {
    let host = common::host();
    let counter = host
        .load_blocking(common::plugin_dir("counter"))
        .expect("load counter");
    let upper = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load text-transform");
    for _ in 0..5 {
        counter
            .process_blocking(
                ProcessRequest::new("")
                    .option("op", "incr")
                    .option("key", "k"),
            )
            .expect("incr");
        upper
            .process_blocking(ProcessRequest::new("a").option("op", "upper"))
            .expect("upper");
    }
    let calls = counter.metrics().capability_calls;
    let store = calls.get("kv").copied().unwrap_or(0);
    assert!(
        store >= 5,
        "one store call per increment at least: {calls:?}"
    );
    assert!(!calls.contains_key("http"), "{calls:?}");
    let calls = upper.metrics().capability_calls;
    assert!(
        !calls.contains_key("kv"),
        "another plugin's calls are not its own: {calls:?}"
    );
}
