//! `image-stats`: brightness statistics of a PNG or JPEG image. It does
//! not decode images itself: it imports `warden-example:image/decoder`,
//! and the host wires those calls to the plugin its manifest links
//! (`image-decoder`), which runs in its own sandbox and limits. The
//! statistics are in [`stats`].

pub mod stats;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../wit", world: "processor", generate_all });

    use exports::warden::plugin::processing::Guest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};
    use warden_example::image::decoder;

    struct ImageStats;

    warden_guest::plugin_lifecycle!(ImageStats);

    impl Guest for ImageStats {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let image = decoder::decode(&request.input).map_err(PluginError::InvalidInput)?;
            let output = crate::stats::summarize(image.width, image.height, &image.pixels);
            Ok(ProcessResponse {
                output: output.into_bytes(),
                content_type: "application/json".into(),
                items_processed: u64::from(image.width) * u64::from(image.height),
            })
        }

        /// Whether the input starts like a PNG or JPEG file (decoding it
        /// would cost a call to the decoder).
        fn validate(input: Vec<u8>) -> bool {
            input.starts_with(b"\x89PNG\r\n\x1a\n") || input.starts_with(b"\xff\xd8\xff")
        }
    }

    export!(ImageStats);
}
