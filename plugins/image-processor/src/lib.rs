//! `image-processor`: the component glue between the Warden contract and the
//! image pipeline in [`imaging`].
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod imaging;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::imaging::{self, ImageError, Options};

    wit_bindgen::generate!({ path: "../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{LogLevel, PluginError, ProcessRequest, ProcessResponse};

    fn to_plugin_error(e: ImageError) -> PluginError {
        match e {
            ImageError::InvalidInput(m) => PluginError::InvalidInput(m),
            ImageError::Unsupported(m) => PluginError::Unsupported(m),
            ImageError::Internal(m) => PluginError::Internal(m),
        }
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component);

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let opts = Options::parse(
                request
                    .options
                    .iter()
                    .map(|kv| (kv.key.as_str(), kv.value.as_str())),
            )
            .map_err(to_plugin_error)?;
            let out = imaging::process(&request.input, &opts).map_err(to_plugin_error)?;
            log(
                LogLevel::Debug,
                &format!(
                    "{} bytes in, {}x{} {} out ({} bytes)",
                    request.input.len(),
                    out.width,
                    out.height,
                    out.format.content_type(),
                    out.bytes.len()
                ),
            );
            let items_processed = out.pixels();
            Ok(ProcessResponse {
                content_type: out.format.content_type().to_string(),
                output: out.bytes,
                items_processed,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            imaging::validate(&input)
        }
    }

    export!(Component);
}
