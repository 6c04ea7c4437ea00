//! Calling `processing` in whichever contract version a plugin exports it:
//! one enum over the generated bindings of each version, and the
//! conversions from the host's request to each version's.
//!
//! The calls every version has are dispatched by
//! [`processing_versions!`]; a function added in a later version is one
//! `match` that answers `None` for the versions without it.

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::contract::bindings::processing::{processing0_1_0, processing0_2_0, types0_2_0};
use crate::contract::bindings::types;
use crate::scope::CallId;
use crate::state::PluginState;

/// One option a processor plugin understands, from its
/// `describe-options` (contract 0.2.0 and later).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OptionDoc {
    /// The option's key (`op`).
    pub name: String,
    /// What it does.
    pub description: String,
    /// The values it accepts when they are a fixed set; empty when any
    /// value goes.
    pub values: Vec<String>,
    /// The value used when the option is left out.
    pub default: Option<String>,
}

/// A `process` call as the host holds it, whatever the version of the
/// plugin it goes to: the newest request's fields.
pub(crate) struct ProcessCall {
    pub(crate) input: Vec<u8>,
    pub(crate) content_type: String,
    pub(crate) options: Vec<types::KeyValue>,
    pub(crate) call_id: CallId,
}

impl From<ProcessCall> for types::ProcessRequest {
    fn from(c: ProcessCall) -> Self {
        types::ProcessRequest {
            input: c.input,
            content_type: c.content_type,
            options: c.options,
        }
    }
}

impl From<ProcessCall> for types0_2_0::ProcessRequest {
    fn from(c: ProcessCall) -> Self {
        types0_2_0::ProcessRequest {
            call_id: c.call_id.to_string(),
            input: c.input,
            content_type: c.content_type,
            options: c.options,
        }
    }
}

/// Declares the versions of `processing` the host calls: a variant, the
/// generated module and the interface version, one line each. Each
/// version's request must convert from [`ProcessCall`].
macro_rules! processing_versions {
    ($($variant:ident => $module:ident @ $version:literal),* $(,)?) => {
        /// Where a component's `processing` export lives, in the version
        /// it exports.
        #[derive(Clone)]
        pub(crate) enum ProcessingIndices {
            $($variant($module::GuestIndices)),*
        }

        /// An instance's `processing` export.
        pub(crate) enum Processing {
            $($variant($module::Guest)),*
        }

        impl ProcessingIndices {
            /// Looks up the export of interface version `version`.
            pub(crate) fn new(
                pre: &InstancePre<PluginState>,
                version: &str,
            ) -> wasmtime::Result<Self> {
                match version {
                    $($version => Ok(Self::$variant($module::GuestIndices::new(pre)?)),)*
                    other => Err(wasmtime::format_err!(
                        "the host has no bindings for processing@{other}"
                    )),
                }
            }

            /// The export in a new instance.
            pub(crate) fn load(
                &self,
                store: &mut Store<PluginState>,
                instance: &Instance,
            ) -> wasmtime::Result<Processing> {
                Ok(match self {
                    $(Self::$variant(i) => Processing::$variant(i.load(store, instance)?)),*
                })
            }
        }

        impl Processing {
            /// `process`.
            pub(crate) async fn process(
                &self,
                store: &mut Store<PluginState>,
                call: ProcessCall,
            ) -> wasmtime::Result<Result<types::ProcessResponse, types::PluginError>> {
                match self {
                    $(Self::$variant(g) => g.call_process(store, &call.into()).await),*
                }
            }

            /// `validate`.
            pub(crate) async fn validate(
                &self,
                store: &mut Store<PluginState>,
                input: &[u8],
            ) -> wasmtime::Result<bool> {
                match self {
                    $(Self::$variant(g) => g.call_validate(store, input).await),*
                }
            }
        }
    };
}

processing_versions! {
    V0_1_0 => processing0_1_0 @ "0.1.0",
    V0_2_0 => processing0_2_0 @ "0.2.0",
}

impl Processing {
    /// `describe-options` (new in 0.2.0); `None` for a plugin of an
    /// earlier version.
    pub(crate) async fn describe_options(
        &self,
        store: &mut Store<PluginState>,
    ) -> wasmtime::Result<Option<Vec<OptionDoc>>> {
        Ok(match self {
            Processing::V0_1_0(_) => None,
            Processing::V0_2_0(g) => Some(
                g.call_describe_options(store)
                    .await?
                    .into_iter()
                    .map(OptionDoc::from)
                    .collect(),
            ),
        })
    }
}

impl From<types0_2_0::OptionDoc> for OptionDoc {
    fn from(d: types0_2_0::OptionDoc) -> Self {
        OptionDoc {
            name: d.name,
            description: d.description,
            values: d.values,
            default: d.default,
        }
    }
}
