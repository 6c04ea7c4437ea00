//! Plugin names: what every part of the host that takes one checks it
//! against.

/// Checks a plugin name: 1-64 of `a-z`, `0-9`, `-`, starting with a letter.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid plugin name; use 1-64 lowercase letters, digits and `-`, starting with a letter"
        ))
    }
}
