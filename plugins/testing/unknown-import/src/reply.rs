//! The one piece of `unknown-import` that needs no bindings: the text it
//! would answer with if a host ever did provide `acme:missing/api`.
//!
//! Kept apart from `lib.rs` like every plugin's logic, so it is unit-tested
//! natively. Depends on `std` only.

/// Output of `process`: the `ping` answer, quoted.
pub fn reply(pong: &str) -> String {
    format!("acme:missing/api answered ping with {pong:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_answer() {
        assert_eq!(
            reply("pong"),
            "acme:missing/api answered ping with \"pong\""
        );
    }
}
