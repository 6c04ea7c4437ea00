//! `image-decoder`: serves `warden-example:image/decoder` to the plugins
//! that the host links to it (link-time composition). Its world is
//! `minimal`: it has no processing of its own and is reached only through
//! links. The decoding itself is in [`greyscale`].

pub mod greyscale;

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../wit", world: "decoder-plugin", generate_all });

    use exports::warden_example::image::decoder::{GreyImage, Guest};

    struct Decoder;

    warden_guest::plugin_lifecycle!(Decoder);

    impl Guest for Decoder {
        fn formats() -> Vec<String> {
            crate::greyscale::FORMATS.map(String::from).to_vec()
        }

        fn decode(data: Vec<u8>) -> Result<GreyImage, String> {
            crate::greyscale::decode(&data).map(|grey| GreyImage {
                width: grey.width,
                height: grey.height,
                pixels: grey.pixels,
            })
        }

        fn luminance(data: Vec<u8>) -> Result<Vec<u8>, String> {
            crate::greyscale::decode(&data).map(|grey| grey.pixels)
        }
    }

    export!(Decoder);
}
