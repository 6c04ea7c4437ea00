//! Plugins through a real OCI registry (Debian's `docker-registry` on
//! 127.0.0.1): push, pull into a clean data directory with the same bytes
//! and digests, deploy and serve from `oci://`, and the refusals: a
//! component changed in the registry, and an unsigned artifact on a server
//! that requires signatures.

use std::path::Path;

use serde_json::Value;

use super::common::services::Service;
use super::tools::stage_example;
use super::{agent, stderr, stdout, warden};

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("json output")
}

fn sha256(path: &Path) -> String {
    format!(
        "sha256:{}",
        warden::sha256_hex(&std::fs::read(path).expect("read"))
    )
}

#[test]
fn plugins_travel_through_a_registry_unchanged_and_tampering_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(registry) = Service::registry(&tmp.path().join("registry")) else {
        return;
    };
    let key = tmp.path().join("signing.key");
    let key_arg = key.to_str().expect("utf-8");
    let public = stdout(&warden(&["keygen", "--out", key_arg], None))
        .trim()
        .to_string();
    let counter = stage_example(tmp.path(), "counter");
    let counter_arg = counter.to_str().expect("utf-8");
    let signed = warden(&["sign", counter_arg, "--key", key_arg], None);
    assert!(signed.status.success(), "{}", stderr(&signed));
    let unsigned = stage_example(tmp.path(), "text-transform");
    let at = |repo: &str| format!("oci://127.0.0.1:{}/warden/{repo}:1.0", registry.port);

    let pushed = json(&warden(
        &["push", counter_arg, &at("counter"), "--json"],
        None,
    ));
    assert_eq!(pushed["signed"], true);
    assert_eq!(
        pushed["component_digest"],
        sha256(&counter.join("counter.wasm"))
    );

    // `wkg`, the WebAssembly package tool, reads what Warden pushes: the
    // same component, byte for byte.
    if let Some(wkg) =
        super::common::services::installed("wkg", "cargo install wkg --locked --root /usr/local")
    {
        let host = format!("127.0.0.1:{}", registry.port);
        let out = tmp.path().join("from-wkg.wasm");
        let read = std::process::Command::new(wkg)
            .args(["oci", "pull", "--insecure", &host])
            .arg(format!("{host}/warden/counter:1.0"))
            .arg("-o")
            .arg(&out)
            .env("HOME", tmp.path())
            .output()
            .expect("run wkg");
        assert!(read.status.success(), "{}", stderr(&read));
        assert_eq!(
            std::fs::read(&out).expect("wkg's file"),
            std::fs::read(counter.join("counter.wasm")).expect("pushed component"),
            "wkg read another component"
        );
    }

    // A clean data directory gets the same files, byte for byte.
    let clean = tmp.path().join("clean");
    let clean_arg = clean.to_str().expect("utf-8");
    let pulled = json(&warden(
        &["--data-dir", clean_arg, "pull", &at("counter"), "--json"],
        None,
    ));
    assert_eq!(pulled["digest"], pushed["digest"], "same manifest digest");
    assert_eq!(pulled["fetched"], true);
    assert_eq!(pulled["signed"], true);
    let dir = Path::new(pulled["dir"].as_str().expect("dir"));
    assert!(dir.starts_with(&clean), "pulled into the data directory");
    for file in ["counter.wasm", "plugin.toml", "plugin.sig"] {
        assert_eq!(
            std::fs::read(dir.join(file)).expect("pulled file"),
            std::fs::read(counter.join(file)).expect("pushed file"),
            "{file} changed on the way"
        );
    }
    let verified = warden(
        &["verify", dir.to_str().expect("utf-8"), "--key", &public],
        None,
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    // The signature is a referrer of the plugin's artifact, not part of
    // it: listed in the referrers tag of a registry without the referrers
    // API, as an artifact whose subject is the plugin's manifest.
    let digest = pushed["digest"].as_str().expect("digest");
    let manifest = |reference: &str, accept: &str| -> Value {
        agent()
            .get(format!(
                "http://127.0.0.1:{}/v2/warden/counter/manifests/{reference}",
                registry.port
            ))
            .header("accept", accept)
            .call()
            .expect("manifest")
            .body_mut()
            .read_json()
            .expect("json")
    };
    let plugin = manifest(digest, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        plugin["annotations"]
            .as_object()
            .map(|a| a.keys().any(|k| k.contains("signature"))),
        Some(false),
        "{plugin}"
    );
    let referrers = manifest(
        &digest.replace(':', "-"),
        "application/vnd.oci.image.index.v1+json",
    );
    let listed = referrers["manifests"].as_array().expect("referrers");
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(
        listed[0]["artifactType"],
        warden_oci::SIGNATURE_ARTIFACT_TYPE
    );
    let signature = manifest(
        listed[0]["digest"].as_str().expect("digest"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(signature["subject"]["digest"], digest, "{signature}");

    // By digest, the same artifact; already in the store, not fetched.
    let by_digest = format!(
        "oci://127.0.0.1:{}/warden/counter@{}",
        registry.port,
        pushed["digest"].as_str().expect("digest")
    );
    let again = json(&warden(
        &["--data-dir", clean_arg, "pull", &by_digest, "--json"],
        None,
    ));
    assert_eq!(
        (again["dir"].clone(), again["fetched"].clone()),
        (pulled["dir"].clone(), Value::Bool(false))
    );

    // `deploy oci://…` pulls and deploys.
    let deployed = warden(&["--data-dir", clean_arg, "deploy", &at("counter")], None);
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert!(
        stdout(&deployed).contains("deployed counter"),
        "{}",
        stdout(&deployed)
    );

    // A component changed in the registry's storage is refused, and
    // nothing is kept.
    let pushed_tt = json(&warden(
        &[
            "push",
            unsigned.to_str().expect("utf-8"),
            &at("text-transform"),
            "--json",
        ],
        None,
    ));
    let blob = registry.registry_blob(pushed_tt["component_digest"].as_str().expect("digest"));
    let original = std::fs::read(&blob).expect("blob");
    let mut changed = original.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0xff;
    std::fs::write(&blob, &changed).expect("tamper");
    let fresh = tmp.path().join("fresh");
    let tampered = warden(
        &[
            "--data-dir",
            fresh.to_str().expect("utf-8"),
            "pull",
            &at("text-transform"),
        ],
        None,
    );
    assert_eq!(tampered.status.code(), Some(2));
    assert!(
        stderr(&tampered).contains("the component's digest is"),
        "{}",
        stderr(&tampered)
    );
    let kept = std::fs::read_dir(fresh.join("oci"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(kept, 0, "nothing of a tampered artifact is kept");
    std::fs::write(&blob, &original).expect("restore");

    // A server that requires signatures, given both artifacts by
    // reference: the signed one serves, the unsigned one never loads.
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).expect("dir");
    let file = served.join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\n\
             [plugins]\ndirs = [\"{}\", \"{}\"]\nsources = []\n\
             [signatures]\nrequire = true\ntrusted-keys = [\"{public}\"]\n",
            at("counter"),
            at("text-transform")
        ),
    )
    .expect("warden.toml");
    let server = super::common::Serving::start("serve", &file);
    let agent = agent();
    let ready: Value = agent
        .get(format!("{}/readyz", server.url))
        .call()
        .expect("readyz")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(ready["plugins"], serde_json::json!(["counter"]), "{ready}");
    let status = agent
        .post(format!(
            "{}/v1/plugins/counter/process?op=incr&key=k",
            server.url
        ))
        .send("x")
        .expect("call")
        .status();
    assert_eq!(status, 200);
    let refused: Value = agent
        .get(format!("{}/v1/plugins/text-transform", server.url))
        .call()
        .expect("get")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(refused["status"], 404, "{refused}");
}
