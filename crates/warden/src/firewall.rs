//! Runtime enforcement of a plugin's effective permissions at the WASI
//! boundary, with every denial audited.
//!
//! Sockets are checked by the socket-address hook WASI calls before every
//! bind, connect, listen, accept and datagram. Name rules (`api.example.com`,
//! `*.example.com`) work like a DNS firewall: Warden serves name lookup
//! itself, refuses names no rule covers, hands back only the addresses the
//! rules allow (never an [internal](crate::permissions::is_internal) one
//! unless a rule names it by address: DNS cannot point a granted name at the
//! host's own services), and remembers which addresses an allowed name
//! resolved to; a connection to an address is then allowed if a rule names
//! the address or a name that resolved to it. Lookups run a few at a time
//! host-wide, each with a deadline, so no plugin can tie up the threads
//! they run on. File opens are interposed on only to audit what the sandbox
//! refused (and to tell the data-directory service which descriptors are
//! inside its directory).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::audit::AuditKind;
use crate::locks::lock;
use crate::permissions::{EffectivePermissions, HostPattern, NetRule};
use crate::sandbox::{CallScope, PluginState, WASI_VERSION};

/// Name lookups running at once, host-wide: each holds a thread of the
/// blocking pool (the system resolver blocks) until it ends.
static LOOKUP_SLOTS: Semaphore = Semaphore::const_new(16);

/// Of [`LOOKUP_SLOTS`], how many one plugin may hold, counting lookups its
/// calls gave up on that still hold their thread: a plugin asking for names
/// that never resolve cannot take every slot from the others.
const LOOKUPS_PER_PLUGIN: usize = 2;

/// Lookups running per plugin.
static RUNNING: std::sync::LazyLock<Mutex<HashMap<String, usize>>> =
    std::sync::LazyLock::new(Mutex::default);

/// How long a lookup may wait for a slot and run.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses one lookup hands back at most.
const MAX_LOOKUP_ADDRESSES: usize = 32;

/// Addresses an instance remembers its allowed names resolved to; older
/// ones are forgotten first (a connection to them then needs a new lookup).
const MAX_RESOLVED: usize = 256;

/// The network side of one instance's sandbox.
pub(crate) struct Firewall {
    shared: Arc<Shared>,
}

struct Shared {
    allow: Vec<NetRule>,
    deny: Vec<NetRule>,
    scope: Arc<CallScope>,
    /// Addresses that allowed names resolved to, with the name, oldest first.
    resolved: Mutex<Vec<(IpAddr, String)>>,
}

/// A finished name lookup: the addresses left to hand out.
struct Lookup(std::vec::IntoIter<IpAddr>);

#[async_trait::async_trait]
impl Pollable for Lookup {
    async fn ready(&mut self) {}
}

impl Firewall {
    pub(crate) fn new(permissions: &EffectivePermissions, scope: Arc<CallScope>) -> Self {
        Firewall {
            shared: Arc::new(Shared {
                allow: permissions.net.clone(),
                deny: permissions.deny_net.clone(),
                scope,
                resolved: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Whether the plugin may use sockets at all (else WASI refuses them
    /// before any check).
    pub(crate) fn any_sockets(&self) -> bool {
        !self.shared.allow.is_empty()
    }

    /// The hook WASI calls before each socket operation.
    pub(crate) fn socket_check(
        &self,
    ) -> impl Fn(
        SocketAddr,
        SocketAddrUse,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
    + Send
    + Sync
    + 'static {
        let shared = self.shared.clone();
        move |addr, usage| {
            let allowed = shared.check(addr, usage);
            Box::pin(std::future::ready(allowed))
        }
    }

    fn lookup_allowed(&self, name: &str) -> bool {
        let s = &self.shared;
        // Longer is no DNS name; refused before anything keeps a copy.
        let allowed = name.len() <= 253
            && !s.deny.iter().any(|r| r.host.matches_name(name))
            && s.allow.iter().any(|r| r.host.matches_name(name));
        if !allowed {
            s.scope.audit(
                AuditKind::NameLookupDenied,
                format!("lookup {name}"),
                "denied",
            );
        }
        allowed
    }
}

impl Shared {
    fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let ip = addr.ip().to_canonical();
        let port = addr.port();
        let hits = |rule: &NetRule| rule.ports.contains(port) && self.host_matches(&rule.host, ip);
        let allowed = if self.deny.iter().any(&hits) {
            false
        } else {
            match usage {
                // The implicit bind before a connect or send: an ephemeral
                // port on the wildcard address.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind
                    if ip.is_unspecified() && port == 0 =>
                {
                    !self.allow.is_empty()
                }
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
                    self.allow.iter().any(|r| r.listen && hits(r))
                }
                SocketAddrUse::TcpAccept => self.allow.iter().any(|r| r.listen),
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    self.allow.iter().any(|r| !r.listen && hits(r))
                }
            }
        };
        if !allowed {
            let what = match usage {
                SocketAddrUse::TcpBind => "tcp bind",
                SocketAddrUse::TcpListen => "tcp listen",
                SocketAddrUse::TcpAccept => "tcp accept from",
                SocketAddrUse::TcpConnect => "tcp connect",
                SocketAddrUse::UdpBind => "udp bind",
                SocketAddrUse::UdpSend => "udp send",
                SocketAddrUse::UdpReceive => "udp receive from",
            };
            self.scope
                .audit(AuditKind::SocketDenied, format!("{what} {addr}"), "denied");
        }
        allowed
    }

    fn host_matches(&self, host: &HostPattern, ip: IpAddr) -> bool {
        host.matches_ip(ip)
            || (host.needs_lookup()
                && lock(&self.resolved)
                    .iter()
                    .any(|(addr, name)| *addr == ip && host.matches_name(name)))
    }

    /// Of the addresses `name` resolved to, those the rules let the plugin
    /// see: a public address if an allow rule names `name`, an internal one
    /// only if an allow rule names the address itself; never one a deny
    /// rule covers. The names of what is kept are remembered; a lookup left
    /// with nothing but internal addresses is audited.
    fn admit(&self, name: &str, found: Vec<IpAddr>) -> Vec<IpAddr> {
        let (kept, refused): (Vec<IpAddr>, Vec<IpAddr>) = found
            .into_iter()
            .map(|ip| ip.to_canonical())
            .filter(|ip| !self.deny.iter().any(|r| r.host.matches_ip(*ip)))
            .take(MAX_LOOKUP_ADDRESSES)
            .partition(|ip| self.allow.iter().any(|r| r.host.reaches(name, *ip)));
        if kept.is_empty() && !refused.is_empty() {
            let refused: Vec<String> = refused.iter().map(IpAddr::to_string).collect();
            self.scope.audit(
                AuditKind::NameLookupDenied,
                format!("lookup {name} -> {}", refused.join(", ")),
                "internal addresses withheld: only a rule naming the address reaches them",
            );
        }
        let mut resolved = lock(&self.resolved);
        for ip in &kept {
            if !resolved.iter().any(|(a, n)| a == ip && n == name) {
                if resolved.len() == MAX_RESOLVED {
                    resolved.remove(0);
                }
                resolved.push((*ip, name.to_string()));
            }
        }
        kept
    }
}

/// Resolves `name` for `plugin` with the system resolver, at most
/// [`LOOKUP_SLOTS`] at a time host-wide ([`LOOKUPS_PER_PLUGIN`] of them
/// the plugin's) and within [`LOOKUP_TIMEOUT`]. A lookup the deadline gives
/// up on keeps its slots until its thread is free again.
pub(crate) async fn resolve(plugin: &str, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![ip]);
    }
    if HostPattern::parse(name).map_or(true, |p| !matches!(p, HostPattern::Name(_))) {
        return Err(ErrorCode::InvalidArgument);
    }
    let lookup = async {
        let own = PluginSlot::take(plugin).ok_or(ErrorCode::TemporaryResolverFailure)?;
        let slot = LOOKUP_SLOTS
            .acquire()
            .await
            .map_err(|_| ErrorCode::TemporaryResolverFailure)?;
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let _slots = (slot, own);
            std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0))
                .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
        })
        .await
        .map_err(|_| ErrorCode::TemporaryResolverFailure)?
        .map_err(|_| ErrorCode::NameUnresolvable)
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .unwrap_or(Err(ErrorCode::TemporaryResolverFailure))
}

/// One of a plugin's [`LOOKUPS_PER_PLUGIN`], given back when dropped.
struct PluginSlot(String);

impl PluginSlot {
    fn take(plugin: &str) -> Option<PluginSlot> {
        let mut running = lock(&RUNNING);
        let count = running.entry(plugin.to_string()).or_default();
        if *count >= LOOKUPS_PER_PLUGIN {
            return None;
        }
        *count += 1;
        Some(PluginSlot(plugin.to_string()))
    }
}

impl Drop for PluginSlot {
    fn drop(&mut self) {
        let mut running = lock(&RUNNING);
        if let Some(count) = running.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.0);
            }
        }
    }
}

/// Interposes on name lookup and file opens (see the module docs). Call
/// after the WASI interfaces are linked.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
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
                let found = match resolve(&plugin, &name).await {
                    Ok(found) => found,
                    Err(code) => return Ok((Err(code),)),
                };
                let state = store.data_mut();
                let kept = state.firewall.shared.admit(&name, found);
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
                    && !state.services.data().may_create(parent)
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
                        state.services.data().opened(parent, file.rep());
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
