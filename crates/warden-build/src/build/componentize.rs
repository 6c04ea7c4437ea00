//! Turning a WASI preview1 core module (what Go and C compilers make) into a
//! component: the WIT world is embedded if the compiler did not do it, and
//! the preview1 imports are adapted to WASI 0.2 with the reactor adapter.

use std::path::Path;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding};

use crate::error::{Error, Result};

/// The WIT a core module is built against: a directory and a world in it.
pub(crate) struct WitWorld<'a> {
    pub dir: &'a Path,
    pub world: &'a str,
}

/// Makes a component of `core`, the module built from the plugin in
/// `plugin_dir`. With `embed`, the world's type information is added first
/// (Go's linker cannot carry it; wit-bindgen's C object file does).
pub(crate) fn componentize(
    core: &[u8],
    embed: Option<WitWorld<'_>>,
    plugin_dir: &Path,
) -> Result<Vec<u8>> {
    let fail = |what: &str, e: anyhow::Error| Error::Build {
        dir: plugin_dir.to_path_buf(),
        message: format!("{what}: {e:#}"),
    };
    let mut module = core.to_vec();
    if let Some(wit) = embed {
        let (resolve, world) = super::bindgen::resolve_world(&wit, plugin_dir)?;
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            StringEncoding::UTF8,
            false,
        )
        .map_err(|e| fail("embedding the WIT world", e))?;
    }
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|encoder| encoder.encode())
        .map_err(|e| {
            fail(
                "making a component of the compiled module (do its exports match the world?)",
                e,
            )
        })
}
