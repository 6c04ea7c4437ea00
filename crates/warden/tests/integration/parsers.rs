//! Every parser a client, a manifest or an operator's file can reach, fed
//! whatever proptest makes up: none panics, what parses prints back to
//! itself, and the matching it feeds keeps its meaning (an IPv4-mapped
//! network matches like the IPv4 network it is).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use proptest::prelude::*;
use warden::permissions::{HostPattern, NetRule, Origin, PortRange};
use warden::{Grants, Manifest, ProcessRequest, Warden};

/// Text that looks like what the parsers take: hosts, ports, schemes and
/// the punctuation between them, with some of everything else.
fn spec() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.*:/\\[\\]-]{0,40}",
        "(fs|net|http|env|kv|link|listen)?:?[a-z0-9.*:/\\[\\]@^_-]{0,40}",
        "\\PC{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn network_parsers_never_panic(text in spec()) {
        let _ = HostPattern::parse(&text);
        let _ = PortRange::parse(&text);
        if let Ok(rule) = NetRule::parse(&text) {
            prop_assert_eq!(NetRule::parse(&rule.to_string()).ok(), Some(rule));
        }
        if let Ok(origin) = Origin::parse(&text) {
            let _ = origin.allows("https", &text, 443);
        }
        let _ = Grants::new().grant(&text);
        let _ = Grants::new().deny(&text);
    }

    #[test]
    fn networks_of_any_prefix_match_without_panicking(
        net in any::<[u8; 16]>(),
        bits in 0u16..=200,
        ip in any::<[u8; 16]>(),
    ) {
        for text in [
            format!("{}/{bits}", Ipv6Addr::from(net)),
            format!("[{}/{bits}]", Ipv6Addr::from(net)),
            format!("{}/{bits}", Ipv4Addr::new(net[0], net[1], net[2], net[3])),
        ] {
            if let Ok(pattern) = HostPattern::parse(&text) {
                let _ = pattern.matches_ip(IpAddr::from(ip));
                let _ = pattern.matches_ip(IpAddr::from([ip[0], ip[1], ip[2], ip[3]]));
                prop_assert_eq!(HostPattern::parse(&pattern.to_string()).ok(), Some(pattern));
            }
        }
    }

    /// `::ffff:a.b.c.d/n` is the IPv4 network `a.b.c.d/(n-96)`: it must not
    /// match every IPv4 address (nor panic) because its prefix is longer
    /// than 32 bits.
    #[test]
    fn ipv4_mapped_networks_match_as_their_ipv4_network(
        net in any::<[u8; 4]>(),
        bits in 0u8..=32,
        ip in any::<[u8; 4]>(),
    ) {
        let v4 = HostPattern::parse(&format!("{}/{bits}", Ipv4Addr::from(net))).expect("v4");
        let mapped = HostPattern::parse(&format!("::ffff:{}/{}", Ipv4Addr::from(net), bits + 96))
            .expect("mapped");
        let ip = Ipv4Addr::from(ip);
        for candidate in [IpAddr::V4(ip), IpAddr::V6(ip.to_ipv6_mapped())] {
            prop_assert_eq!(mapped.matches_ip(candidate), v4.matches_ip(candidate));
        }
        let short = format!("::ffff:{}/{bits}", Ipv4Addr::from(net));
        prop_assert!(HostPattern::parse(&short).is_err(), "{short} parsed");
    }

    #[test]
    fn manifests_never_panic(text in "\\PC{0,200}", key in "[a-z-]{1,20}", value in "\\PC{0,30}") {
        let _ = Manifest::parse(&text, Path::new("p.toml"));
        let shaped = format!(
            "name = \"p\"\nversion = \"1.0.0\"\nworld = \"processor\"\n[limits]\n{key} = {value}\n\
             [permissions]\n{key} = [\"{value}\"]\n"
        );
        let _ = Manifest::parse(&shaped, Path::new("p.toml"));
    }

    /// Options keep the last value of each key, in the order of last
    /// appearance, as one `option` after another would.
    #[test]
    fn options_replace_earlier_ones_like_option_does(keys in prop::collection::vec(0u8..12, 0..64)) {
        let pairs: Vec<(String, String)> =
            keys.iter().enumerate().map(|(i, k)| (format!("k{k}"), i.to_string())).collect();
        let one_by_one = pairs
            .iter()
            .fold(ProcessRequest::new(""), |r, (k, v)| r.option(k.clone(), v.clone()));
        let at_once = ProcessRequest::new("").options(pairs);
        prop_assert_eq!(at_once.options, one_by_one.options);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Plugin targets from a URL path (`name`, `name@1.2.0`, `name@^1`).
    #[test]
    fn targets_never_panic(target in "[a-z@^~<>=*.,0-9 -]{0,30}") {
        static HOST: std::sync::OnceLock<Warden> = std::sync::OnceLock::new();
        let host = HOST.get_or_init(|| Warden::new().expect("host"));
        let _ = host.get(&target);
        let _ = host.deployment(&target);
    }
}
