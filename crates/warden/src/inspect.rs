//! Reading a component without running it: its imports and exports, the
//! world it matches, and its interface rendered as WIT.

use crate::contract::{ContractVersion, World};
use crate::digest::sha256_hex;
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
    /// The contract version the component targets; `None` when it fits
    /// none this host serves (`contract_error` says why).
    pub contract: Option<ContractVersion>,
    /// Why the component fits no contract version this host serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_error: Option<String>,
    /// The richest `warden:plugin` world the exports satisfy in that
    /// contract version, if any.
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
    let contract = ContractVersion::detect(
        source_name,
        imports.iter().chain(&exports).map(String::as_str),
    );
    Ok(Inspection {
        size: bytes.len(),
        sha256: sha256_hex(bytes),
        world: contract
            .as_ref()
            .ok()
            .and_then(|c| World::infer(*c, &exports)),
        contract_error: contract.as_ref().err().map(ToString::to_string),
        contract: contract.ok(),
        imports,
        exports,
        wit: printer.output.to_string(),
    })
}
