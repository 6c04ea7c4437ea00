//! Core-module plugins (plain WebAssembly modules, not components): numeric
//! exports called by name, the linear-memory JSON ABI with a guest that
//! lies about its pointers and lengths, and a WASI preview1 module under
//! the same permissions, limits and audit as components. (Preview1 has no
//! way to open a socket, so there is nothing to deny there.)

use warden_testkit as common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use warden::module::{CoreValue, ModuleAbi};
use warden::{AuditKind, Error, TrapKind, Warden};

/// The three guests of `plugins/core-modules`, built by `warden build`'s
/// library step (wasm32-unknown-unknown, and wasm32-wasip1 for WASI).
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("core-modules");
        for name in ["math", "json-rules", "wasi-reader"] {
            let source = common::repo().join("plugins/core-modules").join(name);
            if let Err(e) = warden_build::build_plugin(&source, &out) {
                panic!("building {name}: {e}");
            }
        }
        out
    })
}

fn text_args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn numeric_exports_are_called_by_name_with_typed_arguments() {
    let host = common::host();
    let math = host
        .load_module_blocking(built().join("core-math"))
        .expect("core-math");
    assert_eq!(math.abi(), ModuleAbi::Exports);
    assert_eq!(
        math.call_text_blocking("add", &text_args(&["3", "4"]))
            .expect("add"),
        vec![CoreValue::I32(7)]
    );
    assert_eq!(
        math.call_blocking("risk_check", &[CoreValue::I64(5_000_000)])
            .expect("risk_check"),
        vec![CoreValue::I32(2)]
    );
    let signatures = math.exports();
    let add = signatures.iter().find(|e| e.name == "add").expect("add");
    assert_eq!(add.params, ["i32", "i32"]);
    assert_eq!(add.results, ["i32"]);

    for (export, args, expected) in [
        ("add", vec!["3"], "takes 2 argument(s) (i32, i32), not 1"),
        ("add", vec!["3", "x"], "`x` is not a valid i32"),
        ("nope", vec![], "no function export `nope` (exports: "),
    ] {
        let err = math
            .call_text_blocking(export, &text_args(&args))
            .expect_err("a bad call");
        assert!(matches!(err, Error::BadCall { .. }), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let wrong_type = math.call_blocking("add", &[CoreValue::I64(1), CoreValue::I32(2)]);
    assert!(
        matches!(wrong_type, Err(Error::BadCall { .. })),
        "{wrong_type:?}"
    );
}

#[test]
fn core_modules_get_the_same_limits_and_audit() {
    let host = common::host();
    let math = host
        .load_module_blocking(built().join("core-math"))
        .expect("core-math");
    let spin = math.call_blocking("spin", &[]);
    assert!(
        matches!(
            spin,
            Err(Error::Trap {
                kind: TrapKind::Timeout,
                ..
            })
        ),
        "{spin:?}"
    );
    let hog = math.call_blocking("hog", &[CoreValue::I32(64)]);
    assert!(
        matches!(
            hog,
            Err(Error::Trap {
                kind: TrapKind::OutOfMemory,
                ..
            })
        ),
        "{hog:?}"
    );
    assert_eq!(
        math.call_blocking("hog", &[CoreValue::I32(4)])
            .expect("4 MiB fits"),
        vec![CoreValue::I32(4)]
    );
    assert_eq!(
        common::audited(&host, Some("core-math"), AuditKind::Timeout).len(),
        1
    );
    assert_eq!(
        common::audited(&host, Some("core-math"), AuditKind::MemoryLimit).len(),
        1
    );
}

#[test]
fn the_json_abi_round_trips_and_describes_itself() {
    let host = common::host();
    let rules = host
        .load_module_blocking(built().join("core-json-rules"))
        .expect("core-json-rules");
    assert_eq!(rules.abi(), ModuleAbi::Json);
    let verdict = rules
        .execute_json_blocking(br#"{"amount": 20000, "country": "US"}"#)
        .expect("execute");
    assert_eq!(verdict["approved"], false);
    assert_eq!(
        verdict["reasons"],
        serde_json::json!(["amount over 10000", "country outside the region"])
    );
    let verdict = rules
        .execute_json_blocking(br#"{"amount": 12, "country": "NO"}"#)
        .expect("execute");
    assert_eq!(verdict["approved"], true);
    let meta = rules.meta_blocking().expect("meta");
    assert_eq!(meta["name"], "core-json-rules");

    let not_json = rules.execute_json_blocking(b"{amount");
    assert!(
        matches!(not_json, Err(Error::BadCall { .. })),
        "{not_json:?}"
    );
    let too_big = vec![b' '; 100_000];
    let too_big = rules.execute_json_blocking(&too_big);
    assert!(
        matches!(too_big, Err(Error::LimitExceeded { what: "input", .. })),
        "{too_big:?}"
    );
}

#[test]
fn a_lying_guest_gets_an_error_never_a_read_out_of_range() {
    let host = common::host();
    let rules = host
        .load_module_blocking(built().join("core-json-rules"))
        .expect("core-json-rules");
    let lie = |how: &str| rules.execute_json_blocking(format!(r#"{{"lie": "{how}"}}"#).as_bytes());
    for (how, expected) in [
        ("pointer", "points outside its memory"),
        ("edge", "points outside its memory"),
        ("garbage", "is not valid JSON"),
    ] {
        match lie(how) {
            Err(e @ Error::ModuleAbi { .. }) => {
                assert!(e.to_string().contains(expected), "{how}: {e}")
            }
            other => panic!("{how}: expected an ABI error, got {other:?}"),
        }
    }
    for how in ["length", "huge"] {
        assert!(
            matches!(lie(how), Err(Error::LimitExceeded { what: "output", .. })),
            "{how}"
        );
    }
    assert_eq!(
        common::audited(&host, Some("core-json-rules"), AuditKind::AbiViolation).len(),
        3,
        "each broken promise is audited"
    );
    assert_eq!(
        common::audited(&host, Some("core-json-rules"), AuditKind::OutputLimit).len(),
        2
    );
    // The host is unharmed: the next honest call works.
    let verdict = rules
        .execute_json_blocking(br#"{"amount": 1, "country": "SE"}"#)
        .expect("honest call");
    assert_eq!(verdict["approved"], true);
}

#[test]
fn an_allocate_that_lies_is_caught_before_the_host_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (func (export "allocate") (param i32) (result i32) i32.const 65530)
            (func (export "execute") (param i32 i32) (result i64) i64.const 0)
            (func (export "meta") (result i64) i64.const 0))"#,
    )
    .expect("WAT");
    let file = dir.path().join("liar.wasm");
    std::fs::write(&file, wasm).expect("module");
    let host = common::host();
    let liar = host
        .load_module_blocking(&file)
        .expect("a bare module loads");
    assert_eq!(liar.abi(), ModuleAbi::Json, "detected from its exports");
    let err = liar
        .execute_json_blocking(br#"{"padding": "more than six bytes"}"#)
        .expect_err("allocate lied");
    assert!(err.to_string().contains("outside its memory"), "{err}");
}

/// `core-wasi-reader` staged with an `input/` directory beside its manifest.
fn staged_reader(dir: &Path) -> PathBuf {
    let stage = dir.join("core-wasi-reader");
    std::fs::create_dir_all(stage.join("input")).expect("stage");
    for file in ["plugin.toml", "core_wasi_reader.wasm"] {
        std::fs::copy(
            built().join("core-wasi-reader").join(file),
            stage.join(file),
        )
        .expect("copy");
    }
    std::fs::write(stage.join("input/greeting.txt"), "hello from the host").expect("input");
    stage
}

fn granting(stage: &Path) -> Warden {
    // SAFETY: tests in this binary do not read the environment concurrently
    // with this write of a variable no other test uses.
    unsafe { std::env::set_var("READER_GREETING", "hej") };
    let grants = warden::Grants::new()
        .grant(&format!("fs:ro:{}", stage.join("input").display()))
        .and_then(|g| g.grant("env:READER_GREETING"))
        .expect("grants");
    Warden::builder().grants(grants).build().expect("host")
}

#[test]
fn a_wasi_module_sees_only_what_it_was_granted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = staged_reader(dir.path());

    // Nothing granted: the load is refused, naming the permissions.
    let refused = common::host().load_module_blocking(&stage);
    assert!(
        matches!(refused, Err(Error::PermissionDenied { .. })),
        "{refused:?}"
    );

    let host = granting(&stage);
    let reader = host.load_module_blocking(&stage).expect("granted");
    let ask = |request: &str| {
        reader
            .execute_json_blocking(request.as_bytes())
            .expect("call")
    };
    assert_eq!(
        ask(r#"{"read": "/input/greeting.txt"}"#)["content"],
        "hello from the host"
    );
    assert_eq!(ask(r#"{"env": "READER_GREETING"}"#)["value"], "hej");
    assert_eq!(ask(r#"{"env": "HOME"}"#)["value"], serde_json::Value::Null);
    assert!(ask(r#"{"read": "/etc/passwd"}"#)["error"].is_string());
}

#[test]
fn a_wasi_import_needs_wasi_in_the_manifest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stage = staged_reader(dir.path());
    let manifest = std::fs::read_to_string(stage.join("plugin.toml")).expect("manifest");
    std::fs::write(
        stage.join("plugin.toml"),
        manifest.replace("wasi = true\n", ""),
    )
    .expect("manifest");
    let err = granting(&stage)
        .load_module_blocking(&stage)
        .expect_err("WASI without wasi = true");
    assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
    assert!(err.to_string().contains("wasi = true"), "{err}");
}

#[test]
fn a_host_that_requires_signatures_asks_core_modules_too() {
    let key = warden::SigningKey::generate().expect("key");
    let host = Warden::builder()
        .require_signatures(vec![key.public_key()])
        .build()
        .expect("host");
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("core-math");
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["plugin.toml", "core_math.wasm"] {
        std::fs::copy(built().join("core-math").join(file), dir.join(file)).expect("copy");
    }
    match host.load_module_blocking(&dir) {
        Err(Error::Signature { problem, .. }) => {
            assert_eq!(problem, warden::SignatureProblem::Missing)
        }
        other => panic!("an unsigned module loaded: {other:?}"),
    }
    let manifest = std::fs::read(dir.join("plugin.toml")).expect("manifest");
    let module = std::fs::read(dir.join("core_math.wasm")).expect("module");
    std::fs::write(
        dir.join(warden::SIGNATURE_FILE),
        key.sign(&module, &manifest),
    )
    .expect("sign");
    host.load_module_blocking(&dir)
        .expect("a signed module loads");
    // A bare module file has nothing to carry a signature.
    let bare = root.path().join("plain-math.wasm");
    std::fs::copy(dir.join("core_math.wasm"), &bare).expect("copy");
    match host.load_module_blocking(&bare) {
        Err(Error::Signature { problem, .. }) => {
            assert_eq!(problem, warden::SignatureProblem::Missing)
        }
        other => panic!("a bare module loaded: {other:?}"),
    }
}
