//! An instance's sandbox: the WASI context the guest sees (exactly its
//! effective permissions), the state of its capabilities, and the host's
//! linker, where WASI's name lookup goes through the [firewall](crate::firewall)
//! and file opens are checked against the data directory's quota and
//! audited when the sandbox refused them.

use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::audit::AuditKind;
use crate::capabilities::{self, DATA_GUEST_PATH, GuestOutput, ServiceContext};
use crate::error::{Error, Result};
use crate::firewall::{self, Firewall};
use crate::limits::MAX_RANDOM_BYTES;
use crate::permissions::{EffectivePermissions, FsMode};
use crate::scope::CallScope;
use crate::state::{PluginState, Sandbox, WASI_VERSION};

/// A sandbox that shows the guest exactly its effective permissions: the
/// mapped directories, the granted environment, sockets only if a `net`
/// rule allows some (each use checked by the firewall), no arguments, no
/// stdin. Clocks and randomness are available; stdout and stderr go to the
/// host log through the call scope.
pub(crate) fn new_sandbox(
    ctx: &ServiceContext<'_>,
    permissions: &EffectivePermissions,
) -> Result<Sandbox> {
    let mut capabilities = capabilities::instance_states(ctx);
    let firewall = Firewall::new(permissions, ctx.scope.clone());
    let data_mount = capabilities::data_of(&mut capabilities).mount();
    let mut wasi = sandbox_wasi(&ctx.scope, permissions, data_mount)?;
    wasi.allow_tcp(firewall.any_sockets())
        .allow_udp(firewall.any_sockets())
        .allow_ip_name_lookup(firewall.any_sockets())
        .socket_addr_check(firewall.socket_check());
    Ok(Sandbox {
        wasi: wasi.build(),
        firewall,
        capabilities,
        scope: ctx.scope.clone(),
        budget: ctx.budget.clone(),
    })
}

/// Links WASI, as the sandbox shows it, and every built-in capability.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    capabilities::add_to_linker(linker)?;
    interpose(linker)
}

/// The WASI context every guest gets, component or core module: stdout and
/// stderr to the host log through `scope`, exactly the mapped directories
/// of `permissions` (plus the plugin's data directory at `/data`), the
/// granted environment, no arguments, no stdin, no sockets, and at most
/// [`MAX_RANDOM_BYTES`] random bytes per call.
pub(crate) fn sandbox_wasi(
    scope: &Arc<CallScope>,
    permissions: &EffectivePermissions,
    data_mount: Option<&crate::fsutil::HeldDir>,
) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(GuestOutput::stdout(scope.clone()))
        .stderr(GuestOutput::stderr(scope.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(MAX_RANDOM_BYTES);
    for mount in &permissions.fs {
        let perms = match mount.mode {
            FsMode::ReadOnly => FsPerms::ReadOnly,
            FsMode::ReadWrite => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(mount.dir.path(), &mount.guest, perms)
            .map_err(|e| {
                Error::Host(format!(
                    "plugin `{}`: cannot map {} into the sandbox: {e:#}",
                    scope.plugin,
                    mount.host.display()
                ))
            })?;
    }
    if let Some(dir) = data_mount {
        wasi.preopened_dir(dir.path(), DATA_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| {
                Error::Host(format!(
                    "plugin `{}`: cannot map its data directory {}: {e:#}",
                    scope.plugin,
                    dir.host().display()
                ))
            })?;
    }
    for var in &permissions.env {
        wasi.env(&var.name, &var.value);
    }
    Ok(wasi)
}

/// Interposes on name lookup (the firewall's rules) and file opens (the
/// data-directory quota and the audit of what the sandbox refused).
fn interpose(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(&format!("wasi:sockets/ip-name-lookup@{WASI_VERSION}"))?;
    lookup.resource(
        "resolve-address-stream",
        ResourceType::host::<Lookup>(),
        |mut store, rep| {
            store
                .data_mut()
                .table()
                .delete(Resource::<Lookup>::new_own(rep))?;
            Ok(())
        },
    )?;
    lookup.func_wrap_async(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, PluginState>,
         (network, name): (Resource<Network>, String)| {
            Box::new(async move {
                let state = store.data_mut();
                state.table().get(&network)?;
                if !state.firewall.lookup_allowed(&name) {
                    return Ok((Err(ErrorCode::AccessDenied),));
                }
                let plugin = state.plugin().to_string();
                let found = match firewall::resolve(&plugin, &name).await {
                    Ok(found) => found,
                    Err(code) => return Ok((Err(code),)),
                };
                let state = store.data_mut();
                let kept = state.firewall.admit(&name, found);
                if kept.is_empty() {
                    return Ok((Err(ErrorCode::NameUnresolvable),));
                }
                let stream = state.table().push(Lookup(kept.into_iter()))?;
                Ok((Ok(stream),))
            })
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, PluginState>, (stream,): (Resource<Lookup>,)| {
            let Lookup(addresses) = store.data_mut().table().get_mut(&stream)?;
            let next = addresses.next().map(IpAddress::from);
            Ok((Ok::<_, ErrorCode>(next),))
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.subscribe",
        |mut store: StoreContextMut<'_, PluginState>, (stream,): (Resource<Lookup>,)| {
            let pollable: Resource<DynPollable> =
                wasmtime_wasi::p2::subscribe(store.data_mut().table(), stream)?;
            Ok((pollable,))
        },
    )?;
    let mut files = linker.instance(&format!("wasi:filesystem/types@{WASI_VERSION}"))?;
    files.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, PluginState>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                let parent = dir.rep();
                if open_flags.contains(OpenFlags::CREATE)
                    && !capabilities::data(state).may_create(parent)
                {
                    return Ok((Err(fs::ErrorCode::InsufficientSpace),));
                }
                let mut view = state.filesystem();
                let opened = HostDescriptor::open_at(
                    &mut view,
                    dir,
                    path_flags,
                    path.clone(),
                    open_flags,
                    flags,
                )
                .await;
                match opened {
                    Ok(file) => {
                        capabilities::data(state).opened(parent, file.rep());
                        Ok((Ok(file),))
                    }
                    Err(e) => {
                        let code = fs::Host::convert_error_code(&mut view, e)?;
                        if matches!(
                            code,
                            fs::ErrorCode::NotPermitted
                                | fs::ErrorCode::Access
                                | fs::ErrorCode::ReadOnly
                        ) {
                            let write = flags.contains(DescriptorFlags::WRITE)
                                || open_flags.contains(OpenFlags::CREATE);
                            let what = if write { "open for writing" } else { "open" };
                            state.scope().audit(
                                AuditKind::FsDenied,
                                format!("{what} {path}"),
                                "denied",
                            );
                        }
                        Ok((Err(code),))
                    }
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A finished name lookup: the addresses left to hand out.
struct Lookup(std::vec::IntoIter<IpAddr>);

#[async_trait::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {}
}
