//! Tests of `warden.toml`: reading, mistakes, and what gets served.

use super::*;
use proptest::prelude::*;
use warden::MANIFEST_FILE;

fn parse(text: &str) -> Result<AppConfig> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(APP_CONFIG_FILE);
    std::fs::write(&file, text).expect("write");
    AppConfig::load(&file)
}

#[test]
fn sources_in_any_language_are_built_and_built_plugins_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = |name: &str, file: &str| {
        let path = dir.path().join("plugins").join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::write(path.join(MANIFEST_FILE), "").expect("manifest");
        std::fs::write(path.join(file), "").expect("file");
        path
    };
    let rust = plugin("a-rust", "Cargo.toml");
    let built = plugin("b-built", "b-built.wasm");
    let python = plugin("c-python", "app.py");
    let file = dir.path().join(APP_CONFIG_FILE);
    std::fs::write(&file, "[plugins]\nsources = [\"plugins\"]\n").expect("write");
    let planned = AppConfig::load(&file)
        .expect("config")
        .planned()
        .expect("planned");
    let source = |source: PathBuf| Planned::Source {
        source,
        command: None,
    };
    assert_eq!(
        planned,
        [source(rust), Planned::Built(built), source(python)]
    );
}

#[test]
fn a_full_file_is_read() {
    let c = parse(
        r#"
        [server]
        listen = "127.0.0.1:9000"
        data-dir = "state"
        admin-token = "0123456789abcdef0123"
        log-format = "json"
        max-batch = 10

        [plugins]
        dirs = ["dist"]
        sources = ["plugins"]
        out = "built"
        [[plugins.build]]
        source = "py/hello"
        command = ["componentize-py", "componentize", "app"]

        [grants]
        allow = ["http:https://example.com"]
        deny = ["net:10.0.0.0/8:*", "fs:/etc"]
        policy = "trim"

        [limits]
        memory-mb = 256

        [config."text-transform"]
        greeting = "hi"
        "#,
    )
    .expect("valid");
    assert_eq!(c.server.listen.port(), 9000);
    assert_eq!(c.server.log_format, LogFormat::Json);
    assert!(c.data_dir().ends_with("state"));
    assert_eq!(c.plugins.build[0].command[0], "componentize-py");
    let s = c.serve_settings().expect("settings");
    assert_eq!(s.max_batch, 10);
    assert_eq!(s.admin_token.as_deref(), Some("0123456789abcdef0123"));
    assert!(c.builder().is_ok());
}

#[test]
fn mistakes_name_the_key() {
    let err = parse("[server]\nlisten = \"nowhere\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");
    let err = parse("[server]\nmax-queue = 1\nbogus = 2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bogus"), "{err}");
    let err = parse("[server]\nadmin-token = \"short\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.admin-token"), "{err}");
    let err = parse("[limits]\nmemory-mb = 99999999")
        .unwrap_err()
        .to_string();
    assert!(err.contains("memory-mb"), "{err}");
    for endpoint in ["https://collector.example:4318", "127.0.0.1:4318"] {
        let err = parse(&format!("[telemetry]\notlp = \"{endpoint}\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("telemetry.otlp"), "{err}");
    }
    let fine = parse("[telemetry]\notlp = \"http://127.0.0.1:4318\"").expect("config");
    assert_eq!(fine.telemetry.service_name, "warden");
}

#[test]
fn a_missing_token_file_gets_a_private_random_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secrets/admin-token");
    let token = read_or_make_token(&file).expect("made");
    assert_eq!(token.len(), 64);
    assert_eq!(read_or_make_token(&file).expect("read back"), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn app_configs_never_panic(key in "[a-z-]{1,24}", value in "\\PC{0,30}", section in "(server|plugins|grants|limits|config|telemetry)") {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("warden.toml");
        for text in [
            format!("[{section}]\n{key} = {value}\n"),
            format!("[{section}]\n{key} = \"{value}\"\n"),
            value.clone(),
        ] {
            std::fs::write(&file, &text).expect("write");
            if let Ok(config) = AppConfig::load(&file) {
                let _ = config.serve_settings();
                let _ = config.builder();
            }
        }
    }
}
