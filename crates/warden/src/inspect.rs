//! Reading a component without running it: its imports and exports, the
//! world it matches, and its interface rendered as WIT.

use crate::cache::sha256_hex;
use crate::contract::World;
use crate::error::{Error, Result};
use crate::loader::check_header;

/// What a component declares.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// The component's size in bytes.
    pub size: usize,
    /// Its sha256, hex.
    pub sha256: String,
    /// Imported interfaces and functions, by name.
    pub imports: Vec<String>,
    /// Exported interfaces and functions, by name.
    pub exports: Vec<String>,
    /// The richest `warden:plugin` world the exports satisfy, if any.
    pub world: Option<World>,
    /// The component's world rendered as WIT.
    pub wit: String,
}

/// Decodes `bytes` (a component) without compiling or running it.
/// `source_name` (a file name) is used in errors.
pub fn inspect(bytes: &[u8], source_name: &str) -> Result<Inspection> {
    check_header(bytes, source_name)?;
    let invalid = |e: String| Error::InvalidComponent {
        source_name: source_name.to_string(),
        reason: e,
    };
    let decoded = wit_component::decode(bytes).map_err(|e| invalid(format!("{e:#}")))?;
    let resolve = decoded.resolve();
    let wit_component::DecodedWasm::Component(_, world_id) = &decoded else {
        return Err(Error::InvalidComponent {
            source_name: source_name.to_string(),
            reason: "this is a WIT package, not a component".into(),
        });
    };
    let world = &resolve.worlds[*world_id];
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect::<Vec<_>>()
    };
    let imports = names(&world.imports);
    let exports = names(&world.exports);
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(resolve, decoded.package(), &[])
        .map_err(|e| invalid(format!("{e:#}")))?;
    Ok(Inspection {
        size: bytes.len(),
        sha256: sha256_hex(bytes),
        world: World::infer(exports.iter().map(String::as_str)),
        imports,
        exports,
        wit: printer.output.to_string(),
    })
}
