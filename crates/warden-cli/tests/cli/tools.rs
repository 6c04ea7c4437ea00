//! Core modules, composition, a closed output pipe, and links to providers.

use super::*;

#[test]
fn core_modules_are_built_called_and_inspected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    for module in ["math", "json-rules"] {
        let source = format!("plugins/core-modules/{module}");
        let o = warden(&["build", &source, "--out", out], None);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let math = tmp.path().join("core-math");
    let math = math.to_str().expect("utf-8");
    let o = warden(&["call", math, "--export", "add", "--args", "3", "4"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "7");
    let o = warden(
        &["call", math, "--export", "add", "--args", "-3", "1"],
        None,
    );
    assert_eq!(stdout(&o).trim(), "-2", "{}", stderr(&o));
    let o = warden(&["call", math, "--export", "add", "--args", "3"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("takes 2 argument(s)"), "{}", stderr(&o));
    let o = warden(&["call", math, "--export", "spin"], None);
    assert_eq!(o.status.code(), Some(1), "a trap is a plugin failure");
    assert!(stderr(&o).contains("trapped (timeout)"), "{}", stderr(&o));

    let rules = tmp.path().join("core-json-rules");
    let rules = rules.to_str().expect("utf-8");
    let o = warden(
        &[
            "call",
            rules,
            "--input",
            r#"{"amount": 5, "country": "DK"}"#,
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let verdict: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("JSON");
    assert_eq!(verdict["approved"], true);
    let o = warden(&["call", rules, "--input", r#"{"lie": "pointer"}"#], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broke its ABI"), "{}", stderr(&o));
    let o = warden(&["inspect", rules], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("abi         json"), "{text}");
    assert!(text.contains("execute(i32, i32) -> (i64)"), "{text}");
}

#[test]
fn compose_plugs_a_library_into_a_plugin() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    let o = warden(&["build", "plugins/composition/shout", "--out", out], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let plugins = repo().join("plugins");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "compose-case-lib",
        ])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .status()
        .expect("cargo");
    assert!(status.success());
    let lib = plugins.join("target/wasm32-wasip2/release/compose_case_lib.wasm");
    let socket = tmp.path().join("compose-shout");
    let composed = tmp.path().join("composed");
    let o = warden(
        &[
            "compose",
            socket.to_str().expect("utf-8"),
            "--plug",
            lib.to_str().expect("utf-8"),
            "--out",
            composed.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(composed.join("plugin.toml").is_file());
    let o = warden(
        &[
            "call",
            composed.to_str().expect("utf-8"),
            "--input",
            "plugged in",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "PLUGGED IN");
    // The socket alone names the import it lacks.
    let o = warden(
        &["call", socket.to_str().expect("utf-8"), "--input", "x"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("warden-example:text/case"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    let dir = dist().to_str().expect("utf-8").to_string();
    let mut child = warden_command(&["list", "--dir", &dir, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn warden");
    // The reader goes away before the command writes (`warden list | true`).
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "no panic exit");
}

#[test]
fn call_loads_the_providers_a_plugin_links_to() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    for plugin in ["image-decoder", "image-stats"] {
        let source = format!("plugins/linking/{plugin}");
        let o = warden(&["build", &source, "--out", out], None);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let image = image::GrayImage::from_fn(4, 2, |x, _| image::Luma([x as u8 * 80]));
    let png = tmp.path().join("in.png");
    image.save(&png).expect("write png");
    let png = png.to_str().expect("utf-8");

    // `image-stats` alone is named; its provider comes from --dir.
    let granted = ["--dir", out, "--grant", "link:image-decoder"];
    let mut args = vec!["call", "image-stats", "--input-file", png];
    args.extend(granted);
    let o = warden(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        r#"{"width":4,"height":2,"min":0,"max":240,"mean":120,"histogram":[2,2,2,2]}"#
    );

    let o = warden(
        &["call", "image-stats", "--input-file", png, "--dir", out],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "an ungranted link is a usage error"
    );
    assert!(
        stderr(&o).contains("--grant link:image-decoder"),
        "{}",
        stderr(&o)
    );

    let stats_dir = tmp.path().join("image-stats");
    let o = warden(
        &[
            "inspect",
            stats_dir.to_str().expect("utf-8"),
            "--grant",
            "link:image-decoder",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let effective = text
        .split("effective permissions")
        .nth(1)
        .unwrap_or_else(|| panic!("effective permissions shown: {text}"));
    assert!(
        effective.contains("link warden-example:image/decoder@0.1.0 -> image-decoder"),
        "{text}"
    );
}

/// Copies the built example `name` into `root/plugins/name`.
pub(super) fn stage_example(root: &Path, name: &str) -> PathBuf {
    let to = root.join("plugins").join(name);
    std::fs::create_dir_all(&to).expect("dir");
    for entry in std::fs::read_dir(dist().join(name)).expect("built") {
        let from = entry.expect("entry").path();
        std::fs::copy(&from, to.join(from.file_name().expect("name"))).expect("copy");
    }
    to
}

#[test]
fn plugins_are_signed_verified_and_a_server_that_requires_it_loads_only_those() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = tmp.path().join("signing.key");
    let key_arg = key.to_str().expect("utf-8");
    let made = warden(&["keygen", "--out", key_arg], None);
    assert!(made.status.success(), "{}", stderr(&made));
    let public = stdout(&made).trim().to_string();
    assert!(public.starts_with("ed25519:"), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is its owner's only");
    }
    let again = warden(&["keygen", "--out", key_arg], None);
    assert_eq!(again.status.code(), Some(2), "an existing key is kept");

    let counter = stage_example(tmp.path(), "counter");
    let dir = counter.to_str().expect("utf-8");
    let unsigned = warden(&["verify", dir, "--key", &public], None);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(
        stderr(&unsigned).contains("not signed"),
        "{}",
        stderr(&unsigned)
    );
    let signed = warden(&["sign", dir, "--key", key_arg], None);
    assert!(signed.status.success(), "{}", stderr(&signed));
    assert!(counter.join("plugin.sig").is_file());
    let verified = warden(&["verify", dir, "--key", &public], None);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(stdout(&verified).contains(&format!("signed by {public}")));
    let other = tmp.path().join("other.key");
    let other_public = stdout(&warden(
        &["keygen", "--out", other.to_str().expect("utf-8")],
        None,
    ))
    .trim()
    .to_string();
    let untrusted = warden(&["verify", dir, "--key", &other_public], None);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        stderr(&untrusted).contains("does not trust"),
        "{}",
        stderr(&untrusted)
    );

    // Serving with signatures required: the signed plugin serves, the
    // unsigned one beside it is refused and never loads.
    stage_example(tmp.path(), "text-transform");
    let server = serve_examples_with(
        tmp.path(),
        &[],
        &format!("[signatures]\nrequire = true\ntrusted-keys = [\"{public}\"]\n"),
    );
    let agent = agent();
    let ready: serde_json::Value = agent
        .get(format!("{}/readyz", server.url))
        .call()
        .expect("readyz")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(ready["plugins"], serde_json::json!(["counter"]), "{ready}");
    let call = |plugin: &str| {
        agent
            .post(format!(
                "{}/v1/plugins/{plugin}/process?op=incr&key=k",
                server.url
            ))
            .send("x")
            .expect("call")
            .status()
    };
    assert_eq!(call("counter"), 200);
    assert_eq!(call("text-transform"), 404);
}
