//! The config host service end to end: manifest defaults, operator values
//! with environment and secret references, required keys, and isolation
//! between plugins.

use warden_testkit as common;

use warden::{Error, ProcessRequest, Warden};

fn config_of(plugin: &warden::Plugin, key: &str) -> String {
    let out = plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", "config")
                .option("key", key),
        )
        .expect("config call");
    String::from_utf8(out.output).expect("utf-8")
}

/// misbehave loaded under `name`, with extra manifest text.
fn load_as(host: &Warden, name: &str, extra: &str) -> warden::Result<warden::Plugin> {
    let text = std::fs::read_to_string(common::plugin_dir("misbehave").join("plugin.toml"))
        .expect("manifest")
        .replace(
            "name = \"misbehave\"",
            &format!("name = \"{name}\"\n{extra}"),
        );
    host.load_bytes_blocking(common::manifest_from(&text), common::wasm("misbehave"))
}

#[test]
fn operator_values_override_defaults_per_plugin_and_resolve_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, "token = \"t0k3n\"\n").expect("secrets");
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    // SAFETY: only this test reads the variable.
    unsafe { std::env::set_var("WARDEN_CONFIG_IT_REGION", "eu-west") };
    let host = Warden::builder()
        .secrets_file(&secrets)
        .config(Some("alpha"), "greeting", "bonjour")
        .config(Some("alpha"), "token", "Bearer ${secret:token}")
        .config(None, "region", "${env:WARDEN_CONFIG_IT_REGION}")
        .build()
        .expect("host");
    let alpha = load_as(&host, "alpha", "").expect("alpha");
    let beta = load_as(&host, "beta", "").expect("beta");
    assert_eq!(config_of(&alpha, "greeting"), "bonjour");
    assert_eq!(config_of(&alpha, "token"), "Bearer t0k3n");
    assert_eq!(config_of(&alpha, "region"), "eu-west");
    assert_eq!(
        config_of(&beta, "greeting"),
        "hello",
        "the manifest's default"
    );
    assert_eq!(
        config_of(&beta, "token"),
        "<none>",
        "alpha's values are alpha's"
    );
    assert_eq!(config_of(&beta, "region"), "eu-west");
}

#[test]
fn missing_required_keys_fail_the_load_with_their_names() {
    let host = common::host();
    match load_as(&host, "needy", "required-config = [\"api-key\"]") {
        Err(Error::Config { plugin, message }) => {
            assert_eq!(plugin, "needy");
            assert!(message.contains("api-key"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let host = Warden::builder()
        .config(Some("needy"), "api-key", "k")
        .build()
        .expect("host");
    let needy = load_as(&host, "needy", "required-config = [\"api-key\"]").expect("supplied");
    assert_eq!(config_of(&needy, "api-key"), "k");
}
