//! `upper` for Extism: text-transform's own code behind the Extism PDK, so
//! both hosts run the same guest work.

use extism_pdk::{FnResult, WithReturnCode, plugin_fn};

// text-transform's whole module; only `upper` is exported.
#[allow(dead_code)]
#[path = "../../../../plugins/text-transform/src/transform.rs"]
mod transform;

/// Upper-cases the input, as text-transform's `op=upper` does.
#[plugin_fn]
pub fn upper(input: Vec<u8>) -> FnResult<Vec<u8>> {
    match transform::run(Some("upper"), input) {
        Ok(out) => Ok(out.text.into_bytes()),
        Err(e) => Err(WithReturnCode::new(
            extism_pdk::Error::msg(e.to_string()),
            1,
        )),
    }
}
