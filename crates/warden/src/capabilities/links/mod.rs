//! Links: an interface one plugin imports, served by an export of another
//! loaded plugin. A capability that links per plugin, at load.
//!
//! The consumer's manifest names the provider of each such interface
//! (`[permissions.links]`) and the operator grants it (`link:PLUGIN`). At
//! load, every function of the interface is defined, in the consumer's own
//! linker, as a host function that forwards the call to an
//! instance of the provider taken from the provider's own pool: each side
//! runs in its own store, sandbox and limits, and the provider's call ends
//! no later than the consumer's deadline. The provider is looked up at
//! every call, so a reload, a rollback or a provider loaded after its
//! consumer is followed. Values are copied between the two instances, so
//! only interfaces without resources, streams and futures can be linked. A
//! function over bytes and text crosses as blocks of memory ([`typed`]);
//! any other, value by value as wasmtime's dynamic values.
//!
//! The loaded plugins sit above the capabilities; links reach them through
//! [`Providers`], which the host's registry implements.

#[cfg(test)]
mod tests;
mod typed;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tracing::Instrument;

use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Func, Linker, LinkerInstance, Val};

use super::{Capability, InstanceContext, Linking};
use crate::error::{Error, Result};
use crate::locks::lock;
use crate::permissions::Refusal;
use crate::scope::CallId;
use crate::state::PluginState;
use crate::values::{Signature, crossable, size_of_values};

pub(crate) use typed::TypedCall;

/// How often a call looks its provider up again when the build it found was
/// unloaded before the call could begin (a reload swapping builds).
const LOOKUPS: usize = 3;

/// The operator's `link:PLUGIN` grants (`link:*`: any plugin's): whose
/// exports plugins may import.
pub(crate) fn grants() -> super::grant::ByName {
    super::grant::ByName::new(
        "link",
        crate::names::validate_name,
        |grants, requested, out, refused| {
            for (interface, req) in &requested.links {
                match grants.covers(req.provider_name()) {
                    true => {
                        out.links.insert(interface.clone(), req.plugin.clone());
                    }
                    false => refused.push(Refusal::link(interface, req)),
                }
            }
        },
    )
}

/// The capability. Its functions are linked per plugin
/// ([`link_plugin`]), not once for the host.
pub(crate) struct LinksCapability;

impl Capability for LinksCapability {
    type State = ();

    fn name(&self) -> &'static str {
        "links"
    }

    fn instance_state(&self, _cx: &InstanceContext<'_>) {}

    fn add_to_linker(
        _linker: &mut Linker<PluginState>,
        _get: fn(&mut PluginState) -> &mut (),
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// The loaded plugins, as links find their providers.
pub(crate) trait Providers: Send + Sync {
    /// The build that `target` (`name` or `name@range`) names now.
    fn find(&self, target: &str) -> Result<Box<dyn Provider>>;
}

/// A loaded build that may serve links.
pub(crate) trait Provider: Send {
    /// The plugin's name.
    fn name(&self) -> &str;
    /// The build's version and world, as errors name them.
    fn describe(&self) -> (semver::Version, String);
    /// The build's id, unique among the builds this process loads.
    fn build_id(&self) -> u64;
    /// The build's compiled component.
    fn component(&self) -> &Component;
    /// Runs `call` in an instance of the build; gives the call back unrun
    /// when the build was unloaded before it could begin.
    fn serve<'a>(&'a self, call: LinkCall<'a>) -> Served<'a>;
}

/// What [`Provider::serve`] returns.
pub(crate) type Served<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Result<Returned>, LinkCall<'a>>> + Send + 'a>>;

/// The consumer's side of a linked call: who is calling, and until when.
#[derive(Clone)]
pub(crate) struct Caller {
    /// The consumer's call id, which the provider's logs and audit carry too.
    pub(crate) call_id: CallId,
    /// The hop count of events the consumer's call emits.
    pub(crate) hops: u32,
    /// The consumer's deadline: the provider's call ends no later.
    pub(crate) deadline: Instant,
}

/// A call into a provider: which of its exports, with what.
pub(crate) struct LinkCall<'a> {
    pub(crate) export: ComponentExportIndex,
    pub(crate) args: Args<'a>,
    pub(crate) caller: Caller,
}

/// The arguments of a linked call, the consumer's, borrowed: the
/// provider's instance lowers them straight from there.
#[derive(Clone, Copy)]
pub(crate) enum Args<'a> {
    /// Plain values of any type, and how many results the function has.
    Values { params: &'a [Val], results: usize },
    /// The one argument of a function over bytes and text.
    Typed(&'a dyn TypedCall),
}

impl Args<'_> {
    /// The arguments' size as data, as the provider's size limits count it.
    pub(crate) fn data_size(&self) -> usize {
        match self {
            Args::Values { params, .. } => size_of_values(params),
            Args::Typed(call) => call.data_size(),
        }
    }

    /// Calls `func`, the provider's export, in `store`, its instance's.
    pub(crate) async fn call(
        self,
        store: &mut Store<PluginState>,
        func: Func,
    ) -> wasmtime::Result<Returned> {
        match self {
            Args::Values { params, results } => {
                let mut out = vec![Val::Bool(false); results];
                func.call_async(&mut *store, params, &mut out).await?;
                Ok(Returned::Values(out))
            }
            Args::Typed(call) => call.call(store, func).await,
        }
    }
}

/// What a provider's export returned, in the form its [`Args`] were.
pub(crate) enum Returned {
    /// Dynamic values.
    Values(Vec<Val>),
    /// The fast path's one result, and its size as data.
    Typed(Box<dyn Any + Send>, usize),
}

impl Returned {
    /// The results' size as data, as the provider's size limits count it.
    pub(crate) fn data_size(&self) -> usize {
        match self {
            Returned::Values(values) => size_of_values(values),
            Returned::Typed(_, size) => *size,
        }
    }
}

/// One imported function, wired to the plugin that serves it.
struct Wire {
    consumer: String,
    interface: String,
    function: String,
    /// The provider as the manifest names it (`name` or `name@range`).
    provider: String,
    /// Why the link may not be used: it was not granted and the grant
    /// policy trimmed it.
    refused: Option<Refusal>,
    signature: Signature,
    plugins: Weak<dyn Providers>,
    /// The build last called, and where it exports the function: found
    /// and checked once per build, not at every call.
    resolved: Mutex<Option<(u64, ComponentExportIndex)>>,
}

/// Adds to the plugin's linker one forwarding function per function of
/// every interface its manifest links to another plugin.
pub(crate) fn link_plugin(linking: &mut Linking<'_>) -> Result<()> {
    let Linking {
        engine,
        component,
        manifest,
        permissions,
        manifest_file,
        providers,
        ..
    } = *linking;
    let plugins = providers.clone();
    let links = &manifest.permissions.links;
    if links.is_empty() {
        return Ok(());
    }
    let invalid = |interface: &str, message: String| Error::Manifest {
        file: manifest_file.to_path_buf(),
        message: format!("`permissions.links.\"{interface}\"`: {message}"),
    };
    let component_type = component.component_type();
    for (interface, link) in links {
        if link.provider_name() == manifest.name {
            return Err(invalid(
                interface,
                "a plugin cannot link to itself; name another plugin".into(),
            ));
        }
        let Some(import) = component_type.get_import(engine, interface) else {
            let imports: Vec<&str> = component_type
                .imports(engine)
                .map(|(name, _)| name)
                .collect();
            return Err(invalid(
                interface,
                format!(
                    "the component does not import this interface (it imports: {})",
                    imports.join(", ")
                ),
            ));
        };
        let ComponentItem::ComponentInstance(imported) = import.ty else {
            return Err(invalid(interface, "the import is not an interface".into()));
        };
        let refused = match permissions.links.contains_key(interface) {
            true => None,
            false => Some(Refusal::link(interface, link)),
        };
        let provider = plugins
            .upgrade()
            .and_then(|plugins| plugins.find(&link.plugin).ok());
        let mut functions = Vec::new();
        for (function, item) in imported.exports(engine) {
            let ty = match item.ty {
                ComponentItem::ComponentFunc(ty) => ty,
                ComponentItem::Type(ty) if crossable(&ty) => continue,
                _ => {
                    return Err(invalid(
                        interface,
                        format!(
                            "`{function}` is a resource or a type that cannot be copied between plugins; only interfaces of functions over plain values can be linked"
                        ),
                    ));
                }
            };
            if ty.async_()
                || !ty.params().all(|(_, t)| crossable(&t))
                || !ty.results().all(|t| crossable(&t))
            {
                return Err(invalid(
                    interface,
                    format!(
                        "function `{function}` is async or passes a resource, stream or future; only functions over plain values can be linked"
                    ),
                ));
            }
            let mut wire = Wire {
                consumer: manifest.name.clone(),
                interface: interface.clone(),
                function: function.to_string(),
                provider: link.plugin.clone(),
                refused: refused.clone(),
                signature: Signature::of(&ty),
                plugins: plugins.clone(),
                resolved: Mutex::new(None),
            };
            // Checked now when the provider is loaded; otherwise at the first
            // call to each build.
            if let Some(provider) = &provider {
                let export = wire.export_of(provider.as_ref()).map_err(|why| {
                    invalid(
                        interface,
                        format!(
                            "plugin `{}` {} cannot serve it: {why}",
                            provider.name(),
                            provider.describe().0
                        ),
                    )
                })?;
                wire.resolved = Mutex::new(Some((provider.build_id(), export)));
            }
            functions.push((Arc::new(wire), ty));
        }
        let mut instance = linking.linker().instance(interface).map_err(|_| {
            invalid(
                interface,
                "the host provides this interface itself; a link cannot replace it".into(),
            )
        })?;
        for (wire, ty) in functions {
            let failed = |e| Error::host(&format!("linking `{interface}`"), e);
            if !typed::define(&mut instance, &wire, &ty).map_err(failed)? {
                define(&mut instance, &wire).map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// Defines `wire`'s function in the linked interface, value by value.
fn define(
    instance: &mut LinkerInstance<'_, PluginState>,
    wire: &Arc<Wire>,
) -> wasmtime::Result<()> {
    let wire = wire.clone();
    let function = wire.function.clone();
    instance.func_new_async(&function, move |mut store, _ty, params, results| {
        let wire = wire.clone();
        Box::new(async move {
            let expected = results.len();
            let args = Args::Values {
                params,
                results: expected,
            };
            let values = wire
                .run(store.data_mut(), args, |returned| match returned {
                    Returned::Values(values) if values.len() == expected => Some(values),
                    _ => None,
                })
                .await?;
            for (slot, value) in results.iter_mut().zip(values) {
                *slot = value;
            }
            Ok(())
        })
    })
}

impl Wire {
    /// The consumer's side of a linked call its instance (`state`) makes,
    /// which counts as a call into this capability: runs it in the provider
    /// and `take`s the results, or ends the consumer's call. A failure on
    /// the provider's side is kept in the consumer's store, where the
    /// consumer's call picks it up ([`PluginState::link_failure`]), and the
    /// consumer's instance is discarded like after a trap, since its guest
    /// code was cut short.
    async fn run<T>(
        &self,
        state: &mut PluginState,
        args: Args<'_>,
        take: impl FnOnce(Returned) -> Option<T>,
    ) -> wasmtime::Result<T> {
        super::count_link_call(state);
        let caller = Caller {
            call_id: state.scope().call_id(),
            hops: state.scope().emit_hops(),
            deadline: state.deadline,
        };
        let outcome = self.call(caller, args).await.and_then(|returned| {
            take(returned).ok_or_else(|| {
                self.failed(Error::Host(
                    "the provider's results are not of the function's type".into(),
                ))
            })
        });
        outcome.map_err(|error| {
            let message = error.to_string();
            state.link_failure = Some(error);
            wasmtime::Error::msg(message)
        })
    }

    /// Runs the call in the provider, in a span of its own; the error names
    /// both plugins.
    async fn call(&self, caller: Caller, args: Args<'_>) -> Result<Returned> {
        let span = tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.link",
            plugin = %self.consumer,
            provider = %self.provider,
            function = %self.function,
        );
        self.forward(caller, args).instrument(span).await
    }

    /// Finds the provider and runs the call in it, looking it up again when
    /// the build found was unloaded before the call could begin.
    async fn forward(&self, caller: Caller, args: Args<'_>) -> Result<Returned> {
        if let Some(refusal) = &self.refused {
            return Err(self.failed(Error::PermissionDenied {
                plugin: self.consumer.clone(),
                refused: vec![refusal.clone()],
            }));
        }
        let plugins = self
            .plugins
            .upgrade()
            .ok_or_else(|| self.failed(Error::Host("the host is shutting down".into())))?;
        for _ in 0..LOOKUPS {
            let provider = plugins.find(&self.provider).map_err(|e| self.failed(e))?;
            let export = self.export_in(provider.as_ref())?;
            let call = LinkCall {
                export,
                args,
                caller: caller.clone(),
            };
            if let Ok(outcome) = provider.serve(call).await {
                return outcome.map_err(|e| self.failed(e));
            }
        }
        Err(self.failed(Error::Host(format!(
            "plugin `{}` was replaced {LOOKUPS} times while the call waited for it",
            self.provider
        ))))
    }

    /// Where `provider`'s build exports this function, remembered for the
    /// build last called.
    fn export_in(&self, provider: &dyn Provider) -> Result<ComponentExportIndex> {
        let build = provider.build_id();
        if let Some((resolved, export)) = *lock(&self.resolved)
            && resolved == build
        {
            return Ok(export);
        }
        let export = self.export_of(provider).map_err(|why| {
            self.failed(Error::Unsupported {
                plugin: provider.name().to_string(),
                world: provider.describe().1,
                operation: format!("serve `{}` ({why})", self.qualified()),
            })
        })?;
        *lock(&self.resolved) = Some((build, export));
        Ok(export)
    }

    /// Where `provider`'s build exports this function, checked against the
    /// importer's type.
    fn export_of(
        &self,
        provider: &dyn Provider,
    ) -> std::result::Result<ComponentExportIndex, String> {
        let component = provider.component();
        let (_, interface) = component
            .get_export(None, &self.interface)
            .ok_or_else(|| format!("it does not export `{}`", self.interface))?;
        match component.get_export(Some(&interface), &self.function) {
            Some((ComponentItem::ComponentFunc(ty), index)) => match self.signature.mismatch(&ty) {
                None => Ok(index),
                Some(why) => Err(format!("`{}`: {why}", self.qualified())),
            },
            _ => Err(format!("it has no function `{}`", self.qualified())),
        }
    }

    fn qualified(&self) -> String {
        format!("{}#{}", self.interface, self.function)
    }

    fn failed(&self, error: Error) -> Error {
        Error::Linked {
            plugin: self.consumer.clone(),
            provider: self.provider.clone(),
            function: self.qualified(),
            error: Box::new(error),
        }
    }
}
