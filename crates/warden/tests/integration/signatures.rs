//! Signed plugins: a host that requires signatures loads what a key it
//! trusts signed, and refuses — before compiling, audited, nothing loaded —
//! an unsigned plugin, one signed by another key, and one whose component
//! or manifest (its permissions) changed after it was signed.

use warden_testkit as common;

use std::path::Path;

use warden::{AuditKind, Error, SIGNATURE_FILE, SignatureProblem, SigningKey, Warden};

/// Signs the staged plugin in `dir` with `key`.
fn sign(dir: &Path, key: &SigningKey) {
    let manifest = std::fs::read(dir.join("plugin.toml")).expect("manifest");
    let component = std::fs::read(dir.join("text-transform.wasm")).expect("component");
    std::fs::write(dir.join(SIGNATURE_FILE), key.sign(&component, &manifest)).expect("sign");
}

#[test]
fn only_plugins_signed_by_a_trusted_key_load() {
    let root = tempfile::tempdir().expect("tmp");
    let key = SigningKey::generate().expect("key");
    let stranger = SigningKey::generate().expect("key");
    let host = Warden::builder()
        .require_signatures(vec![key.public_key()])
        .trust_loaded_dirs(true)
        .build()
        .expect("host");
    let refused = |dir: &Path| match host.load_blocking(dir) {
        Err(Error::Signature { problem, .. }) => problem,
        other => panic!("loaded {}: {other:?}", dir.display()),
    };

    let signed = common::stage(root.path(), "text-transform", "1.0.0");
    sign(&signed, &key);
    host.load_blocking(&signed).expect("a signed plugin loads");

    let unsigned = common::stage(root.path(), "text-transform", "1.0.1");
    assert_eq!(refused(&unsigned), SignatureProblem::Missing);

    let foreign = common::stage(root.path(), "text-transform", "1.0.2");
    sign(&foreign, &stranger);
    assert_eq!(
        refused(&foreign),
        SignatureProblem::UntrustedKey(stranger.public_key().to_string())
    );

    let patched = common::stage(root.path(), "text-transform", "1.0.3");
    sign(&patched, &key);
    let component = patched.join("text-transform.wasm");
    let mut bytes = std::fs::read(&component).expect("component");
    bytes.push(0);
    std::fs::write(&component, bytes).expect("patch");
    assert_eq!(refused(&patched), SignatureProblem::ComponentChanged);

    // Its manifest asks for more after signing: the grant it would get is
    // not the one that was signed.
    let escalated = common::stage(root.path(), "text-transform", "1.0.4");
    sign(&escalated, &key);
    let manifest = escalated.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        format!("{text}\n[permissions]\nenv = [\"HOME\"]\n"),
    )
    .expect("escalate");
    assert_eq!(refused(&escalated), SignatureProblem::ManifestChanged);

    let versions: Vec<String> = host
        .plugins()
        .iter()
        .map(|p| p.info().version.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0"], "only the signed plugin is loaded");
    let audited = common::audited(&host, Some("text-transform"), AuditKind::SignatureRefused);
    assert_eq!(audited.len(), 4, "{audited:#?}");

    // What the application loads from bytes is its own to vouch for.
    host.load_bytes_blocking(
        common::manifest_from("name = \"own\"\nversion = \"0.1.0\"\nworld = \"processor\"\n"),
        common::wasm("text-transform"),
    )
    .expect("bytes from the application load");
}
