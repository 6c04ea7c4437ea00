//! Numbers passed to and from a core module's exports, parsed from text by
//! the export's parameter types.

use wasmtime::{Val, ValType};

/// A number a core-module export takes or returns.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum CoreValue {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
}

impl std::fmt::Display for CoreValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoreValue::I32(v) => write!(f, "{v}"),
            CoreValue::I64(v) => write!(f, "{v}"),
            CoreValue::F32(v) => write!(f, "{v}"),
            CoreValue::F64(v) => write!(f, "{v}"),
        }
    }
}

/// The name of a number type as WAT writes it, for messages.
pub(crate) fn type_name(ty: &ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(_) => "ref",
    }
}

impl CoreValue {
    /// Parses `text` as a value of `ty`; `None` if it is not one, or `ty` is
    /// not a number type.
    pub(crate) fn parse(text: &str, ty: &ValType) -> Option<CoreValue> {
        match ty {
            ValType::I32 => text
                .parse::<i32>()
                .ok()
                .or_else(|| text.parse::<u32>().ok().map(|u| u as i32))
                .map(CoreValue::I32),
            ValType::I64 => text
                .parse::<i64>()
                .ok()
                .or_else(|| text.parse::<u64>().ok().map(|u| u as i64))
                .map(CoreValue::I64),
            ValType::F32 => text.parse().ok().map(CoreValue::F32),
            ValType::F64 => text.parse().ok().map(CoreValue::F64),
            _ => None,
        }
    }

    /// Whether this value has type `ty`.
    pub(crate) fn has_type(&self, ty: &ValType) -> bool {
        matches!(
            (self, ty),
            (CoreValue::I32(_), ValType::I32)
                | (CoreValue::I64(_), ValType::I64)
                | (CoreValue::F32(_), ValType::F32)
                | (CoreValue::F64(_), ValType::F64)
        )
    }

    pub(crate) fn to_val(self) -> Val {
        match self {
            CoreValue::I32(v) => Val::I32(v),
            CoreValue::I64(v) => Val::I64(v),
            CoreValue::F32(v) => Val::F32(v.to_bits()),
            CoreValue::F64(v) => Val::F64(v.to_bits()),
        }
    }

    pub(crate) fn from_val(val: &Val) -> Option<CoreValue> {
        match val {
            Val::I32(v) => Some(CoreValue::I32(*v)),
            Val::I64(v) => Some(CoreValue::I64(*v)),
            Val::F32(bits) => Some(CoreValue::F32(f32::from_bits(*bits))),
            Val::F64(bits) => Some(CoreValue::F64(f64::from_bits(*bits))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_by_type() {
        assert_eq!(
            CoreValue::parse("3", &ValType::I32),
            Some(CoreValue::I32(3))
        );
        assert_eq!(
            CoreValue::parse("-3", &ValType::I64),
            Some(CoreValue::I64(-3))
        );
        assert_eq!(
            CoreValue::parse("4294967295", &ValType::I32),
            Some(CoreValue::I32(-1))
        );
        assert_eq!(
            CoreValue::parse("2.5", &ValType::F64),
            Some(CoreValue::F64(2.5))
        );
        assert_eq!(CoreValue::parse("2.5", &ValType::I32), None);
        assert_eq!(CoreValue::parse("x", &ValType::F32), None);
    }

    #[test]
    fn values_round_trip_through_wasmtime() {
        for v in [
            CoreValue::I32(-7),
            CoreValue::I64(1 << 40),
            CoreValue::F32(1.5),
            CoreValue::F64(-0.25),
        ] {
            assert_eq!(CoreValue::from_val(&v.to_val()), Some(v));
        }
    }
}
