//! Link-time composition: an interface one plugin imports, served by an
//! export of another loaded plugin.
//!
//! The consumer's manifest names the provider of each such interface
//! (`[permissions.links]`) and the operator grants it (`link:PLUGIN`). The
//! loader then defines every function of the interface as a host function
//! that forwards the call, value by value, to an instance of the provider
//! taken from the provider's own pool: each side runs in its own store,
//! sandbox and limits, and the provider's call ends no later than the
//! consumer's deadline. The provider is looked up at every call, so a
//! reload, a rollback or a provider loaded after its consumer is followed.
//! Values are copied between the two instances, so only interfaces without
//! resources, streams and futures can be linked.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Linker, Val};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::instance::{Caller, LinkCall};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::permissions::{EffectivePermissions, Refusal};
use crate::plugin::Plugin;
use crate::registry::Registry;
use crate::state::PluginState;
use crate::values::{Signature, crossable};

/// How often a call looks its provider up again when the build it found was
/// unloaded before the call could begin (a reload swapping builds).
const LOOKUPS: usize = 3;

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
    plugins: Weak<Registry>,
}

/// The plugin directories `dirs`, reordered so that a plugin comes after
/// the plugins among them that its links name: providers are loaded first,
/// so that a consumer's links are checked at load and its `initialize`
/// may use them. Otherwise the order is kept; a directory whose manifest
/// cannot be read stays where it is (loading it reports the problem), and
/// plugins linked in a cycle keep their order.
pub fn providers_first(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let plugins: Vec<(Option<String>, Vec<String>)> = dirs
        .iter()
        .map(|dir| match Manifest::from_file(&dir.join(MANIFEST_FILE)) {
            Ok(m) => {
                let providers = m
                    .permissions
                    .links
                    .values()
                    .map(|link| link.provider_name().to_string())
                    .collect();
                (Some(m.name), providers)
            }
            Err(_) => (None, Vec::new()),
        })
        .collect();
    let mut pending: Vec<usize> = (0..dirs.len()).collect();
    let mut ordered = Vec::with_capacity(dirs.len());
    while !pending.is_empty() {
        let waits_for_another = |i: usize| {
            plugins[i].1.iter().any(|provider| {
                pending
                    .iter()
                    .any(|&j| j != i && plugins[j].0.as_deref() == Some(provider))
            })
        };
        let next = pending
            .iter()
            .position(|&i| !waits_for_another(i))
            .unwrap_or(0);
        ordered.push(dirs[pending.remove(next)].clone());
    }
    ordered
}

/// A linker for a plugin whose manifest links imports to other plugins:
/// the host's linker plus one forwarding function per linked import.
/// `None` when the plugin links nothing (the host's linker serves it).
pub(crate) fn linker_for(
    core: &Core,
    plugins: Weak<Registry>,
    component: &Component,
    manifest: &Manifest,
    permissions: &EffectivePermissions,
    manifest_file: &Path,
) -> Result<Option<Linker<PluginState>>> {
    let links = &manifest.permissions.links;
    if links.is_empty() {
        return Ok(None);
    }
    let invalid = |interface: &str, message: String| Error::Manifest {
        file: manifest_file.to_path_buf(),
        message: format!("`permissions.links.\"{interface}\"`: {message}"),
    };
    let component_type = component.component_type();
    let mut linker = core.linker.clone();
    for (interface, link) in links {
        if link.provider_name() == manifest.name {
            return Err(invalid(
                interface,
                "a plugin cannot link to itself; name another plugin".into(),
            ));
        }
        let Some(import) = component_type.get_import(&core.engine, interface) else {
            let imports: Vec<&str> = component_type
                .imports(&core.engine)
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
            .and_then(|plugins| plugins.get(&link.plugin).ok());
        let mut functions = Vec::new();
        for (function, item) in imported.exports(&core.engine) {
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
            let wire = Wire {
                consumer: manifest.name.clone(),
                interface: interface.clone(),
                function: function.to_string(),
                provider: link.plugin.clone(),
                refused: refused.clone(),
                signature: Signature::of(&ty),
                plugins: plugins.clone(),
            };
            // Checked now when the provider is loaded; otherwise at each call.
            if let Some(provider) = &provider {
                wire.export_of(provider).map_err(|why| {
                    invalid(
                        interface,
                        format!(
                            "plugin `{}` {} cannot serve it: {why}",
                            provider.name(),
                            provider.info().version
                        ),
                    )
                })?;
            }
            functions.push(wire);
        }
        let mut instance = linker.instance(interface).map_err(|_| {
            invalid(
                interface,
                "the host provides this interface itself; a link cannot replace it".into(),
            )
        })?;
        for wire in functions {
            define(&mut instance, wire)
                .map_err(|e| Error::host(&format!("linking `{interface}`"), e))?;
        }
    }
    Ok(Some(linker))
}

/// Defines `wire`'s function in the linked interface. A failure on the
/// provider's side ends the consumer's call: the error is kept in the
/// consumer's store, where the consumer's call picks it up
/// ([`PluginState::link_failure`]), and the consumer's instance is
/// discarded like after a trap, since its guest code was cut short.
fn define(
    instance: &mut wasmtime::component::LinkerInstance<'_, PluginState>,
    wire: Wire,
) -> wasmtime::Result<()> {
    let wire = Arc::new(wire);
    let function = wire.function.clone();
    instance.func_new_async(&function, move |mut store, _ty, params, results| {
        let wire = wire.clone();
        Box::new(async move {
            let state = store.data();
            let caller = Caller {
                call_id: state.scope().call_id(),
                hops: state.scope().emit_hops(),
                deadline: state.deadline,
            };
            let outcome = wire.forward(caller, params).await.and_then(|values| {
                if values.len() != results.len() {
                    return Err(wire.failed(Error::Host(format!(
                        "the provider returned {} values where {} were expected",
                        values.len(),
                        results.len()
                    ))));
                }
                for (slot, value) in results.iter_mut().zip(values) {
                    *slot = value;
                }
                Ok(())
            });
            outcome.map_err(|e| {
                let message = e.to_string();
                store.data_mut().link_failure = Some(e);
                wasmtime::Error::msg(message)
            })
        })
    })
}

impl Wire {
    /// Runs the call in the provider; the error names both plugins.
    async fn forward(&self, caller: Caller, params: &[Val]) -> Result<Vec<Val>> {
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
        let mut params = params.to_vec();
        for _ in 0..LOOKUPS {
            let provider = plugins.get(&self.provider).map_err(|e| self.failed(e))?;
            let export = self.export_of(&provider).map_err(|why| {
                self.failed(Error::Unsupported {
                    plugin: provider.name().to_string(),
                    world: provider.info().world.to_string(),
                    operation: format!("serve `{}` ({why})", self.qualified()),
                })
            })?;
            let call = LinkCall {
                export,
                params,
                results: self.signature.results.len(),
                caller: caller.clone(),
            };
            match provider.serve_link(call).await {
                Ok(outcome) => return outcome.map_err(|e| self.failed(e)),
                Err(unrun) => params = unrun.params,
            }
        }
        Err(self.failed(Error::Host(format!(
            "plugin `{}` was replaced {LOOKUPS} times while the call waited for it",
            self.provider
        ))))
    }

    /// Where `provider`'s build exports this function, checked against the
    /// importer's type.
    fn export_of(&self, provider: &Plugin) -> std::result::Result<ComponentExportIndex, String> {
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
