//! HTTP origins (`scheme://host[:port]`, with `*` wildcards in the host) as
//! the `http` permission names them.

use serde::Serialize;

use super::net::HostPattern;

/// An allowed HTTP origin: scheme, host pattern and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The hosts.
    pub host: HostPattern,
    /// The port (the scheme's default when the text has none).
    pub port: u16,
}

impl Origin {
    /// Parses `https://api.example.com`, `https://*.example.org:8443`,
    /// `http://127.0.0.1:8080`. Paths, queries and user info are refused:
    /// an origin is scheme, host and port only.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin: write `https://host[:port]`"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = Self::default_port(&scheme)
            .ok_or_else(|| format!("`{text}`: the scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}`: an origin has no path, query or user; write `{scheme}://host[:port]`"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.ends_with(']') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("`{text}`: `{port}` is not a port"))?,
            ),
            _ => (rest, default_port),
        };
        Ok(Origin {
            scheme,
            host: HostPattern::parse(host).map_err(|e| format!("`{text}`: {e}"))?,
            port,
        })
    }

    /// The port of `scheme` (`http` or `https`) when a URL names none.
    pub fn default_port(scheme: &str) -> Option<u16> {
        match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        }
    }

    /// Whether a request to `scheme://host:port` is within this origin.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
            && self.port == port
            && self.host.matches_name(host)
    }

    /// Whether every origin `other` allows is also allowed by `self`.
    pub fn covers(&self, other: &Origin) -> bool {
        self.scheme == other.scheme && self.port == other.port && self.host.covers(&other.host)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_origins_with_default_ports() {
        let o = Origin::parse("https://api.example.com").expect("origin");
        assert_eq!(o.to_string(), "https://api.example.com:443");
        let w = Origin::parse("https://*.example.org:8443/").expect("origin");
        assert!(w.allows("https", "a.example.org", 8443));
        assert!(!w.allows("https", "a.example.org", 443));
        assert!(!w.allows("http", "a.example.org", 8443));
        assert!(
            Origin::parse("http://[::1]:8080")
                .expect("v6")
                .allows("http", "[::1]", 8080)
        );
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://x/path",
            "https://u@x",
            "https://x:y",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage() {
        let grant = Origin::parse("https://*.example.org").expect("grant");
        assert!(grant.covers(&Origin::parse("https://a.example.org").expect("o")));
        assert!(!grant.covers(&Origin::parse("http://a.example.org").expect("o")));
        assert!(!grant.covers(&Origin::parse("https://example.org").expect("o")));
    }
}
