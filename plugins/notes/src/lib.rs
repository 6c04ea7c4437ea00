//! `notes`: text notes kept as files in the plugin's private data directory,
//! which the host mounts at `/data` (`data-dir = true` in `plugin.toml`).
//! Options: `op` (write | append | read | list | delete) and `name`.

pub mod notes;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::path::Path;

    use crate::notes;

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct Notes;

    warden_guest::plugin_lifecycle!(Notes);

    impl ProcessorGuest for Notes {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let op = notes::parse(option).map_err(PluginError::InvalidInput)?;
            let output =
                notes::run(Path::new("/data"), &op, &request.input).map_err(|e| {
                    match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            PluginError::InvalidInput(format!("no such note: {e}"))
                        }
                        _ => PluginError::Internal(format!("{op:?}: {e}")),
                    }
                })?;
            Ok(ProcessResponse {
                output,
                content_type: "text/plain; charset=utf-8".into(),
                items_processed: 1,
            })
        }

        /// Any text can be a note.
        fn validate(input: Vec<u8>) -> bool {
            std::str::from_utf8(&input).is_ok()
        }
    }

    export!(Notes);
}
