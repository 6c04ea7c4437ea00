//! Signed plugins: an ed25519 signature over a plugin's component and its
//! manifest (which grants its permissions, so it is signed too), kept in
//! `plugin.sig` beside them. A host that requires signatures loads only
//! plugins signed by a key it trusts, and checks before compiling anything.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;

/// The signature file, beside the manifest.
pub const SIGNATURE_FILE: &str = "plugin.sig";

/// What is signed starts with this, so that a Warden signature means
/// nothing to any other verifier, nor theirs to Warden.
const CONTEXT: &str = "warden-plugin-signature-v1\n";

const KEY_PREFIX: &str = "ed25519:";

/// A public key that signs plugins, written `ed25519:<base64>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix(KEY_PREFIX).ok_or_else(|| {
            format!("`{text}` is not a public key: it must start with `{KEY_PREFIX}`")
        })?;
        let bytes: [u8; 32] = BASE64
            .decode(encoded)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("`{text}` is not a public key: not 32 bytes of base64"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| format!("`{text}` is not a valid ed25519 public key"))
    }
}

/// A secret key that signs plugins. Its file holds `ed25519-secret:<base64>`
/// and must be readable by its owner only.
pub struct SigningKey(ed25519_dalek::SigningKey);

const SECRET_PREFIX: &str = "ed25519-secret:";

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<SigningKey, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a new key: {e}"))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The text of its key file.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", BASE64.encode(self.0.to_bytes()))
    }

    /// The key in a key file's text.
    pub fn from_text(text: &str) -> Result<SigningKey, String> {
        let seed: [u8; 32] = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .and_then(|encoded| BASE64.decode(encoded).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!("not a signing key: expected `{SECRET_PREFIX}` and 32 bytes of base64")
            })?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Its public key, the one hosts trust.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signature file for `component` and `manifest` (their bytes as
    /// they are on disk).
    pub fn sign(&self, component: &[u8], manifest: &[u8]) -> String {
        let digests = Digests::of(component, manifest);
        let signature = self.0.sign(digests.message().as_bytes());
        let file = SignatureFile {
            key: self.public_key().to_string(),
            component_sha256: digests.component,
            manifest_sha256: digests.manifest,
            signature: BASE64.encode(signature.to_bytes()),
        };
        let body = toml::to_string(&file).unwrap_or_default();
        format!(
            "# Made by `warden sign`: who vouches for this plugin's component and manifest.\n{body}"
        )
    }
}

/// Why a plugin's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// There is no signature file.
    #[error("it is not signed (no {SIGNATURE_FILE} beside its manifest)")]
    Missing,
    /// The signature file cannot be read as one.
    #[error("its {SIGNATURE_FILE} is malformed: {0}")]
    Malformed(String),
    /// It was signed with a key the host does not trust.
    #[error("it is signed by {0}, a key this host does not trust")]
    UntrustedKey(String),
    /// The component is not the one that was signed.
    #[error("its component changed after it was signed")]
    ComponentChanged,
    /// The manifest is not the one that was signed.
    #[error("its manifest changed after it was signed")]
    ManifestChanged,
    /// The signature does not match the key and the files.
    #[error("its signature does not match")]
    BadSignature,
}

/// Checks the signature file `text` against `component` and `manifest`;
/// returns the key that signed them, which is one of `trusted`.
pub fn verify(
    text: Option<&str>,
    component: &[u8],
    manifest: &[u8],
    trusted: &[PublicKey],
) -> Result<PublicKey, SignatureProblem> {
    let text = text.ok_or(SignatureProblem::Missing)?;
    let file: SignatureFile =
        toml::from_str(text).map_err(|e| SignatureProblem::Malformed(e.message().to_string()))?;
    let key: PublicKey = file.key.parse().map_err(SignatureProblem::Malformed)?;
    if !trusted.contains(&key) {
        return Err(SignatureProblem::UntrustedKey(key.to_string()));
    }
    let digests = Digests::of(component, manifest);
    if digests.component != file.component_sha256 {
        return Err(SignatureProblem::ComponentChanged);
    }
    if digests.manifest != file.manifest_sha256 {
        return Err(SignatureProblem::ManifestChanged);
    }
    let signature: [u8; 64] = BASE64
        .decode(&file.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            SignatureProblem::Malformed("`signature` is not 64 bytes of base64".into())
        })?;
    key.0
        .verify(
            digests.message().as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| SignatureProblem::BadSignature)?;
    Ok(key)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SignatureFile {
    key: String,
    component_sha256: String,
    manifest_sha256: String,
    signature: String,
}

struct Digests {
    component: String,
    manifest: String,
}

impl Digests {
    fn of(component: &[u8], manifest: &[u8]) -> Digests {
        Digests {
            component: sha256_hex(component),
            manifest: sha256_hex(manifest),
        }
    }

    fn message(&self) -> String {
        format!(
            "{CONTEXT}component-sha256={}\nmanifest-sha256={}\n",
            self.component, self.manifest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_until_either_file_changes_or_the_key_is_not_trusted() {
        let key = SigningKey::generate().expect("key");
        let other = SigningKey::generate().expect("key");
        let trusted = [key.public_key()];
        let file = key.sign(b"component", b"name = \"p\"");
        assert_eq!(
            verify(Some(&file), b"component", b"name = \"p\"", &trusted),
            Ok(key.public_key())
        );
        let refused = |text: Option<&str>, c: &[u8], m: &[u8], t: &[PublicKey]| {
            verify(text, c, m, t).expect_err("refused")
        };
        assert_eq!(
            refused(Some(&file), b"componenT", b"name = \"p\"", &trusted),
            SignatureProblem::ComponentChanged
        );
        assert_eq!(
            refused(Some(&file), b"component", b"name = \"q\"", &trusted),
            SignatureProblem::ManifestChanged
        );
        assert!(matches!(
            refused(
                Some(&file),
                b"component",
                b"name = \"p\"",
                &[other.public_key()]
            ),
            SignatureProblem::UntrustedKey(_)
        ));
        assert_eq!(
            refused(None, b"component", b"", &trusted),
            SignatureProblem::Missing
        );
        // The digests rewritten to match other files: the signature no
        // longer does.
        let forged = file
            .replace(&sha256_hex(b"component"), &sha256_hex(b"other"))
            .replace(&sha256_hex(b"name = \"p\""), &sha256_hex(b"x"));
        assert_eq!(
            refused(Some(&forged), b"other", b"x", &trusted),
            SignatureProblem::BadSignature
        );
        assert!(matches!(
            refused(Some("key = 1"), b"", b"", &trusted),
            SignatureProblem::Malformed(_)
        ));
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let key = SigningKey::generate().expect("key");
        let again = SigningKey::from_text(&key.to_text()).expect("parse");
        assert_eq!(again.public_key(), key.public_key());
        let public: PublicKey = key.public_key().to_string().parse().expect("parse");
        assert_eq!(public, key.public_key());
        for bad in ["", "ed25519:", "ed25519:AAAA", "rsa:abc", "ed25519:!!!"] {
            assert!(bad.parse::<PublicKey>().is_err(), "{bad}");
        }
        assert!(SigningKey::from_text("ed25519-secret:short").is_err());
    }
}
