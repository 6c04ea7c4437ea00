//! Bad input gets its own error variant and a message that names the
//! plugin, file or field: corrupt bytes, core modules, wrong worlds,
//! unsatisfied imports, bad manifests, unknown plugins.

use warden_testkit as common;

use std::path::Path;

use warden::{Error, World};

fn processor_manifest(name: &str) -> warden::Manifest {
    common::manifest_from(&format!(
        "name = \"{name}\"\nversion = \"1.0.0\"\nworld = \"processor\"\n"
    ))
}

#[test]
fn corrupt_bytes_are_an_invalid_component() {
    let host = common::host();
    let err = host
        .load_bytes_blocking(processor_manifest("junk"), b"this is not wasm".to_vec())
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidComponent { reason, .. } if reason.contains("not a WebAssembly binary")),
        "{err:?}"
    );

    // A real component, truncated half-way.
    let mut bytes = common::wasm("text-transform");
    bytes.truncate(bytes.len() / 2);
    let err = host
        .load_bytes_blocking(processor_manifest("truncated"), bytes)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
}

#[test]
fn a_core_module_is_named_as_such() {
    let host = common::host();
    // The smallest valid core module: magic and version 1, no sections.
    let err = host
        .load_bytes_blocking(processor_manifest("core"), b"\0asm\x01\0\0\0".to_vec())
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
    assert!(
        text.contains("core WebAssembly module, not a component"),
        "{text}"
    );
    assert!(text.contains("wasm32-wasip2"), "says what to do: {text}");
}

#[test]
fn a_component_for_another_world_names_the_missing_export() {
    let host = common::host();
    let err = host
        .load_bytes_blocking(
            processor_manifest("audit-logger"),
            common::wasm("audit-logger"),
        )
        .unwrap_err();
    match &err {
        Error::WrongWorld {
            plugin,
            world,
            missing,
        } => {
            assert_eq!(plugin, "audit-logger");
            assert_eq!(world, "processor");
            assert_eq!(missing, &vec!["warden:plugin/processing@0.1.0".to_string()]);
        }
        other => panic!("expected WrongWorld, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("missing export warden:plugin/processing@0.1.0"),
        "{err}"
    );
}

#[test]
fn an_unsatisfied_import_is_named() {
    let host = common::host();
    let err = host
        .load_blocking(common::plugin_dir("unknown-import"))
        .unwrap_err();
    match &err {
        Error::UnsatisfiedImport { plugin, import } => {
            assert_eq!(plugin, "unknown-import");
            assert_eq!(import, "acme:missing/api@1.0.0");
        }
        other => panic!("expected UnsatisfiedImport, got {other:?}"),
    }
}

#[test]
fn manifest_problems_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = common::wasm("text-transform");
    std::fs::write(dir.path().join("text-transform.wasm"), &wasm).expect("write wasm");
    let manifest = dir.path().join("plugin.toml");
    let host = common::host();

    std::fs::write(
        &manifest,
        "name = \"text-transform\"\nworld = \"processor\"\n",
    )
    .expect("write");
    let err = host.load_blocking(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Manifest { file, .. } if file == &manifest),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing field `version`"), "{err}");

    std::fs::write(&manifest, "name = \"text-transform\"\nversion = \"1.0.0\"\nworld = \"processor\"\n[limits]\nmemory-mb = \"lots\"\n")
        .expect("write");
    let err = host.load_blocking(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
    assert!(err.to_string().contains("line 5"), "{err}");

    std::fs::remove_file(&manifest).expect("remove");
    let err = host.load_blocking(dir.path()).unwrap_err();
    assert!(err.to_string().contains("plugin.toml: not found"), "{err}");
}

#[test]
fn a_wasm_file_without_a_manifest_gets_its_world_inferred() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("json_transform.wasm");
    std::fs::write(&file, common::wasm("json-transform")).expect("write");
    let host = common::host();
    let plugin = host.load_blocking(&file).expect("load bare wasm");
    assert_eq!(plugin.name(), "json-transform");
    assert_eq!(plugin.info().world, World::Processor);
}

#[test]
fn unknown_plugins_and_missing_files_are_reported() {
    let host = common::host();
    host.load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    match host.get("text-transfrom") {
        Err(Error::NotFound { name, loaded }) => {
            assert_eq!(name, "text-transfrom");
            assert_eq!(loaded, vec!["text-transform".to_string()]);
        }
        other => panic!(
            "expected NotFound, got {:?}",
            other.map(|p| p.name().to_string())
        ),
    }
    let err = host
        .load_blocking(Path::new("/nonexistent/plugin.wasm"))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[test]
fn an_event_handler_cannot_process() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("audit-logger"))
        .expect("load");
    let err = plugin
        .process_blocking(warden::ProcessRequest::new("x"))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}
