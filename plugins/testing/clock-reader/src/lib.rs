//! `clock-reader`: a test fixture for the embedder's own capabilities. It
//! imports `example:clock/now`, which no Warden host offers unless the
//! application registers a capability for it, and answers `process` with
//! the clock's reading.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package example:clock;

            /// A clock the application offers its plugins.
            interface now {
                /// The application's time, in its own units.
                now: func() -> u64;
            }

            world clock-reader {
                import now;
                export warden:plugin/plugin@0.1.0;
                export warden:plugin/processing@0.1.0;
            }
        ",
        world: "example:clock/clock-reader",
        generate_all,
    });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};

    struct ClockReader;

    warden_guest::plugin_lifecycle!(ClockReader);

    impl ProcessorGuest for ClockReader {
        fn process(_request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            Ok(ProcessResponse {
                output: example::clock::now::now().to_string().into_bytes(),
                content_type: "text/plain; charset=utf-8".into(),
                items_processed: 1,
            })
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(ClockReader);
}
