//! The JSON reshaping of `json-transform`, free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../transform.rs"] mod transform;`). Depends on `std`
//! and `serde_json` only; key order is kept only when `serde_json` has its
//! `preserve_order` feature, as the plugin workspace enables.

use std::fmt;

use serde_json::{Map, Value};

/// Why a request could not be served; `lib.rs` maps the variants one to one
/// onto the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    InvalidInput(String),
    Unsupported(String),
    Internal(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::InvalidInput(m) | JsonError::Unsupported(m) | JsonError::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Target of the `case` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Camel,
    Snake,
}

/// The parsed request options. Unknown option keys are ignored so callers
/// can share one option set between plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `pick=a,b`: top-level keys to keep.
    pub pick: Option<Vec<String>>,
    /// `rename=old:new,...`: top-level renames, applied after `pick`.
    pub rename: Vec<(String, String)>,
    /// `case=camel|snake`: recursive key case, applied last.
    pub case: Option<Case>,
    /// `pretty=true`: indented output.
    pub pretty: bool,
}

impl Options {
    /// Parses the request's key/value options.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Options, JsonError> {
        let mut opts = Options::default();
        for (key, value) in pairs {
            match key {
                "pick" => {
                    let keys: Vec<String> = split_list(value).map(str::to_string).collect();
                    if keys.is_empty() {
                        return Err(JsonError::InvalidInput(
                            "option `pick` needs at least one key, as in `pick=id,name`".into(),
                        ));
                    }
                    opts.pick = Some(keys);
                }
                "rename" => {
                    for pair in split_list(value) {
                        match pair.split_once(':') {
                            Some((old, new))
                                if !old.trim().is_empty() && !new.trim().is_empty() =>
                            {
                                opts.rename
                                    .push((old.trim().to_string(), new.trim().to_string()));
                            }
                            _ => {
                                return Err(JsonError::InvalidInput(format!(
                                    "option `rename`: `{pair}` is not of the form old:new"
                                )));
                            }
                        }
                    }
                }
                "case" => {
                    opts.case = Some(match value {
                        "camel" => Case::Camel,
                        "snake" => Case::Snake,
                        other => {
                            return Err(JsonError::Unsupported(format!(
                                "unknown case `{other}`: expected camel or snake"
                            )));
                        }
                    });
                }
                "pretty" => {
                    opts.pretty = match value {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(JsonError::InvalidInput(format!(
                                "option `pretty` must be true or false, got `{other}`"
                            )));
                        }
                    };
                }
                _ => {}
            }
        }
        Ok(opts)
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The result of one transformation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub json: Vec<u8>,
    /// Objects transformed: 1 for an object, the length for an array.
    pub items: u64,
}

/// Parses `input`, applies `opts` and serializes the result.
pub fn transform(input: &[u8], opts: &Options) -> Result<Output, JsonError> {
    let value: Value = serde_json::from_slice(input)
        .map_err(|e| JsonError::InvalidInput(format!("invalid JSON: {e}")))?;
    let (value, items) = match value {
        Value::Object(map) => (Value::Object(transform_object(map, opts)), 1),
        Value::Array(elements) => {
            let count = elements.len() as u64;
            let mut out = Vec::with_capacity(elements.len());
            for (i, element) in elements.into_iter().enumerate() {
                match element {
                    Value::Object(map) => out.push(Value::Object(transform_object(map, opts))),
                    other => {
                        return Err(JsonError::InvalidInput(format!(
                            "array element {i} is {}, expected an object",
                            kind(&other)
                        )));
                    }
                }
            }
            (Value::Array(out), count)
        }
        other => {
            return Err(JsonError::InvalidInput(format!(
                "expected a JSON object or an array of objects, got {}",
                kind(&other)
            )));
        }
    };
    let json = if opts.pretty {
        serde_json::to_vec_pretty(&value)
    } else {
        serde_json::to_vec(&value)
    }
    .map_err(|e| JsonError::Internal(format!("cannot serialize result: {e}")))?;
    Ok(Output { json, items })
}

/// Whether `input` parses as JSON.
pub fn validate(input: &[u8]) -> bool {
    serde_json::from_slice::<Value>(input).is_ok()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn transform_object(map: Map<String, Value>, opts: &Options) -> Map<String, Value> {
    let mut map = map;
    if let Some(keep) = &opts.pick {
        map.retain(|k, _| keep.iter().any(|p| p == k));
    }
    if !opts.rename.is_empty() {
        // Rebuilt rather than remove+insert so a renamed key keeps its place.
        map = map
            .into_iter()
            .map(
                |(k, v)| match opts.rename.iter().find(|(old, _)| *old == k) {
                    Some((_, new)) => (new.clone(), v),
                    None => (k, v),
                },
            )
            .collect();
    }
    if let Some(case) = opts.case {
        map = convert_keys(map, case);
    }
    map
}

fn convert_keys(map: Map<String, Value>, case: Case) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (convert_key(&k, case), convert_value(v, case)))
        .collect()
}

fn convert_value(value: Value, case: Case) -> Value {
    match value {
        Value::Object(map) => Value::Object(convert_keys(map, case)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| convert_value(v, case)).collect())
        }
        other => other,
    }
}

/// Converts one key. Leading underscores are kept (`_id` stays private-looking).
pub fn convert_key(key: &str, case: Case) -> String {
    let body = key.trim_start_matches('_');
    let prefix = &key[..key.len() - body.len()];
    let words = split_words(body);
    if words.is_empty() {
        return key.to_string();
    }
    let mut out = String::with_capacity(key.len() + words.len());
    out.push_str(prefix);
    match case {
        Case::Snake => {
            for (i, word) in words.iter().enumerate() {
                if i > 0 {
                    out.push('_');
                }
                out.push_str(&word.to_lowercase());
            }
        }
        Case::Camel => {
            for (i, word) in words.iter().enumerate() {
                if i == 0 {
                    out.push_str(&word.to_lowercase());
                } else {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        out.extend(first.to_uppercase());
                        out.push_str(&chars.as_str().to_lowercase());
                    }
                }
            }
        }
    }
    out
}

/// Splits a key into words at `_`, `-` and whitespace, at lower-to-upper
/// changes (`userName`), and before the last capital of an acronym that is
/// followed by a lowercase letter (`HTTPServer` → `HTTP`, `Server`).
pub fn split_words(key: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let chars: Vec<(usize, char)> = key.char_indices().collect();
    let mut start: Option<usize> = None;
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if let Some(s) = start.take() {
                words.push(&key[s..pos]);
            }
            continue;
        }
        if let Some(s) = start {
            let prev = chars[i - 1].1;
            let next = chars.get(i + 1).map(|&(_, n)| n);
            let boundary = c.is_uppercase()
                && (prev.is_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_uppercase() && next.is_some_and(char::is_lowercase)));
            if boundary {
                words.push(&key[s..pos]);
                start = Some(pos);
            }
        } else {
            start = Some(pos);
        }
    }
    if let Some(s) = start {
        words.push(&key[s..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        match Options::parse(pairs.iter().copied()) {
            Ok(o) => o,
            Err(e) => panic!("bad options {pairs:?}: {e}"),
        }
    }

    fn run(input: &str, pairs: &[(&str, &str)]) -> (String, u64) {
        match transform(input.as_bytes(), &opts(pairs)) {
            Ok(out) => (String::from_utf8(out.json).unwrap_or_default(), out.items),
            Err(e) => panic!("transform failed: {e}"),
        }
    }

    #[test]
    fn passthrough_keeps_key_order() {
        assert_eq!(
            run(r#"{"z":1,"a":2,"m":3}"#, &[]),
            (r#"{"z":1,"a":2,"m":3}"#.into(), 1)
        );
    }

    #[test]
    fn pick_rename_case_in_order() {
        let (out, items) = run(
            r#"{"user_name":"ann","user_id":7,"secret":"x","home_address":{"zip_code":"123"}}"#,
            &[
                ("pick", "user_name,user_id,home_address"),
                ("rename", "user_id:id_number"),
                ("case", "camel"),
            ],
        );
        assert_eq!(
            out,
            r#"{"userName":"ann","idNumber":7,"homeAddress":{"zipCode":"123"}}"#
        );
        assert_eq!(items, 1);
    }

    #[test]
    fn rename_keeps_position() {
        let (out, _) = run(r#"{"a":1,"b":2,"c":3}"#, &[("rename", "a:x, b : y")]);
        assert_eq!(out, r#"{"x":1,"y":2,"c":3}"#);
    }

    #[test]
    fn arrays_of_objects_count_each() {
        let (out, items) = run(
            r#"[{"fooBar":1},{"bazQux":[{"innerKey":true}]}]"#,
            &[("case", "snake")],
        );
        assert_eq!(out, r#"[{"foo_bar":1},{"baz_qux":[{"inner_key":true}]}]"#);
        assert_eq!(items, 2);
        assert_eq!(run("[]", &[]), ("[]".into(), 0));
    }

    #[test]
    fn key_case_conversions() {
        assert_eq!(convert_key("user_name", Case::Camel), "userName");
        assert_eq!(convert_key("userName", Case::Snake), "user_name");
        assert_eq!(convert_key("HTTPServer", Case::Snake), "http_server");
        assert_eq!(convert_key("HTTPServer", Case::Camel), "httpServer");
        assert_eq!(
            convert_key("XMLHttpRequest", Case::Snake),
            "xml_http_request"
        );
        assert_eq!(convert_key("userID", Case::Snake), "user_id");
        assert_eq!(convert_key("userID", Case::Camel), "userId");
        assert_eq!(convert_key("address2Line", Case::Snake), "address2_line");
        assert_eq!(convert_key("kebab-case-key", Case::Camel), "kebabCaseKey");
        assert_eq!(convert_key("_private_field", Case::Camel), "_privateField");
        assert_eq!(convert_key("userName", Case::Camel), "userName");
        assert_eq!(convert_key("user_name", Case::Snake), "user_name");
        assert_eq!(convert_key("___", Case::Camel), "___");
        assert_eq!(convert_key("", Case::Snake), "");
        assert_eq!(convert_key("ÉtéHiver", Case::Snake), "été_hiver");
    }

    #[test]
    fn pretty_output() {
        let (out, _) = run(r#"{"a":[1]}"#, &[("pretty", "true")]);
        assert_eq!(out, "{\n  \"a\": [\n    1\n  ]\n}");
    }

    #[test]
    fn invalid_json_carries_serde_message() {
        let err = transform(b"nope", &Options::default());
        assert_eq!(
            err,
            Err(JsonError::InvalidInput(
                "invalid JSON: expected ident at line 1 column 2".into()
            ))
        );
        let err = transform(b"", &Options::default());
        assert_eq!(
            err,
            Err(JsonError::InvalidInput(
                "invalid JSON: EOF while parsing a value at line 1 column 0".into()
            ))
        );
        let err = transform(b"?", &Options::default());
        assert_eq!(
            err,
            Err(JsonError::InvalidInput(
                "invalid JSON: expected value at line 1 column 1".into()
            ))
        );
    }

    #[test]
    fn non_objects_are_invalid_input() {
        assert!(
            matches!(transform(b"42", &Options::default()), Err(JsonError::InvalidInput(m)) if m.contains("a number"))
        );
        assert!(
            matches!(transform(br#"[{}, "x"]"#, &Options::default()), Err(JsonError::InvalidInput(m)) if m.contains("element 1"))
        );
    }

    #[test]
    fn option_errors() {
        assert!(
            matches!(Options::parse([("case", "kebab")]), Err(JsonError::Unsupported(m)) if m.contains("kebab"))
        );
        assert!(matches!(
            Options::parse([("rename", "a-b")]),
            Err(JsonError::InvalidInput(_))
        ));
        assert!(matches!(
            Options::parse([("pretty", "yes")]),
            Err(JsonError::InvalidInput(_))
        ));
        assert!(matches!(
            Options::parse([("pick", " , ")]),
            Err(JsonError::InvalidInput(_))
        ));
        assert_eq!(Options::parse([("unrelated", "x")]), Ok(Options::default()));
    }

    #[test]
    fn validate_parses() {
        assert!(validate(br#"{"a":1}"#));
        assert!(validate(b"42"));
        assert!(!validate(b"{"));
    }
}
