//! Operator grants on the command line: what they decide, what the audit
//! log remembers, and `--trim`.

use super::*;

/// The hostile suite's `connect` attack, assembled in a fresh directory:
/// its manifest asks for `net 127.0.0.1:1` only.
fn hostile_connect() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-hostile");
        let built = warden(
            &[
                "build",
                "plugins/hostile/plugin",
                "--out",
                out.to_str().expect("utf-8"),
            ],
            None,
        );
        assert!(built.status.success(), "{}", stderr(&built));
        out
    });
    let dir = tempfile::tempdir().expect("tempdir").keep().join("connect");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    std::fs::copy(
        repo().join("plugins/hostile/suite/connect/plugin.toml"),
        dir.join("plugin.toml"),
    )
    .expect("manifest");
    std::fs::copy(out.join("hostile/hostile.wasm"), dir.join("hostile.wasm")).expect("wasm");
    dir
}

#[test]
fn grants_decide_and_the_audit_log_remembers() {
    let plugin = hostile_connect();
    let plugin = plugin.to_str().expect("utf-8");
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path().to_str().expect("utf-8");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let target = format!(
        "target=127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );

    let refused = warden(&["--data-dir", data, "call", plugin, "-o", &target], None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--grant net:127.0.0.1:1"),
        "{}",
        stderr(&refused)
    );

    let inspect = warden(&["--grant", "net:127.0.0.1:1", "inspect", plugin], None);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let text = stdout(&inspect);
    assert!(
        text.contains("requested permissions\n  net 127.0.0.1:1  (a harmless allowed port)")
            && text.contains("effective permissions\n  net 127.0.0.1:1"),
        "{text}"
    );

    let contained = warden(
        &[
            "--grant",
            "net:127.0.0.1:1",
            "--data-dir",
            data,
            "call",
            plugin,
            "-o",
            &target,
        ],
        None,
    );
    assert_eq!(contained.status.code(), Some(1), "{}", stderr(&contained));
    assert!(
        stderr(&contained).contains("contained"),
        "{}",
        stderr(&contained)
    );
    assert!(listener.accept().is_err(), "no connection may arrive");

    let audit = warden(&["--data-dir", data, "audit", "--json"], None);
    assert!(audit.status.success(), "{}", stderr(&audit));
    let kinds: Vec<String> = stdout(&audit)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            format!(
                "{} {}",
                v["kind"].as_str().unwrap_or(""),
                v["resource"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        kinds[0].starts_with("grant-refused net 127.0.0.1:1"),
        "{kinds:?}"
    );
    assert!(
        kinds[1].starts_with("socket-denied tcp connect 127.0.0.1:"),
        "{kinds:?}"
    );

    let filtered = warden(
        &[
            "--data-dir",
            data,
            "audit",
            "--kind",
            "socket-denied",
            "--since",
            "1h",
        ],
        None,
    );
    let lines = stdout(&filtered);
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("hostile-connect 0.1.0"), "{lines}");
    let future = warden(
        &[
            "--data-dir",
            data,
            "audit",
            "--since",
            "2999-01-01T00:00:00Z",
        ],
        None,
    );
    assert!(stdout(&future).is_empty());
    let bad = warden(
        &["--data-dir", data, "audit", "--since", "yesterday-ish"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn trim_loads_without_the_ungranted_permission() {
    let plugin = hostile_connect();
    let plugin = plugin.to_str().expect("utf-8");
    let listed = warden(
        &[
            "--trim",
            "--verbose",
            "list",
            "--dir",
            plugin.trim_end_matches("/connect"),
        ],
        None,
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.contains("hostile-connect") && text.contains("ready"),
        "{text}"
    );
    assert!(text.contains("trimmed: net 127.0.0.1:1"), "{text}");
}
