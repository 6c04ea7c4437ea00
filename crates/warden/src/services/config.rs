//! Host service `warden:plugin/config`: read-only access to the plugin's own
//! configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{HostService, ServiceContext};
use crate::contract::bindings::warden::plugin::config;
use crate::sandbox::HostState;

pub(crate) struct Config {
    values: Arc<BTreeMap<String, String>>,
}

impl HostService for Config {
    fn new(ctx: &ServiceContext) -> Self {
        Config {
            values: ctx.config.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<HostState>,
        get: fn(&mut HostState) -> &mut Self,
    ) -> wasmtime::Result<()> {
        config::add_to_linker::<_, HasSelf<Self>>(linker, get)
    }
}

impl config::Host for Config {
    async fn get_config(&mut self, key: String) -> Option<String> {
        self.values.get(&key).cloned()
    }
}
