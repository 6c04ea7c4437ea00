//! Network destinations: host patterns, port ranges and `net` rules, with
//! the matching and the "is covered by" relation grants are checked with.

use std::net::IpAddr;

use serde::Serialize;

/// Which hosts a rule names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// One address, such as `127.0.0.1` or `[::1]`.
    Ip(IpAddr),
    /// A network, such as `10.0.0.0/8`.
    Cidr(IpAddr, u8),
    /// One DNS name, such as `api.example.com` (lowercase).
    Name(String),
    /// `*.example.com`: every name below `example.com` (the suffix is kept).
    Wildcard(String),
}

impl HostPattern {
    /// Parses `*`, an IP (IPv6 in brackets), a CIDR network, a DNS name or
    /// `*.suffix`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(HostPattern::Any);
        }
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(HostPattern::Ip(ip.to_canonical()));
        }
        if let Some((net, bits)) = unbracketed.split_once('/') {
            let ip: IpAddr = net
                .parse()
                .map_err(|_| format!("`{text}`: `{net}` is not an IP network address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?;
            // `::ffff:a.b.c.d/n` is an IPv4 network written as IPv6, and it
            // is matched as one: addresses are compared canonically.
            return match ip.to_canonical() {
                IpAddr::V4(v4) if ip.is_ipv6() => match bits.checked_sub(96) {
                    Some(bits) => Ok(HostPattern::Cidr(IpAddr::V4(v4), bits)),
                    None => Err(format!(
                        "`{text}`: an IPv4-mapped network needs a prefix length of 96 to 128"
                    )),
                },
                _ => Ok(HostPattern::Cidr(ip, bits)),
            };
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(format!(
                "`{text}` is not a host: use `*`, an IP address, a CIDR network, a DNS name or `*.domain`"
            ));
        }
        Ok(if wildcard {
            HostPattern::Wildcard(name)
        } else {
            HostPattern::Name(name)
        })
    }

    /// Whether connecting to `ip` is within this pattern. Name patterns never
    /// match an address by themselves: see [`HostPattern::matches_name`].
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            HostPattern::Any => true,
            HostPattern::Ip(own) => *own == ip,
            HostPattern::Cidr(net, bits) => in_network(ip, *net, *bits),
            HostPattern::Name(_) | HostPattern::Wildcard(_) => false,
        }
    }

    /// Whether looking up (or, for HTTP, calling) the host `name` is within
    /// this pattern.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostPattern::Any => true,
            HostPattern::Name(own) => *own == name,
            HostPattern::Wildcard(suffix) => is_below(&name, suffix),
            HostPattern::Ip(_) | HostPattern::Cidr(..) => name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.matches_ip(ip)),
        }
    }

    /// Whether every host `other` names is also named by `self`.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (_, HostPattern::Any) => false,
            (own, HostPattern::Ip(ip)) => own.matches_ip(*ip),
            (HostPattern::Cidr(net, bits), HostPattern::Cidr(inner, inner_bits)) => {
                inner_bits >= bits && in_network(*inner, *net, *bits)
            }
            (HostPattern::Ip(ip), HostPattern::Cidr(inner, 32 | 128)) => ip == inner,
            (own, HostPattern::Name(name)) => own.matches_name(name),
            (HostPattern::Wildcard(suffix), HostPattern::Wildcard(inner)) => {
                inner == suffix || is_below(inner, suffix)
            }
            _ => false,
        }
    }

    /// Whether this pattern names `ip` by address (an IP or a network), the
    /// only way to reach an [internal](is_internal) address: `*` and names
    /// never do.
    pub fn names_address(&self, ip: IpAddr) -> bool {
        matches!(self, HostPattern::Ip(_) | HostPattern::Cidr(..)) && self.matches_ip(ip)
    }

    /// Whether `ip`, which `name` resolved to, is reachable through this
    /// pattern: named by address, or public and named by `name`.
    pub fn reaches(&self, name: &str, ip: IpAddr) -> bool {
        self.names_address(ip) || (!is_internal(ip) && self.matches_name(name))
    }

    /// Whether a connection to this pattern needs a DNS lookup first.
    pub fn needs_lookup(&self) -> bool {
        matches!(
            self,
            HostPattern::Any | HostPattern::Name(_) | HostPattern::Wildcard(_)
        )
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostPattern::Ip(ip) => write!(f, "{ip}"),
            HostPattern::Cidr(ip, bits) => write!(f, "{ip}/{bits}"),
            HostPattern::Name(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Whether `ip` is inside the host or its networks rather than on the
/// internet: loopback, unspecified, private (RFC 1918, unique local),
/// shared (carrier-grade NAT), link-local (cloud metadata endpoints among
/// them), multicast and broadcast, IPv4-mapped forms included. A name never
/// reaches such an address; only a rule naming the address does (see
/// [`HostPattern::names_address`]), so DNS cannot point a granted name at
/// the host's own services.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv4 carried inside IPv6: IPv4-compatible (`::a.b.c.d`), NAT64
            // (`64:ff9b::/96`, `64:ff9b:1::/48`) and 6to4 (`2002::/16`)
            // reach the IPv4 address they carry.
            let embedded = |hi: u16, lo: u16| {
                internal_v4(std::net::Ipv4Addr::from(((hi as u32) << 16) | lo as u32))
            };
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[..6] == [0; 6] && embedded(s[6], s[7]))
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && embedded(s[6], s[7]))
                || (s[..3] == [0x64, 0xff9b, 1])
                || (s[0] == 0x2002 && embedded(s[1], s[2]))
                || (s[0] == 0x2001 && s[1] == 0)
        }
    }
}

/// [`is_internal`] for IPv4: also the IETF protocol block, the benchmarking
/// network and the reserved 240/4.
fn internal_v4(v4: std::net::Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_unspecified()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_broadcast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
}

fn is_below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32u32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    match width.checked_sub(u32::from(bits)) {
        Some(shift) if shift < width => (ip >> shift) == (net >> shift),
        Some(_) => true,
        None => false,
    }
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port.
    pub last: u16,
}

impl PortRange {
    /// Parses `443`, `8000-8999` or `*` (every port).
    pub fn parse(text: &str) -> Result<Self, String> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{p}` is not a port (0-65535)"))
        };
        let (first, last) = match text.trim() {
            "*" => (0, u16::MAX),
            t => match t.split_once('-') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => (port(t)?, port(t)?),
            },
        };
        if first > last {
            return Err(format!("port range `{text}` is empty"));
        }
        Ok(PortRange { first, last })
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    fn covers(&self, other: &PortRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.first, self.last) {
            (0, u16::MAX) => f.write_str("*"),
            (a, b) if a == b => write!(f, "{a}"),
            (a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// One `net` entry: `[listen:]host:ports`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetRule {
    /// `true` for a `listen:` rule (bind, listen and accept on the address);
    /// `false` for an outbound one (connect and send).
    pub listen: bool,
    /// The hosts.
    pub host: HostPattern,
    /// The ports.
    pub ports: PortRange,
}

impl NetRule {
    /// Parses `host:port`, `host:first-last`, `host:*`, each optionally
    /// prefixed with `listen:`. IPv6 addresses go in brackets.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (listen, rest) = match text.trim().strip_prefix("listen:") {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let (host, ports) = rest.rsplit_once(':').ok_or_else(|| {
            format!("`{text}` has no port: write `host:port`, `host:first-last` or `host:*`")
        })?;
        if host.contains(':') && !host.starts_with('[') {
            return Err(format!(
                "`{text}`: put IPv6 addresses in brackets, as `[::1]:80`"
            ));
        }
        Ok(NetRule {
            listen,
            host: HostPattern::parse(host).map_err(|e| format!("`{text}`: {e}"))?,
            ports: PortRange::parse(ports).map_err(|e| format!("`{text}`: {e}"))?,
        })
    }

    /// Whether every destination `other` allows is also allowed by `self`.
    pub fn covers(&self, other: &NetRule) -> bool {
        self.listen == other.listen
            && self.ports.covers(&other.ports)
            && self.host.covers(&other.host)
    }
}

impl std::fmt::Display for NetRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.listen {
            f.write_str("listen:")?;
        }
        write!(f, "{}:{}", self.host, self.ports)
    }
}

impl Serialize for NetRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> NetRule {
        NetRule::parse(text).expect(text)
    }

    #[test]
    fn parses_and_prints_rules() {
        for text in [
            "127.0.0.1:8080",
            "listen:127.0.0.1:9000-9010",
            "*.example.com:443",
            "[::1]:*",
            "10.0.0.0/8:*",
            "*:53",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
        for bad in [
            "example.com",
            "a.*.com:1",
            "::1:80",
            "x:70000",
            "x:9-1",
            "10.0.0.0/40:1",
        ] {
            assert!(NetRule::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn matches_addresses_and_names() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(rule("10.0.0.0/8:*").host.matches_ip(ip("10.2.3.4")));
        assert!(!rule("10.0.0.0/8:*").host.matches_ip(ip("11.0.0.1")));
        assert!(rule("127.0.0.1:1").host.matches_ip(ip("::ffff:127.0.0.1")));
        let wild = rule("*.example.com:443").host;
        assert!(wild.matches_name("api.example.com"));
        assert!(wild.matches_name("A.B.Example.com."));
        assert!(!wild.matches_name("example.com"));
        assert!(!wild.matches_name("badexample.com"));
        assert!(!wild.matches_ip(ip("93.184.216.34")));
    }

    #[test]
    fn internal_addresses_include_ipv4_carried_in_ipv6() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "0.1.2.3",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "::ffff:10.0.0.5",
            "::10.0.0.5",
            "64:ff9b::a00:5",
            "64:ff9b:1::1",
            "2002:a00:5::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(is_internal(ip(internal)), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(!is_internal(ip(public)), "{public}");
        }
    }

    #[test]
    fn coverage_is_containment() {
        let grant = rule("*.example.com:400-500");
        assert!(grant.covers(&rule("api.example.com:443")));
        assert!(grant.covers(&rule("*.eu.example.com:443")));
        assert!(!grant.covers(&rule("api.example.com:80")));
        assert!(!grant.covers(&rule("*:443")));
        assert!(!grant.covers(&rule("listen:api.example.com:443")));
        assert!(rule("127.0.0.0/8:*").covers(&rule("127.0.0.1:22")));
        assert!(rule("*:*").covers(&rule("10.0.0.0/8:1")));
        assert!(!rule("127.0.0.1:*").covers(&rule("127.0.0.0/8:1")));
    }
}
