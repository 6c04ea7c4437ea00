//! The values that cross a plugin call: requests, responses, metadata and
//! status, as plain Rust types independent of the generated bindings.

use crate::contract::bindings::types as wit;
use crate::error::PluginError;
pub use crate::processing::OptionDoc;
use crate::processing::ProcessCall;
use crate::scope::CallId;

/// One unit of work for a processor plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessRequest {
    /// The bytes to work on.
    pub input: Vec<u8>,
    /// The MIME type of `input`; empty when unknown.
    pub content_type: String,
    /// Options such as `op=upper`, in the order given.
    pub options: Vec<(String, String)>,
    /// The id logs of this call carry; generated when `None`.
    pub call_id: Option<String>,
    /// What keeps a caller on one side of a canary (a user or session
    /// id): calls with the same key go to the same version. Calls without
    /// one are spread evenly.
    pub routing_key: Option<String>,
}

impl ProcessRequest {
    /// A request for `input` with no content type and no options.
    pub fn new(input: impl Into<Vec<u8>>) -> Self {
        ProcessRequest {
            input: input.into(),
            ..Default::default()
        }
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Adds an option (a later option with the same key replaces it).
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.options.retain(|(k, _)| *k != key);
        self.options.push((key, value.into()));
        self
    }

    /// Adds options in one go, each later option with a key replacing an
    /// earlier one (as [`ProcessRequest::option`] does, in linear time).
    pub fn options<K: Into<String>, V: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.options
            .extend(options.into_iter().map(|(k, v)| (k.into(), v.into())));
        let mut last = std::collections::HashMap::with_capacity(self.options.len());
        for (i, (key, _)) in self.options.iter().enumerate() {
            last.insert(key.clone(), i);
        }
        let mut i = 0;
        self.options.retain(|(key, _)| {
            let keep = last.get(key) == Some(&i);
            i += 1;
            keep
        });
        self
    }

    /// Sets the call id (for example an HTTP request id).
    pub fn call_id(mut self, id: impl Into<String>) -> Self {
        self.call_id = Some(id.into());
        self
    }

    /// Sets the routing key (see [`ProcessRequest::routing_key`]).
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = Some(key.into());
        self
    }

    /// The call as the host hands it to a plugin (with its call id, made
    /// up when the caller gave none), and the routing key apart.
    pub(crate) fn into_call(self) -> (ProcessCall, Option<String>) {
        let call = ProcessCall {
            input: self.input,
            content_type: self.content_type,
            options: self
                .options
                .into_iter()
                .map(|(key, value)| wit::KeyValue { key, value })
                .collect(),
            call_id: self
                .call_id
                .map_or_else(CallId::next, |id| CallId::Given(id.into())),
        };
        (call, self.routing_key)
    }
}

/// What a processor plugin produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ProcessResponse {
    /// The bytes produced.
    #[serde(skip)]
    pub output: Vec<u8>,
    /// Their MIME type.
    pub content_type: String,
    /// How many items the plugin handled.
    pub items_processed: u64,
    /// The version of the plugin that answered.
    pub version: String,
}

impl From<wit::ProcessResponse> for ProcessResponse {
    fn from(r: wit::ProcessResponse) -> Self {
        ProcessResponse {
            output: r.output,
            content_type: r.content_type,
            items_processed: r.items_processed,
            version: String::new(),
        }
    }
}

/// A plugin's description of itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginMetadata {
    /// The plugin's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Who wrote it.
    pub author: String,
}

impl From<wit::PluginMetadata> for PluginMetadata {
    fn from(m: wit::PluginMetadata) -> Self {
        PluginMetadata {
            name: m.name,
            version: m.version,
            description: m.description,
            author: m.author,
        }
    }
}

/// A plugin's own view of its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginStatus {
    /// `initialize` has not run.
    Uninitialized,
    /// Serving.
    Ready,
    /// Serving, with trouble.
    Degraded,
    /// Not able to serve.
    Failed,
    /// Shut down.
    Stopped,
}

impl PluginStatus {
    /// The status as a kebab-case word, as in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginStatus::Uninitialized => "uninitialized",
            PluginStatus::Ready => "ready",
            PluginStatus::Degraded => "degraded",
            PluginStatus::Failed => "failed",
            PluginStatus::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for PluginStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::PluginStatus> for PluginStatus {
    fn from(s: wit::PluginStatus) -> Self {
        match s {
            wit::PluginStatus::Uninitialized => PluginStatus::Uninitialized,
            wit::PluginStatus::Ready => PluginStatus::Ready,
            wit::PluginStatus::Degraded => PluginStatus::Degraded,
            wit::PluginStatus::Failed => PluginStatus::Failed,
            wit::PluginStatus::Stopped => PluginStatus::Stopped,
        }
    }
}

impl From<wit::PluginError> for PluginError {
    fn from(e: wit::PluginError) -> Self {
        match e {
            wit::PluginError::InvalidInput(m) => PluginError::InvalidInput(m),
            wit::PluginError::Unsupported(m) => PluginError::Unsupported(m),
            wit::PluginError::Internal(m) => PluginError::Internal(m),
        }
    }
}

pub(crate) fn event_to_wit(e: &crate::events::Event) -> wit::Event {
    wit::Event {
        event_type: e.event_type.clone(),
        payload: e.payload.clone(),
        timestamp: e.timestamp_ms,
        source: e.source.clone(),
    }
}
