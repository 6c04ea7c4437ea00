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
//! they run on. The sandbox's linker interposes on the WASI functions
//! that must ask it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::sockets::SocketAddrUse;

use crate::audit::AuditKind;
use crate::locks::lock;
use crate::permissions::{EffectivePermissions, HostPattern, NetRule};
use crate::scope::CallScope;

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

    /// Whether the plugin may look `name` up; audits a refusal.
    pub(crate) fn lookup_allowed(&self, name: &str) -> bool {
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

    /// Of the addresses `name` resolved to, those the rules let the plugin
    /// have, remembered for the connection checks that follow.
    pub(crate) fn admit(&self, name: &str, found: Vec<IpAddr>) -> Vec<IpAddr> {
        self.shared.admit(name, found)
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
