//! `compose-case-lib`: a library component (not a plugin) exporting
//! `warden-example:text/case`. `warden compose` plugs it into a plugin that
//! imports that interface.

/// Upper case.
pub fn upper(text: &str) -> String {
    text.to_uppercase()
}

/// Title case: the first letter of each whitespace-separated word upper-cased.
pub fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../wit", world: "case-lib", generate_all });

    struct Case;

    impl exports::warden_example::text::case::Guest for Case {
        fn upper(text: String) -> String {
            super::upper(&text)
        }
        fn title(text: String) -> String {
            super::title(&text)
        }
    }

    export!(Case);
}

#[cfg(test)]
mod tests {
    #[test]
    fn cases() {
        assert_eq!(super::upper("straße"), "STRASSE");
        assert_eq!(super::title("hello big world"), "Hello Big World");
    }
}
