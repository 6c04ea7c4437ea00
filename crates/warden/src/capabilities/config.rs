//! Host service `warden:plugin/config`: read-only access to the plugin's own
//! configuration.
//!
//! A plugin's configuration is its manifest's `[config]` (defaults), with
//! the operator's values on top ([`ConfigSettings`]). Operator values may
//! reference `${env:NAME}` (the host's environment) and `${secret:NAME}` (a
//! secrets file the operator owns); manifest values are taken literally, so
//! a plugin can never pull in what the operator did not hand over. Keys the
//! manifest lists in `required-config` must end up set, or the load fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::capabilities::{Capability, InstanceContext};
use crate::contract::bindings::config;
use crate::contract::standard::config as wasi_config;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::state::PluginState;

/// The operator's configuration values: for every plugin, or for one.
#[derive(Debug, Clone, Default)]
pub struct ConfigSettings {
    /// `(plugin or None for all, key, value)`, later entries winning.
    values: Vec<(Option<String>, String, String)>,
    secrets_file: Option<PathBuf>,
}

impl ConfigSettings {
    /// Sets `key` for `plugin` (`None`: every plugin). The value may
    /// reference `${env:NAME}` and `${secret:NAME}`.
    pub fn set(&mut self, plugin: Option<&str>, key: &str, value: &str) {
        self.values.push((
            plugin.map(str::to_string),
            key.to_string(),
            value.to_string(),
        ));
    }

    /// The TOML file `${secret:NAME}` reads (`NAME = "value"` lines). It must
    /// be readable by the host's user only.
    pub fn secrets_file(&mut self, path: impl Into<PathBuf>) {
        self.secrets_file = Some(path.into());
    }

    /// The effective configuration of the plugin `manifest` describes,
    /// within [`MAX_CONFIG_KEY`], [`MAX_CONFIG_VALUE`] and
    /// [`MAX_CONFIG_BYTES`].
    pub(crate) fn resolve(&self, manifest: &Manifest) -> Result<BTreeMap<String, String>> {
        let values = self.values_of(manifest)?;
        check_sizes(&values).map_err(|message| Error::Config {
            plugin: manifest.name.clone(),
            message,
        })?;
        Ok(values)
    }

    fn values_of(&self, manifest: &Manifest) -> Result<BTreeMap<String, String>> {
        let mut values = manifest.config.clone();
        let mut secrets = None;
        for (plugin, key, value) in &self.values {
            if plugin.as_ref().is_some_and(|p| *p != manifest.name) {
                continue;
            }
            let value = expand(value, &mut |kind, name| match kind {
                "env" => std::env::var(name)
                    .map_err(|_| format!("the host environment variable `{name}` is not set")),
                "secret" => {
                    let table = match &mut secrets {
                        Some(t) => t,
                        None => secrets.insert(self.read_secrets()?),
                    };
                    table
                        .get(name)
                        .cloned()
                        .ok_or_else(|| format!("the secrets file has no `{name}`"))
                }
                other => Err(format!(
                    "unknown reference kind `{other}` (use env or secret)"
                )),
            })
            .map_err(|m| Error::Config {
                plugin: manifest.name.clone(),
                message: format!("config `{key}`: {m}"),
            })?;
            values.insert(key.clone(), value);
        }
        let missing: Vec<&str> = manifest
            .required_config
            .iter()
            .filter(|k| !values.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config {
                plugin: manifest.name.clone(),
                message: format!(
                    "required config {} not set; set {} with `--config {}:KEY=VALUE` or the host's config",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    manifest.name
                ),
            });
        }
        Ok(values)
    }

    fn read_secrets(&self) -> std::result::Result<BTreeMap<String, String>, String> {
        let path = self
            .secrets_file
            .as_deref()
            .ok_or("`${secret:..}` needs a secrets file, and none is configured")?;
        check_private(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            format!(
                "secrets file {}: {}; write `name = \"value\"` lines",
                path.display(),
                e.message()
            )
        })
    }
}

/// The longest config key, in bytes.
pub(crate) const MAX_CONFIG_KEY: usize = 256;
/// The longest config value, in bytes (after `${...}` references are
/// resolved).
pub(crate) const MAX_CONFIG_VALUE: usize = 64 << 10;
/// The most bytes a plugin's whole configuration may hold, keys and values.
pub(crate) const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Refuses a configuration with a key, a value or a total over its cap.
fn check_sizes(values: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    let mut total = 0;
    for (key, value) in values {
        if key.len() > MAX_CONFIG_KEY {
            let shown: String = key.chars().take(32).collect();
            return Err(format!(
                "config key `{shown}…` is {} bytes, more than the {MAX_CONFIG_KEY} allowed",
                key.len()
            ));
        }
        if value.len() > MAX_CONFIG_VALUE {
            return Err(format!(
                "config `{key}` is {} bytes, more than the {MAX_CONFIG_VALUE} a value may be; \
                 keep large data in a file the plugin is granted",
                value.len()
            ));
        }
        total += key.len() + value.len();
    }
    if total > MAX_CONFIG_BYTES {
        return Err(format!(
            "the configuration holds {total} bytes, more than the {MAX_CONFIG_BYTES} allowed"
        ));
    }
    Ok(())
}

/// Refuses a secrets file other users can read or write.
fn check_private(path: &Path) -> std::result::Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta =
            std::fs::metadata(path).map_err(|e| format!("secrets file {}: {e}", path.display()))?;
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "secrets file {} is accessible to other users; `chmod 600` it",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Replaces every `${kind:name}` in `text` with `lookup(kind, name)`; `$$`
/// is a literal `$`.
fn expand(
    text: &str,
    lookup: &mut dyn FnMut(&str, &str) -> std::result::Result<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`{text}` has an unclosed `${{`"))?;
            let (kind, name) = body[..end].split_once(':').ok_or_else(|| {
                format!(
                    "`${{{}}}` must be `${{env:NAME}}` or `${{secret:NAME}}`",
                    &body[..end]
                )
            })?;
            out.push_str(&lookup(kind, name)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) struct Config {
    values: Arc<BTreeMap<String, String>>,
}

/// The capability: the plugin's effective config (`warden:plugin/config`, `wasi:config/store`).
pub(crate) struct ConfigCapability;

impl Capability for ConfigCapability {
    type State = Config;

    fn name(&self) -> &'static str {
        "config"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Config {
        let ctx = cx.inner;
        Config {
            values: ctx.config.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Config,
    ) -> wasmtime::Result<()> {
        config::add_to_linker::<_, HasSelf<Config>>(linker, get)?;
        wasi_config::add_to_linker::<_, HasSelf<Config>>(linker, get)
    }
}

impl config::Host for Config {
    async fn get_config(&mut self, key: String) -> Option<String> {
        self.values.get(&key).cloned()
    }
}

/// `wasi:config/store`: the same values as `warden:plugin/config`.
impl wasi_config::Host for Config {
    async fn get(
        &mut self,
        key: String,
    ) -> std::result::Result<Option<String>, wasi_config::Error> {
        Ok(self.values.get(&key).cloned())
    }

    async fn get_all(&mut self) -> std::result::Result<Vec<(String, String)>, wasi_config::Error> {
        Ok(self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> Manifest {
        Manifest::parse(
            &format!(
                "name = \"p\"\nversion = \"1.0.0\"\nworld = \"processor\"\n{extra}\n[config]\ngreeting = \"hi\"\n"
            ),
            Path::new("p.toml"),
        )
        .expect("manifest")
    }

    #[test]
    fn host_values_override_and_expand_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, "api-key = \"s3cr3t\"\n").expect("secrets");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let mut settings = ConfigSettings::default();
        settings.secrets_file(&secrets);
        settings.set(None, "greeting", "hello");
        settings.set(
            Some("p"),
            "key",
            "k=${secret:api-key}, home=${env:WARDEN_CONFIG_TEST}, $$5",
        );
        settings.set(Some("other"), "greeting", "not for p");
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("WARDEN_CONFIG_TEST", "/h") };
        let values = settings
            .resolve(&manifest("required-config = [\"key\"]"))
            .expect("resolves");
        assert_eq!(values["greeting"], "hello");
        assert_eq!(values["key"], "k=s3cr3t, home=/h, $5");
    }

    #[test]
    fn missing_required_keys_and_bad_references_fail_with_the_key() {
        let err = ConfigSettings::default()
            .resolve(&manifest("required-config = [\"api-key\", \"region\"]"))
            .expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("api-key, region") && text.contains("--config p:KEY=VALUE"),
            "{text}"
        );

        for (value, needle) in [
            ("${secret:x}", "needs a secrets file"),
            ("${env:WARDEN_SURELY_UNSET}", "WARDEN_SURELY_UNSET"),
            ("${disk:x}", "unknown reference kind"),
            ("${env:X", "unclosed"),
        ] {
            let mut settings = ConfigSettings::default();
            settings.set(None, "k", value);
            let err = settings
                .resolve(&manifest(""))
                .expect_err(value)
                .to_string();
            assert!(err.contains("config `k`") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn a_secrets_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, "a = \"b\"\n").expect("secrets");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            let mut settings = ConfigSettings::default();
            settings.secrets_file(&secrets);
            settings.set(None, "k", "${secret:a}");
            let err = settings.resolve(&manifest("")).expect_err("world-readable");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }
}
