//! `oci://registry/repository[:tag|@digest]`: the one way a plugin in a
//! registry is named, wherever a plugin path is accepted.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use oci_client::Reference;

use crate::error::{Error, Result};

/// The scheme that marks a plugin reference as an OCI artifact.
pub const SCHEME: &str = "oci://";

/// Whether `text` names an OCI artifact rather than a path.
pub fn is_oci_reference(text: &str) -> bool {
    text.starts_with(SCHEME)
}

/// A parsed `oci://` reference whose registry is named explicitly (no
/// silent default to Docker Hub).
#[derive(Debug, Clone)]
pub struct OciReference(Reference);

impl OciReference {
    /// Parses `oci://registry/repository[:tag|@digest]`.
    pub fn parse(text: &str) -> Result<OciReference> {
        let bad = |message: &str| Error::Reference {
            reference: text.to_string(),
            message: message.to_string(),
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it must start with `oci://`"))?;
        let registry = rest.split('/').next().unwrap_or_default();
        let named = rest.contains('/')
            && (registry.contains('.') || registry.contains(':') || registry == "localhost");
        if !named {
            return Err(bad(
                "name the registry, as in `oci://ghcr.io/org/plugin:1.0` or \
                 `oci://127.0.0.1:5000/plugin:1.0`",
            ));
        }
        Reference::from_str(rest)
            .map(OciReference)
            .map_err(|e| bad(&e.to_string()))
    }

    /// The client's reference.
    pub fn inner(&self) -> &Reference {
        &self.0
    }

    /// Whether the registry is on this machine (spoken to over plain HTTP,
    /// as Docker does).
    pub fn is_loopback(&self) -> bool {
        let registry = self.0.registry();
        let host = match registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.0.whole())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_registry() {
        let r = OciReference::parse("oci://127.0.0.1:5000/plugins/upper:1.0").expect("parse");
        assert_eq!(r.inner().registry(), "127.0.0.1:5000");
        assert_eq!(r.inner().repository(), "plugins/upper");
        assert_eq!(r.inner().tag(), Some("1.0"));
        assert!(r.is_loopback());
        assert!(
            !OciReference::parse("oci://ghcr.io/org/p:1")
                .expect("parse")
                .is_loopback()
        );
        for bad in [
            "upper:1.0",
            "oci://upper:1.0",
            "oci://library/upper",
            "/tmp/x",
        ] {
            let err = OciReference::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
