//! How a capability is declared ([`Capability`], with what it sees at load
//! and per instance) and how a host keeps the embedder's ones.

use std::any::{Any, TypeId};
use std::sync::Arc;

use wasmtime::component::Linker;

use super::ServiceContext;
use crate::error::{Error, Result};
use crate::state::PluginState;

/// One host capability: its linker entries, its per-instance state and its
/// load-time check.
///
/// A worked example: a clock that only the plugins on the operator's list
/// may read.
///
/// ```ignore
/// // WIT: package example:clock; interface now { now: func() -> u64; }
/// wasmtime::component::bindgen!({ path: "wit", world: "example:clock/host-side" });
///
/// /// The operator's policy: which plugins may read the clock.
/// struct Clock { allowed: Vec<String> }
///
/// /// What an instance keeps: its plugin's name, for the log.
/// struct ClockState { plugin: String }
///
/// impl example::clock::now::Host for ClockState {
///     fn now(&mut self) -> u64 { 42 }
/// }
///
/// impl Capability for Clock {
///     type State = ClockState;
///     fn name(&self) -> &'static str { "clock" }
///     fn check(&self, plugin: &PluginContext<'_>) -> warden::Result<()> {
///         match self.allowed.iter().any(|p| p == plugin.name()) {
///             true => Ok(()),
///             false => Err(plugin.refuse(self.name(), "not in the clock's allow list")),
///         }
///     }
///     fn instance_state(&self, cx: &InstanceContext<'_>) -> ClockState {
///         ClockState { plugin: cx.plugin().to_string() }
///     }
///     fn add_to_linker(
///         linker: &mut Linker<PluginState>,
///         get: fn(&mut PluginState) -> &mut ClockState,
///     ) -> wasmtime::Result<()> {
///         example::clock::now::add_to_linker::<_, HasSelf<ClockState>>(linker, get)
///     }
/// }
///
/// let host = Warden::builder().capability(Clock { allowed: vec!["ticker".into()] }).build()?;
/// ```
pub trait Capability: Send + Sync + 'static {
    /// What each instance keeps for this capability. A host may register
    /// only one capability per state type: the linker's functions find
    /// their state by its type.
    type State: Send + 'static;

    /// The capability's name: the key of its manifest section
    /// (`[capabilities.<name>]`) and the name errors give.
    fn name(&self) -> &'static str;

    /// Decides at load whether `plugin` may be loaded on this host as far
    /// as this capability is concerned (its grant check). Called for every
    /// plugin; the default allows every one.
    fn check(&self, plugin: &PluginContext<'_>) -> Result<()> {
        let _ = plugin;
        Ok(())
    }

    /// The state of one new instance of the plugin `cx` describes.
    fn instance_state(&self, cx: &InstanceContext<'_>) -> Self::State;

    /// Adds the capability's functions to the host's linker, once when the
    /// host is built; they reach the calling instance's state through `get`.
    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Self::State,
    ) -> wasmtime::Result<()>;
}

/// A plugin being loaded, as a capability's [`Capability::check`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct PluginContext<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: &'a semver::Version,
    pub(crate) imports: &'a [String],
    pub(crate) section: Option<&'a toml::Value>,
}

impl<'a> PluginContext<'a> {
    /// The plugin's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &'a semver::Version {
        self.version
    }

    /// The interfaces the component imports (`package/interface@version`).
    pub fn imports(&self) -> &'a [String] {
        self.imports
    }

    /// Whether the component imports an interface whose name starts with
    /// `prefix` (say `"example:clock/"`).
    pub fn imports_any(&self, prefix: &str) -> bool {
        self.imports.iter().any(|i| i.starts_with(prefix))
    }

    /// The manifest's `[capabilities.<name>]` section for this capability,
    /// if it has one.
    pub fn section(&self) -> Option<&'a toml::Value> {
        self.section
    }

    /// The error that refuses this plugin for capability `capability`,
    /// saying `why`.
    pub fn refuse(&self, capability: &str, why: &str) -> Error {
        Error::CapabilityRefused {
            plugin: self.name.to_string(),
            capability: capability.to_string(),
            reason: why.to_string(),
        }
    }
}

/// The instance being created, as [`Capability::instance_state`] sees it.
pub struct InstanceContext<'a> {
    pub(crate) inner: &'a ServiceContext<'a>,
}

impl InstanceContext<'_> {
    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.inner.scope.plugin
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.inner.scope.version
    }

    /// A value of the plugin's effective config.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.inner.config.get(key).map(String::as_str)
    }
}

/// A registered capability with its types erased, so that a host can hold
/// the embedder's capabilities in one list.
pub(crate) trait Registered: Send + Sync {
    fn name(&self) -> &'static str;
    /// The state type's id and name.
    fn state_type(&self) -> (TypeId, &'static str);
    fn check(&self, plugin: &PluginContext<'_>) -> Result<()>;
    fn link(&self, linker: &mut Linker<PluginState>) -> wasmtime::Result<()>;
    fn make(&self, cx: &InstanceContext<'_>) -> Box<dyn Any + Send>;
}

impl<C: Capability> Registered for C {
    fn name(&self) -> &'static str {
        Capability::name(self)
    }

    fn state_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<C::State>(), std::any::type_name::<C::State>())
    }

    fn check(&self, plugin: &PluginContext<'_>) -> Result<()> {
        Capability::check(self, plugin)
    }

    fn link(&self, linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        C::add_to_linker(linker, PluginState::extension::<C::State>)
    }

    fn make(&self, cx: &InstanceContext<'_>) -> Box<dyn Any + Send> {
        Box::new(self.instance_state(cx))
    }
}

/// The embedder's capabilities of one host.
#[derive(Clone, Default)]
pub(crate) struct Registry(Vec<Arc<dyn Registered>>);

impl Registry {
    pub(crate) fn push(&mut self, capability: Arc<dyn Registered>) {
        self.0.push(capability);
    }

    /// Refuses two capabilities with one state type or one name: the
    /// functions of one would find the state of the other, and a manifest
    /// section would not say whose it is.
    pub(crate) fn check_distinct(&self) -> Result<()> {
        let builtin = super::builtin_names();
        for (i, c) in self.0.iter().enumerate() {
            if builtin.contains(&c.name()) {
                return Err(Error::Host(format!(
                    "a capability is named `{}`, the name of a built-in one; name it otherwise",
                    c.name()
                )));
            }
            let earlier = &self.0[..i];
            if earlier.iter().any(|o| o.state_type().0 == c.state_type().0) {
                return Err(Error::Host(format!(
                    "two capabilities keep their state in `{}`; give each a state type of its own",
                    c.state_type().1
                )));
            }
            if earlier.iter().any(|o| o.name() == c.name()) {
                return Err(Error::Host(format!(
                    "two capabilities are named `{}`; give each a name of its own",
                    c.name()
                )));
            }
        }
        Ok(())
    }

    /// Whether a capability is named `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|c| c.name() == name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<dyn Registered>> {
        self.0.iter()
    }
}

/// A plugin being linked at load, as a built-in capability that links
/// functions per plugin sees it (links, and HTTP's refusals for a plugin
/// without the permission): what the plugin imports, asks for and was
/// granted, and a linker of its own, made from the host's when a
/// capability first asks for it.
pub(crate) struct Linking<'a> {
    pub(crate) engine: &'a wasmtime::Engine,
    pub(crate) component: &'a wasmtime::component::Component,
    pub(crate) manifest: &'a crate::manifest::Manifest,
    pub(crate) permissions: &'a crate::permissions::EffectivePermissions,
    pub(crate) manifest_file: &'a std::path::Path,
    /// The interfaces the component imports.
    pub(crate) imports: &'a [String],
    /// The loaded plugins, for links.
    pub(crate) providers: &'a std::sync::Weak<dyn super::links::Providers>,
    host: &'a Linker<PluginState>,
    own: Option<Linker<PluginState>>,
}

impl<'a> Linking<'a> {
    /// The linking of the plugin `manifest` describes, from the host's
    /// linker `host`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: &'a wasmtime::Engine,
        host: &'a Linker<PluginState>,
        component: &'a wasmtime::component::Component,
        manifest: &'a crate::manifest::Manifest,
        permissions: &'a crate::permissions::EffectivePermissions,
        manifest_file: &'a std::path::Path,
        imports: &'a [String],
        providers: &'a std::sync::Weak<dyn super::links::Providers>,
    ) -> Self {
        Linking {
            engine,
            component,
            manifest,
            permissions,
            manifest_file,
            imports,
            providers,
            host,
            own: None,
        }
    }

    /// The plugin's own linker.
    pub(crate) fn linker(&mut self) -> &mut Linker<PluginState> {
        self.own.get_or_insert_with(|| self.host.clone())
    }

    /// The linker the plugin is instantiated with: its own, if a
    /// capability made one, else the host's.
    pub(crate) fn finish(self) -> std::borrow::Cow<'a, Linker<PluginState>> {
        match self.own {
            Some(own) => std::borrow::Cow::Owned(own),
            None => std::borrow::Cow::Borrowed(self.host),
        }
    }
}
