//! What `counter` can be asked to do, parsed from the request's options.
//! Std only, so it is unit-tested natively.

/// One store operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add `delta` to `key` and return the new count.
    Incr { key: String, delta: i64 },
    /// The value of `key`.
    Get { key: String },
    /// Store the input at `key`.
    Set { key: String },
    /// Remove `key`.
    Delete { key: String },
    /// Keys starting with `prefix`, a page of `limit` after `cursor`.
    List {
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    },
    /// Store the input at `key` if it holds `expected` (`None`: unset).
    Cas {
        key: String,
        expected: Option<String>,
    },
}

/// The accepted `op` values.
pub const OPS: &str = "incr, get, set, delete, list, cas";

/// Parses the options (`op`, `key`, `delta`, `prefix`, `cursor`, `limit`,
/// `expected`) into an operation.
pub fn parse(option: impl Fn(&str) -> Option<String>) -> Result<Op, String> {
    let key = || option("key").ok_or_else(|| "missing option `key`".to_string());
    let op = option("op").ok_or_else(|| format!("missing option `op`: one of {OPS}"))?;
    Ok(match op.as_str() {
        "incr" => Op::Incr {
            key: key()?,
            delta: match option("delta") {
                Some(d) => d
                    .parse()
                    .map_err(|_| format!("option `delta` must be an integer, got `{d}`"))?,
                None => 1,
            },
        },
        "get" => Op::Get { key: key()? },
        "set" => Op::Set { key: key()? },
        "delete" => Op::Delete { key: key()? },
        "list" => Op::List {
            prefix: option("prefix").unwrap_or_default(),
            cursor: option("cursor"),
            limit: match option("limit") {
                Some(l) => l
                    .parse()
                    .map_err(|_| format!("option `limit` must be a number, got `{l}`"))?,
                None => 100,
            },
        },
        "cas" => Op::Cas {
            key: key()?,
            expected: option("expected"),
        },
        other => return Err(format!("unknown op `{other}`: one of {OPS}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Op, String> {
        parse(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn parses_ops_and_defaults() {
        assert_eq!(
            with(&[("op", "incr"), ("key", "hits")]),
            Ok(Op::Incr {
                key: "hits".into(),
                delta: 1
            })
        );
        assert!(matches!(
            with(&[("op", "list")]),
            Ok(Op::List { limit: 100, .. })
        ));
        assert!(with(&[("op", "incr"), ("key", "k"), ("delta", "x")]).is_err());
        assert!(with(&[("op", "get")]).is_err_and(|e| e.contains("`key`")));
        assert!(with(&[("op", "explode")]).is_err_and(|e| e.contains(OPS)));
    }
}
