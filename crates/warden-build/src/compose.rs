//! Static composition: one component's exports plugged into another's
//! imports (wac-graph), giving a new component that loads like any other.

use wac_graph::{CompositionGraph, EncodeOptions, plug};
use wac_types::Package;

use crate::error::{Error, Result};

/// A component to compose, with a name for messages.
pub struct Part<'a> {
    /// Its name (a file name, say).
    pub name: &'a str,
    /// The component's bytes.
    pub bytes: &'a [u8],
}

/// Plugs the exports of every `plugs` component into the matching imports
/// (same interface name, or a semver-compatible version) of `socket`, and
/// returns the composed component. The plugs are instantiated inside it;
/// whatever is not plugged stays an import. Fails if no plug matches an
/// import of the socket.
pub fn compose(socket: Part<'_>, plugs: &[Part<'_>]) -> Result<Vec<u8>> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::Compose {
        part: what.to_string(),
        reason: format!("{e:#}"),
    };
    let mut graph = CompositionGraph::new();
    // Package names must be distinct and valid; the parts' own names are
    // only for messages.
    let mut register = |index: usize, part: &Part<'_>| {
        let package = Package::from_bytes(
            &format!("warden:part{index}"),
            None,
            part.bytes.to_vec(),
            graph.types_mut(),
        )
        .map_err(|e| fail(part.name, &format!("{e:#}")))?;
        graph
            .register_package(package)
            .map_err(|e| fail(part.name, &e))
    };
    let socket_id = register(0, &socket)?;
    let plug_ids = plugs
        .iter()
        .enumerate()
        .map(|(i, part)| register(i + 1, part))
        .collect::<Result<Vec<_>>>()?;
    plug(&mut graph, plug_ids, socket_id).map_err(|e| {
        let names: Vec<&str> = plugs.iter().map(|p| p.name).collect();
        let cause = std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s:#}"));
        fail(
            socket.name,
            &format!("{e} (plugs: {}){cause}", names.join(", ")),
        )
    })?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| fail(socket.name, &e))
}
