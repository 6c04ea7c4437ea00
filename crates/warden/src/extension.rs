//! The embedder's own WIT interfaces. An application describes the host
//! functions it offers plugins in WIT (say `myapp:api/orders`), generates
//! Rust bindings with `wasmtime::component::bindgen!`, and registers them
//! with [`crate::WardenBuilder::extension`]. Plugins whose world imports the
//! interface can then call it; plugins that do not are unaffected, and a
//! host without the extension refuses such a plugin at load, naming the
//! missing import.
//!
//! Each plugin instance gets its own state for every extension, built by
//! the extension's constructor with the plugin's name, so the
//! implementation knows who is calling.

use std::any::{Any, TypeId};
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::state::PluginState;

/// Adds an extension's functions to the host's linker; they reach the
/// calling instance's state of type `E` through the accessor it is given,
/// so the state they look for is the one the constructor builds.
pub type LinkFn<E> =
    fn(&mut Linker<PluginState>, fn(&mut PluginState) -> &mut E) -> wasmtime::Result<()>;

/// Who an extension's state is built for.
#[derive(Debug, Clone, Copy)]
pub struct ExtensionContext<'a> {
    /// The plugin's name.
    pub plugin: &'a str,
    /// The plugin's version.
    pub version: &'a str,
}

type LinkAny = dyn Fn(&mut Linker<PluginState>) -> wasmtime::Result<()> + Send + Sync;
type MakeFn = dyn Fn(&ExtensionContext<'_>) -> Box<dyn Any + Send> + Send + Sync;

/// An interface of the embedding application, offered to plugins.
///
/// ```ignore
/// wasmtime::component::bindgen!({ path: "wit", world: "myapp:api/host-side" });
///
/// struct Orders { plugin: String, db: Arc<Db> }
/// impl myapp::api::orders::Host for Orders { /* ... */ }
///
/// let orders = Extension::new(
///     |linker, get| myapp::api::orders::add_to_linker::<_, HasSelf<Orders>>(linker, get),
///     move |cx| Orders { plugin: cx.plugin.to_string(), db: db.clone() },
/// );
/// let host = Warden::builder().extension(orders).build()?;
/// ```
#[derive(Clone)]
pub struct Extension {
    link: Arc<LinkAny>,
    make: Arc<MakeFn>,
    state: (TypeId, &'static str),
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension").finish_non_exhaustive()
    }
}

impl Extension {
    /// An extension whose functions `link` adds to the linker, with state
    /// `E` built by `make` for every plugin instance. Each extension of a
    /// host needs a state type of its own.
    pub fn new<E: Send + 'static>(
        link: LinkFn<E>,
        make: impl Fn(&ExtensionContext<'_>) -> E + Send + Sync + 'static,
    ) -> Self {
        Extension {
            link: Arc::new(move |linker| link(linker, PluginState::extension::<E>)),
            make: Arc::new(move |cx| Box::new(make(cx))),
            state: (TypeId::of::<E>(), std::any::type_name::<E>()),
        }
    }
}

/// An extension is a capability whose functions and state come from two
/// closures; it checks nothing at load (a plugin that imports its
/// interface on a host without it is refused as an unsatisfied import).
impl crate::capabilities::Registered for Extension {
    fn name(&self) -> &'static str {
        self.state.1
    }

    fn state_type(&self) -> (TypeId, &'static str) {
        self.state
    }

    fn check(&self, _plugin: &crate::capabilities::PluginContext<'_>) -> crate::Result<()> {
        Ok(())
    }

    fn link(&self, linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        (self.link)(linker)
    }

    fn make(&self, cx: &crate::capabilities::InstanceContext<'_>) -> Box<dyn Any + Send> {
        (self.make)(&ExtensionContext {
            plugin: cx.plugin(),
            version: cx.version(),
        })
    }
}
