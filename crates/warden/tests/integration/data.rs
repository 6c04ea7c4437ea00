//! The per-plugin data directory end to end through the `notes` plugin:
//! files land in the plugin's own directory on the host, survive a host
//! restart, stay invisible to other plugins, and stop at the quota.

use warden_testkit as common;

use std::path::Path;

use warden::{AuditKind, Error, PluginError, ProcessRequest, Warden};

/// `notes` loaded as `name`, with `extra` manifest text (top level).
fn notes(host: &Warden, name: &str, extra: &str) -> warden::Plugin {
    let text = std::fs::read_to_string(common::plugin_dir("notes").join("plugin.toml"))
        .expect("manifest")
        .replace("name = \"notes\"", &format!("name = \"{name}\""))
        .replace("[limits]", &format!("{extra}\n[limits]"));
    host.load_bytes_blocking(common::manifest_from(&text), common::wasm("notes"))
        .expect("load notes")
}

fn run(plugin: &warden::Plugin, op: &str, name: &str, input: &[u8]) -> warden::Result<Vec<u8>> {
    plugin
        .process_blocking(
            ProcessRequest::new(input)
                .option("op", op)
                .option("name", name),
        )
        .map(|r| r.output)
}

fn host_at(dir: &Path) -> Warden {
    Warden::builder().data_dir(dir).build().expect("host")
}

#[test]
fn notes_are_files_in_the_plugins_own_directory_and_survive_a_restart() {
    let data = tempfile::tempdir().expect("tmp");
    {
        let host = host_at(data.path());
        let plugin = notes(&host, "notes", "");
        run(&plugin, "write", "todo", b"buy milk").expect("write");
        run(&plugin, "append", "todo", b", eggs").expect("append");
        let on_disk = data.path().join("plugins/notes/data/todo.txt");
        assert_eq!(plugin.info().data_dir.as_deref(), on_disk.parent());
        assert_eq!(std::fs::read(&on_disk).expect("file"), b"buy milk, eggs");
        host.shutdown_blocking().expect("shutdown");
    }
    let host = host_at(data.path());
    let plugin = notes(&host, "notes", "");
    assert_eq!(
        run(&plugin, "read", "todo", b"").expect("read"),
        b"buy milk, eggs"
    );
    assert_eq!(run(&plugin, "list", "-", b"").expect("list"), b"todo");
}

#[test]
fn plugins_cannot_see_each_others_data() {
    let data = tempfile::tempdir().expect("tmp");
    let host = host_at(data.path());
    let alpha = notes(&host, "alpha", "");
    let beta = notes(&host, "beta", "");
    run(&alpha, "write", "secret", b"alpha only").expect("write");
    match run(&beta, "read", "secret", b"") {
        Err(Error::Plugin {
            error: PluginError::InvalidInput(m),
            ..
        }) => assert!(m.contains("no such note"), "{m}"),
        other => panic!("beta read alpha's note: {other:?}"),
    }
    assert_eq!(run(&beta, "list", "-", b"").expect("list"), b"");
    assert_ne!(alpha.info().data_dir, beta.info().data_dir);
}

#[test]
fn a_plugin_without_data_dir_has_no_data_directory() {
    let data = tempfile::tempdir().expect("tmp");
    let host = host_at(data.path());
    let text = std::fs::read_to_string(common::plugin_dir("notes").join("plugin.toml"))
        .expect("manifest")
        .replace("data-dir = true", "");
    let plugin = host
        .load_bytes_blocking(common::manifest_from(&text), common::wasm("notes"))
        .expect("load");
    assert!(plugin.info().data_dir.is_none());
    match run(&plugin, "write", "x", b"1") {
        Err(Error::Plugin {
            error: PluginError::InvalidInput(m),
            ..
        }) => assert!(m.contains("No such file"), "{m}"),
        other => panic!("writing without a data directory: {other:?}"),
    }
    assert!(!data.path().join("plugins/notes").exists());
}

#[test]
fn writes_stop_at_the_quota_and_resume_after_deleting() {
    let data = tempfile::tempdir().expect("tmp");
    let host = host_at(data.path());
    let text = std::fs::read_to_string(common::plugin_dir("notes").join("plugin.toml"))
        .expect("manifest")
        .replace("data-mb = 16", "data-mb = 1")
        .replace("name = \"notes\"", "name = \"small\"");
    let small = host
        .load_bytes_blocking(common::manifest_from(&text), common::wasm("notes"))
        .expect("load");
    let chunk = vec![b'n'; 600 << 10];
    run(&small, "write", "one", &chunk).expect("first 600 KiB fit");
    match run(&small, "write", "two", &chunk) {
        // The guest's write fails (the audit entry below says why).
        Err(Error::Plugin {
            error: PluginError::Internal(m),
            ..
        }) => assert!(m.starts_with("Write") && m.contains("os error"), "{m}"),
        other => panic!("the second 600 KiB were not refused: {other:?}"),
    }
    let dir = data.path().join("plugins/small/data");
    let stored: u64 = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    assert!(stored <= 1 << 20, "{stored} bytes stored");
    let refused = common::audited(&host, Some("small"), AuditKind::DataQuota);
    assert!(!refused.is_empty());
    assert_eq!(refused[0].resource, "1048576 bytes in /data");

    // Space freed is space again (the directory is measured anew).
    run(&small, "delete", "one", b"").expect("delete");
    run(&small, "write", "two", &chunk).expect("fits after deleting");
    assert_eq!(run(&small, "list", "-", b"").expect("list"), b"two");
}

#[test]
fn a_mapped_directory_cannot_hide_the_data_directory() {
    let data = tempfile::tempdir().expect("tmp");
    let shared = tempfile::tempdir().expect("shared");
    let host = Warden::builder()
        .data_dir(data.path())
        .grants(
            warden::Grants::new()
                .grant(&format!("fs:rw:{}", shared.path().display()))
                .expect("grant"),
        )
        .build()
        .expect("host");
    let text = std::fs::read_to_string(common::plugin_dir("notes").join("plugin.toml"))
        .expect("manifest")
        .replace(
            "[limits]",
            &format!(
                "[permissions]\nfs = [\"rw:{}:/data\"]\n[limits]",
                shared.path().display()
            ),
        );
    match host.load_bytes_blocking(common::manifest_from(&text), common::wasm("notes")) {
        Err(Error::Manifest { message, .. }) => {
            assert!(
                message.contains("map that directory elsewhere"),
                "{message}"
            )
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}
