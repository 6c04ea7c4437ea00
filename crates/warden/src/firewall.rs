//! Runtime enforcement of a plugin's effective permissions at the WASI
//! boundary, with every denial audited.
//!
//! Sockets are checked by the socket-address hook WASI calls before every
//! bind, connect, listen, accept and datagram. Name rules (`api.example.com`,
//! `*.example.com`) work like a DNS firewall: Warden interposes on name
//! lookup, refuses names no rule covers, and remembers which addresses an
//! allowed name resolved to; a connection to an address is then allowed if
//! a rule names the address or a name that resolved to it. File opens are
//! interposed on only to audit what the sandbox refused (and to tell the
//! data-directory service which descriptors are inside its directory).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, Descriptor, DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};

use crate::audit::AuditKind;
use crate::locks::lock;
use crate::permissions::{EffectivePermissions, HostPattern, NetRule};
use crate::sandbox::{CallScope, PluginState, WASI_VERSION};

/// The network side of one instance's sandbox.
pub(crate) struct Firewall {
    shared: Arc<Shared>,
    /// Open name lookups: stream resource → the name being resolved.
    lookups: HashMap<u32, String>,
}

struct Shared {
    allow: Vec<NetRule>,
    deny: Vec<NetRule>,
    scope: Arc<CallScope>,
    /// Addresses that allowed names resolved to, with those names.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
}

impl Firewall {
    pub(crate) fn new(permissions: &EffectivePermissions, scope: Arc<CallScope>) -> Self {
        Firewall {
            shared: Arc::new(Shared {
                allow: permissions.net.clone(),
                deny: permissions.deny_net.clone(),
                scope,
                resolved: Mutex::new(HashMap::new()),
            }),
            lookups: HashMap::new(),
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
        let allowed = !s.deny.iter().any(|r| r.host.matches_name(name))
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
                    .get(&ip)
                    .is_some_and(|names| names.iter().any(|n| host.matches_name(n))))
    }
}

/// Interposes on name lookup and file opens (see the module docs). Call
/// after the WASI interfaces are linked.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut lookup = linker.instance(&format!("wasi:sockets/ip-name-lookup@{WASI_VERSION}"))?;
    lookup.func_wrap(
        "resolve-addresses",
        |mut store: StoreContextMut<'_, PluginState>,
         (network, name): (Resource<Network>, String)| {
            let state = store.data_mut();
            if !state.firewall.lookup_allowed(&name) {
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            let mut sockets = state.sockets();
            match ip_name_lookup::Host::resolve_addresses(&mut sockets, network, name.clone()) {
                Ok(stream) => {
                    state.firewall.lookups.insert(stream.rep(), name);
                    Ok((Ok(stream),))
                }
                Err(e) => Ok((Err(network::Host::convert_error_code(&mut sockets, e)?),)),
            }
        },
    )?;
    lookup.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store: StoreContextMut<'_, PluginState>,
         (stream,): (Resource<ResolveAddressStream>,)| {
            let state = store.data_mut();
            let rep = stream.rep();
            let mut sockets = state.sockets();
            match HostResolveAddressStream::resolve_next_address(&mut sockets, stream) {
                Ok(next) => {
                    if let (Some(addr), Some(name)) = (&next, state.firewall.lookups.get(&rep)) {
                        lock(&state.firewall.shared.resolved)
                            .entry(ip_of(addr))
                            .or_default()
                            .push(name.clone());
                    }
                    Ok((Ok(next),))
                }
                Err(e) => Ok((Err(network::Host::convert_error_code(&mut sockets, e)?),)),
            }
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

fn ip_of(addr: &IpAddress) -> IpAddr {
    match *addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
    .to_canonical()
}
