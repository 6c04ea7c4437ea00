//! Turning a file, a directory or bytes into a checked, compiled and
//! pre-linked plugin: component header, declared world, imports.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use wasmtime::component::Component;

use crate::audit::{AuditEntry, AuditKind};
use crate::capabilities::DATA_GUEST_PATH;
use crate::capabilities::Linking;
use crate::capabilities::data::DataDir;
use crate::capabilities::links::Providers;
use crate::contract::{ContractVersion, World};
use crate::core::Core;
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::names::validate_name;
use crate::permissions::{EffectivePermissions, FsMode, GrantPolicy, Permissions};
use crate::prepared::{ExportIndices, Prepared};
use crate::registry::Registry;
use crate::signature::{SIGNATURE_FILE, verify};

/// Where a plugin's bytes and manifest came from.
pub(crate) struct Source {
    pub(crate) manifest: Manifest,
    /// The manifest file, or the component path when there is no manifest.
    pub(crate) manifest_file: PathBuf,
    pub(crate) component_file: Option<PathBuf>,
    pub(crate) bytes: Vec<u8>,
    /// No manifest came with the component: the world is to be inferred.
    pub(crate) implicit: bool,
    /// The path it was loaded from (what [`crate::Warden::reload`] reads again).
    pub(crate) origin: Option<PathBuf>,
    /// What a required signature is checked against.
    pub(crate) signed: Signed,
}

/// What vouches for a plugin's files, when the host requires signatures.
pub(crate) enum Signed {
    /// The manifest's text as read (and parsed); the signature file is
    /// beside it.
    Files(String),
    /// A component file without a manifest: nothing can carry a signature.
    Bare,
    /// Bytes the application loaded itself, which it vouches for (as it
    /// names them).
    Application,
}

impl Source {
    /// Reads a plugin from `path`: a directory holding `plugin.toml`, a
    /// `plugin.toml` itself, or a `.wasm` file (with a `plugin.toml` beside
    /// it naming that file, or none, in which case the world is inferred).
    pub(crate) fn from_path(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let file = Manifest::file_for(path);
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let manifest = if meta.is_dir() || is_toml {
            Some((Manifest::read(&file)?, file))
        } else {
            // A `.wasm` file: its plugin.toml is the one beside it, if that
            // manifest names this file.
            match file.is_file() {
                true => Some((Manifest::read(&file)?, file))
                    .filter(|((m, _), beside)| same_file(&m.component_path(parent(beside)), path)),
                false => None,
            }
        };
        match manifest {
            Some(((manifest, text), manifest_file)) => {
                let component_file = manifest.component_path(parent(&manifest_file));
                let bytes = read(&component_file, &manifest.name)?;
                Ok(Source {
                    manifest,
                    manifest_file,
                    component_file: Some(component_file),
                    bytes,
                    implicit: false,
                    origin: Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
                    signed: Signed::Files(text),
                })
            }
            None => {
                let bytes = read(path, "")?;
                let manifest = Manifest::implicit(&name_from_file(path)?);
                Ok(Source {
                    manifest,
                    manifest_file: path.to_path_buf(),
                    component_file: Some(path.to_path_buf()),
                    bytes,
                    implicit: true,
                    origin: Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
                    signed: Signed::Bare,
                })
            }
        }
    }

    pub(crate) fn display_name(&self) -> String {
        self.component_file.as_ref().map_or_else(
            || format!("<bytes of {}>", self.manifest.name),
            |p| p.display().to_string(),
        )
    }
}

/// Compiles, checks and links `source`. `plugins` are the host's loaded
/// plugins, where the plugin's links find their providers.
pub(crate) fn prepare(
    core: &Arc<Core>,
    mut source: Source,
    plugins: Weak<Registry>,
) -> Result<Prepared> {
    let display = source.display_name();
    check_signature(
        core,
        &source.manifest.name,
        &source.manifest.version.to_string(),
        &source.manifest_file,
        &source.bytes,
        &source.signed,
    )?;
    check_header(&source.bytes, &display)?;
    let sha256 = sha256_hex(&source.bytes);
    let (component, cache) =
        core.cache
            .get_or_compile(&core.engine, &source.bytes, &sha256, &display)?;
    let fingerprint = fingerprint(&sha256, &source.manifest);
    let (imports, exports) = interface_names(&component, &core.engine);
    let contract = ContractVersion::detect(
        &source.manifest.name,
        imports.iter().chain(&exports).map(String::as_str),
    )?;
    if source.implicit {
        source.manifest.world =
            World::infer(contract, &exports).ok_or_else(|| Error::WrongWorld {
                plugin: source.manifest.name.clone(),
                world: "minimal".into(),
                missing: World::Minimal.required_exports(contract),
            })?;
    }
    let manifest = source.manifest;
    manifest
        .world
        .check_exports(&manifest.name, contract, &exports)?;
    let permissions = grant(core, &manifest, &source.manifest_file)?;
    check_capabilities(core, &manifest, &imports)?;
    let providers: Weak<dyn Providers> = plugins;
    let mut linking = Linking::new(
        &core.engine,
        &core.linker,
        &component,
        &manifest,
        &permissions,
        &source.manifest_file,
        &imports,
        &providers,
    );
    crate::capabilities::link_plugin(&mut linking)?;
    let pre = linking
        .finish()
        .instantiate_pre(&component)
        .map_err(|e| unsatisfied_import(&manifest.name, &e))?;
    let exports = ExportIndices::new(&pre, manifest.world, contract, &manifest.name)?;
    let limits = core.defaults.resolve(
        &manifest.limits,
        &core.caps,
        &core.host_limits,
        &source.manifest_file,
    )?;
    let config = core.services.config.resolve(&manifest)?;
    let data_dir = match manifest.data_dir {
        true => Some(open_data_dir(
            core,
            &manifest,
            &permissions,
            &limits,
            &source.manifest_file,
        )?),
        false => None,
    };
    let mut quotas: Vec<Arc<DataDir>> = data_dir.iter().cloned().collect();
    for mount in permissions
        .fs
        .iter()
        .filter(|m| m.mode == FsMode::ReadWrite)
    {
        let quota = DataDir::for_mount(mount.dir.clone(), &mount.guest, limits.data_bytes)?;
        quotas.push(quota);
    }
    Ok(Prepared {
        config,
        data_dir,
        quotas,
        origin: source.origin,
        fingerprint,
        manifest,
        limits,
        permissions,
        sha256,
        size: source.bytes.len(),
        path: source.component_file,
        cache,
        pre,
        exports,
        contract,
    })
}

/// The component's sha256 and the manifest's, together: a reload that
/// finds the same fingerprint has nothing to do.
pub(crate) fn fingerprint(component_sha256: &str, manifest: &Manifest) -> String {
    let manifest = toml::to_string(manifest).unwrap_or_default();
    format!("{component_sha256}:{}", sha256_hex(manifest.as_bytes()))
}

/// The plugin's data directory, which no mapped directory may hide.
fn open_data_dir(
    core: &Core,
    manifest: &Manifest,
    permissions: &EffectivePermissions,
    limits: &Limits,
    manifest_file: &Path,
) -> Result<Arc<DataDir>> {
    if let Some(m) = permissions.fs.iter().find(|m| m.guest == DATA_GUEST_PATH) {
        return Err(Error::Manifest {
            file: manifest_file.to_path_buf(),
            message: format!(
                "`data-dir = true` mounts the plugin's data directory at {DATA_GUEST_PATH}, and \
                 `permissions.fs` maps {} there too; map that directory elsewhere",
                m.host.display()
            ),
        });
    }
    core.services
        .data_root
        .open(&manifest.name, limits.data_bytes)
}

/// The plugin's effective permissions under the host's grants. What is not
/// granted is refused (an error naming each permission) or, under the trim
/// policy, dropped; either way it is audited.
fn grant(core: &Core, manifest: &Manifest, manifest_file: &Path) -> Result<EffectivePermissions> {
    grant_permissions(
        core,
        &manifest.name,
        &manifest.version.to_string(),
        &manifest.permissions,
        manifest_file,
    )
}

/// [`grant`] for any plugin kind: `requested` are the permissions its
/// manifest (at `manifest_file`) asks for.
pub(crate) fn grant_permissions(
    core: &Core,
    name: &str,
    version: &str,
    requested: &Permissions,
    manifest_file: &Path,
) -> Result<EffectivePermissions> {
    let (effective, refused) = core.grants.apply(requested, parent(manifest_file));
    let (kind, action) = match core.grants.current_policy() {
        GrantPolicy::Refuse => (AuditKind::GrantRefused, "load refused"),
        GrantPolicy::Trim => (AuditKind::GrantTrimmed, "loaded without it"),
    };
    for refusal in &refused {
        core.audit.record(AuditEntry::now(
            name,
            version,
            None,
            kind,
            refusal.to_string(),
            action,
        ));
    }
    if refused.is_empty() || kind == AuditKind::GrantTrimmed {
        Ok(effective)
    } else {
        Err(Error::PermissionDenied {
            plugin: name.to_string(),
            refused,
        })
    }
}

/// Tells a component from a core module (or from anything else) by its
/// header, so the error can say what to do.
pub(crate) fn check_header(bytes: &[u8], source: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidComponent {
        source_name: source.to_string(),
        reason: reason.to_string(),
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(invalid(
            "not a WebAssembly binary (it does not start with the `\\0asm` header)",
        ));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(invalid(
            "this is a core WebAssembly module, not a component; build the plugin for the \
             `wasm32-wasip2` target (or wrap it with `wasm-tools component new`)",
        )),
        _ => Err(invalid(
            "unsupported WebAssembly version or layer; expected a component (layer 1)",
        )),
    }
}

/// The names of a compiled component's imports and of its exports.
pub(crate) fn interface_names(
    component: &Component,
    engine: &wasmtime::Engine,
) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let names = |items: &mut dyn Iterator<Item = &str>| items.map(str::to_string).collect();
    (
        names(&mut ty.imports(engine).map(|(name, _)| name)),
        names(&mut ty.exports(engine).map(|(name, _)| name)),
    )
}

fn unsatisfied_import(plugin: &str, err: &wasmtime::Error) -> Error {
    let message = format!("{err:#}");
    // wasmtime names the import between the first pair of backticks.
    let import = message
        .split('`')
        .nth(1)
        .map_or_else(|| message.clone(), str::to_string);
    Error::UnsatisfiedImport {
        plugin: plugin.to_string(),
        import,
    }
}

/// On a host that requires signatures, refuses plugin `plugin` (its
/// `bytes`, and what `signed` says vouches for them) unless a trusted key
/// signed its component and manifest, and audits the refusal. Called
/// before anything of the plugin is compiled.
pub(crate) fn check_signature(
    core: &Core,
    plugin: &str,
    version: &str,
    manifest_file: &Path,
    bytes: &[u8],
    signed: &Signed,
) -> Result<()> {
    let Some(trusted) = &core.trusted_keys else {
        return Ok(());
    };
    let (manifest, signature) = match signed {
        Signed::Files(text) => (text.as_bytes(), read_signature(manifest_file)?),
        Signed::Bare => (&[][..], None),
        Signed::Application => return Ok(()),
    };
    let Err(problem) = verify(signature.as_deref(), bytes, manifest, trusted) else {
        return Ok(());
    };
    core.audit.record(AuditEntry::now(
        plugin,
        version,
        None,
        AuditKind::SignatureRefused,
        manifest_file.display().to_string(),
        format!("load refused: {problem}"),
    ));
    Err(Error::Signature {
        plugin: plugin.to_string(),
        file: manifest_file.to_path_buf(),
        problem,
    })
}

/// The signature file beside the manifest at `manifest_file`, if there is
/// one (at most 64 KiB of it: a real one is under 1 KiB).
fn read_signature(manifest_file: &Path) -> Result<Option<String>> {
    use std::io::Read;
    let path = parent(manifest_file).join(SIGNATURE_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut text = String::new();
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::io(&path, e))?;
    Ok(Some(text))
}

fn read(path: &Path, plugin: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if !plugin.is_empty() => Error::io(
            path,
            std::io::Error::new(
                e.kind(),
                format!("component of plugin `{plugin}` not found; build it with `warden build`"),
            ),
        ),
        _ => Error::io(path, e),
    })
}

fn parent(file: &Path) -> &Path {
    file.parent().unwrap_or(Path::new("."))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `text_transform.wasm` → `text-transform`.
fn name_from_file(path: &Path) -> Result<String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let name = stem.to_ascii_lowercase().replace('_', "-");
    validate_name(&name).map_err(|reason| Error::InvalidComponent {
        source_name: path.display().to_string(),
        reason: format!("cannot name the plugin after its file: {reason}; add a {MANIFEST_FILE}"),
    })?;
    Ok(name)
}

/// The plugin directories `dirs`, reordered so that a plugin comes after
/// the plugins among them that its links name: providers are loaded first,
/// so that a consumer's links are checked at load and its `initialize`
/// may use them. Otherwise the order is kept; a directory whose manifest
/// cannot be read stays where it is (loading it reports the problem), and
/// plugins linked in a cycle keep their order.
pub fn providers_first(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let plugins: Vec<(Option<String>, Vec<String>)> = dirs
        .iter()
        .map(|dir| match Manifest::from_file(&dir.join(MANIFEST_FILE)) {
            Ok(m) => {
                let providers = m
                    .permissions
                    .links
                    .values()
                    .map(|link| link.provider_name().to_string())
                    .collect();
                (Some(m.name), providers)
            }
            Err(_) => (None, Vec::new()),
        })
        .collect();
    let mut pending: Vec<usize> = (0..dirs.len()).collect();
    let mut ordered = Vec::with_capacity(dirs.len());
    while !pending.is_empty() {
        let waits_for_another = |i: usize| {
            plugins[i].1.iter().any(|provider| {
                pending
                    .iter()
                    .any(|&j| j != i && plugins[j].0.as_deref() == Some(provider))
            })
        };
        let next = pending
            .iter()
            .position(|&i| !waits_for_another(i))
            .unwrap_or(0);
        ordered.push(dirs[pending.remove(next)].clone());
    }
    ordered
}

/// Every capability of the embedder's checks the plugin; a manifest section
/// for a capability the host does not have is refused.
fn check_capabilities(core: &Core, manifest: &Manifest, imports: &[String]) -> Result<()> {
    let capabilities = &core.services.capabilities;
    if let Some(unknown) = manifest.capabilities.keys().find(|c| !capabilities.has(c)) {
        return Err(Error::CapabilityRefused {
            plugin: manifest.name.clone(),
            capability: unknown.clone(),
            reason: "this host has no such capability; remove the manifest's \
                     `[capabilities.NAME]` section or run it on a host that offers it"
                .replace("NAME", unknown),
        });
    }
    capabilities.iter().try_for_each(|c| {
        c.check(&crate::capabilities::PluginContext {
            name: &manifest.name,
            version: &manifest.version,
            imports,
            section: manifest.capabilities.get(c.name()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_modules_from_components() {
        let core_module = b"\0asm\x01\0\0\0";
        let err = check_header(core_module, "m.wasm").unwrap_err().to_string();
        assert!(
            err.contains("core WebAssembly module, not a component"),
            "{err}"
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0", "c.wasm").is_ok());
        let err = check_header(b"PK\x03\x04zip", "z.wasm")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a WebAssembly binary"), "{err}");
    }

    #[test]
    fn names_come_from_file_stems() {
        assert_eq!(
            name_from_file(Path::new("x/text_transform.wasm")).unwrap(),
            "text-transform"
        );
        assert!(name_from_file(Path::new("x/9lives.wasm")).is_err());
    }
}
