//! `image-stats`: brightness statistics of a PNG or JPEG image. It does
//! not decode images itself: it imports `warden-example:image/decoder`,
//! and the host wires those calls to the plugin its manifest links
//! (`image-decoder`), which runs in its own sandbox and limits. The
//! statistics are in [`stats`]; `op=luminance` answers the decoded pixels
//! instead, `op=formats` the formats the decoder reads.

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
        /// The statistics as JSON; with `op=luminance`, the decoded
        /// pixels themselves, one byte per pixel, row by row; with
        /// `op=formats`, the formats the decoder reads, one per line.
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let op = request.options.iter().find(|kv| kv.key == "op");
            match op.map(|kv| kv.value.as_str()) {
                None | Some("stats") => stats(&request.input),
                Some("luminance") => luminance(&request.input),
                Some("formats") => Ok(formats()),
                Some(other) => Err(PluginError::InvalidInput(format!(
                    "unknown op `{other}`: use `stats` (the default), `luminance` or `formats`"
                ))),
            }
        }

        /// Whether the input starts like a PNG or JPEG file (decoding it
        /// would cost a call to the decoder).
        fn validate(input: Vec<u8>) -> bool {
            input.starts_with(b"\x89PNG\r\n\x1a\n") || input.starts_with(b"\xff\xd8\xff")
        }
    }

    fn stats(input: &[u8]) -> Result<ProcessResponse, PluginError> {
        let image = decoder::decode(input).map_err(PluginError::InvalidInput)?;
        let output = crate::stats::summarize(image.width, image.height, &image.pixels);
        Ok(ProcessResponse {
            output: output.into_bytes(),
            content_type: "application/json".into(),
            items_processed: u64::from(image.width) * u64::from(image.height),
        })
    }

    fn luminance(input: &[u8]) -> Result<ProcessResponse, PluginError> {
        let pixels = decoder::luminance(input).map_err(PluginError::InvalidInput)?;
        Ok(ProcessResponse {
            items_processed: pixels.len() as u64,
            output: pixels,
            content_type: "application/octet-stream".into(),
        })
    }

    fn formats() -> ProcessResponse {
        let formats = decoder::formats();
        ProcessResponse {
            items_processed: formats.len() as u64,
            output: formats.join("\n").into_bytes(),
            content_type: "text/plain".into(),
        }
    }

    export!(ImageStats);
}
