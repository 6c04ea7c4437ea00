//! `[permissions.links]`: which loaded plugin serves each interface the
//! plugin imports from another plugin (link-time composition). The key is
//! the imported interface, the value the provider: `"image-decoder"`,
//! `"image-decoder@^1"`, or `{ plugin = "...", reason = "..." }`.

use serde::{Deserialize, Serialize};

use super::Entry;
use crate::names::validate_name;
use crate::target::parse_target;

/// One link: the plugin that serves an imported interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "toml::Value")]
pub struct LinkPermission {
    /// The provider: a plugin name, optionally with a version or semver
    /// range (`image-decoder@^1.2`), as calls name plugins.
    pub plugin: String,
    /// Why the plugin needs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LinkPermission {
    /// The provider's name, without its version.
    pub fn provider_name(&self) -> &str {
        self.plugin
            .split_once('@')
            .map_or(&self.plugin, |(name, _)| name)
    }
}

impl TryFrom<toml::Value> for LinkPermission {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        let entry = Entry::new(value, &["plugin", "reason"])?;
        let plugin = entry.main("plugin")?;
        let (name, _) = parse_target(&plugin).map_err(|e| format!("link to `{plugin}`: {e}"))?;
        validate_name(name).map_err(|e| format!("link to `{plugin}`: {e}"))?;
        Ok(LinkPermission {
            plugin,
            reason: entry.reason()?,
        })
    }
}

/// Checks a linked interface's name: `namespace:package/interface`,
/// optionally `@version`, as the component imports it.
pub(crate) fn validate_interface_name(name: &str) -> Result<(), String> {
    let bare = name.split_once('@').map_or(name, |(bare, _)| bare);
    let well_formed = bare
        .split_once(':')
        .and_then(|(namespace, rest)| rest.split_once('/').map(|(p, i)| [namespace, p, i]))
        .is_some_and(|parts| {
            parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
        });
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an interface name; write `namespace:package/interface@version`, \
             as the component imports it"
        ))
    }
}

/// Deserializes `[permissions.links]`, checking every interface name.
pub(crate) fn links_table<'de, D>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, LinkPermission>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let links = std::collections::BTreeMap::<String, LinkPermission>::deserialize(deserializer)?;
    for interface in links.keys() {
        validate_interface_name(interface).map_err(serde::de::Error::custom)?;
    }
    Ok(links)
}
