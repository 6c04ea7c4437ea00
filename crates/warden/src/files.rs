//! A built plugin's files as they travel: its manifest text, its component
//! (or core module), and its signature. What a signature covers, what an
//! OCI artifact or a cluster node carries, and what is written back on the
//! other side are these bytes, unchanged.

use std::path::{Component as PathPart, Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::fsutil::create_owner_only_dir;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::module::ModuleManifest;
use crate::signature::SIGNATURE_FILE;

/// A built plugin's files.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginFiles {
    /// The plugin's name.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
    /// Its description.
    pub description: String,
    /// `plugin.toml`, as it is on disk.
    pub manifest_text: String,
    /// Where the component is, relative to the plugin directory.
    pub component_file: PathBuf,
    /// The component or core module.
    pub component: Vec<u8>,
    /// `plugin.sig`, if the plugin is signed.
    pub signature: Option<String>,
}

impl PluginFiles {
    /// Reads the plugin at `path`: a directory, its `plugin.toml`, or its
    /// `.wasm` beside one.
    pub fn read(path: &Path) -> Result<PluginFiles> {
        let file = Manifest::file_for(path);
        let manifest_text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let dir = Manifest::dir_for(path);
        let mut files = PluginFiles::from_parts(&manifest_text, Vec::new(), None, &file)?;
        let component = dir.join(&files.component_file);
        files.component = std::fs::read(&component).map_err(|e| Error::Manifest {
            file: component.clone(),
            message: format!(
                "cannot read the component: {e}; build the plugin first (`warden build`)"
            ),
        })?;
        let signature_file = dir.join(SIGNATURE_FILE);
        files.signature = match std::fs::read_to_string(&signature_file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&signature_file, e)),
        };
        Ok(files)
    }

    /// The plugin made of these parts; the manifest (a component's or a
    /// core module's) is checked, `file` names it in errors.
    pub fn from_parts(
        manifest_text: &str,
        component: Vec<u8>,
        signature: Option<String>,
        file: &Path,
    ) -> Result<PluginFiles> {
        let (name, version, description, component_file) =
            if ModuleManifest::is_module_manifest(manifest_text) {
                let m = ModuleManifest::parse(manifest_text, file)?;
                let path = m.module_path(Path::new(""));
                (m.name, m.version, m.description, path)
            } else {
                let m = Manifest::parse(manifest_text, file)?;
                let path = m.component_path(Path::new(""));
                (m.name, m.version, m.description, path)
            };
        Ok(PluginFiles {
            name,
            version,
            description,
            manifest_text: manifest_text.to_string(),
            // Both manifests checked that the path stays inside.
            component_file: component_file
                .components()
                .filter(|part| matches!(part, PathPart::Normal(_)))
                .collect(),
            component,
            signature,
        })
    }

    /// Writes the files into a new directory `dir` (in an owner-only parent
    /// made when missing) through a sibling directory of their own, renamed
    /// into place: a write that fails half-way leaves nothing at `dir`, and
    /// two writers of one `dir` never share a partial directory. When
    /// another writer put `dir` there first, theirs stays.
    pub fn install(&self, dir: &Path) -> Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = dir.parent().unwrap_or(Path::new("."));
        create_owner_only_dir(parent).map_err(|e| Error::io(parent, e))?;
        let partial = parent.join(format!(
            ".partial-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&partial).map_err(|e| Error::io(&partial, e))?;
        let written = self
            .write(&partial)
            .and_then(|()| std::fs::rename(&partial, dir).map_err(|e| Error::io(dir, e)));
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
            if dir.is_dir() {
                return Ok(());
            }
        }
        written
    }

    /// Writes the files into `dir` (which must exist).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let write = |path: PathBuf, bytes: &[u8]| -> Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))
        };
        write(dir.join(&self.component_file), &self.component)?;
        write(dir.join(MANIFEST_FILE), self.manifest_text.as_bytes())?;
        if let Some(signature) = &self.signature {
            write(dir.join(SIGNATURE_FILE), signature.as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_back_where_they_were() {
        let from = tempfile::tempdir().expect("tempdir");
        let to = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(from.path().join("out")).expect("mkdir");
        std::fs::write(from.path().join("out/p.wasm"), b"\0asm").expect("write");
        let manifest = "name = \"p\"\nversion = \"1.2.0\"\nworld = \"processor\"\ncomponent = \"out/p.wasm\"\n";
        std::fs::write(from.path().join(MANIFEST_FILE), manifest).expect("write");
        std::fs::write(from.path().join(SIGNATURE_FILE), "sig").expect("write");
        let files = PluginFiles::read(from.path()).expect("read");
        assert_eq!(
            (files.name.as_str(), files.version.to_string()),
            ("p", "1.2.0".into())
        );
        files.write(to.path()).expect("write");
        assert_eq!(
            std::fs::read(to.path().join("out/p.wasm")).expect("read"),
            b"\0asm"
        );
        assert_eq!(
            std::fs::read_to_string(to.path().join(MANIFEST_FILE)).expect("read"),
            manifest
        );
        assert_eq!(
            std::fs::read_to_string(to.path().join(SIGNATURE_FILE)).expect("read"),
            "sig"
        );
        let escape =
            "name = \"p\"\nversion = \"1.0.0\"\nworld = \"processor\"\ncomponent = \"../p.wasm\"\n";
        assert!(PluginFiles::from_parts(escape, Vec::new(), None, Path::new("x")).is_err());
    }
}
