//! `compose-shout`: a processor plugin whose case conversions come from
//! another component (`warden-example:text/case`). On its own it does not
//! load (the host does not provide `case`); `warden compose` plugs
//! `compose-case-lib` into it, and the result is an ordinary plugin.
//! Option `mode=title` title-cases; anything else shouts.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../wit", world: "shout", generate_all });

    use exports::warden::plugin::processing::Guest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};
    use warden_example::text::case;

    struct Shout;

    warden_guest::plugin_lifecycle!(Shout);

    impl Guest for Shout {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let text = String::from_utf8(request.input)
                .map_err(|_| PluginError::InvalidInput("the input is not UTF-8".into()))?;
            let option = warden_guest::option_lookup!(request);
            let output = match option("mode").as_deref() {
                Some("title") => case::title(&text),
                _ => case::upper(&text),
            };
            Ok(ProcessResponse {
                output: output.into_bytes(),
                content_type: "text/plain".into(),
                items_processed: 1,
            })
        }

        fn validate(input: Vec<u8>) -> bool {
            std::str::from_utf8(&input).is_ok()
        }
    }

    export!(Shout);
}
