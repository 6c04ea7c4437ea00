//! The values that cross a link: the types a linked function may have,
//! how they are compared and described, and how much data a call moves.

use wasmtime::component::Val;
use wasmtime::component::types::{ComponentFunc, Type};

/// The parameter and result types of a linked function, as the consumer
/// imports it.
pub(crate) struct Signature {
    params: Vec<Type>,
    results: Vec<Type>,
}

impl Signature {
    pub(crate) fn of(ty: &ComponentFunc) -> Self {
        Signature {
            params: ty.params().map(|(_, ty)| ty).collect(),
            results: ty.results().collect(),
        }
    }

    /// Why a provider function of type `ty` cannot serve this import.
    pub(crate) fn mismatch(&self, ty: &ComponentFunc) -> Option<String> {
        let params: Vec<Type> = ty.params().map(|(_, ty)| ty).collect();
        let results: Vec<Type> = ty.results().collect();
        (params != self.params || results != self.results).then(|| {
            format!(
                "its type is ({}) -> ({}), the importer expects ({}) -> ({})",
                describe(&params),
                describe(&results),
                describe(&self.params),
                describe(&self.results)
            )
        })
    }
}

fn describe(types: &[Type]) -> String {
    types.iter().map(wit_name).collect::<Vec<_>>().join(", ")
}

/// A type as WIT spells it (records, variants, enums and flags with their
/// members), for mismatch messages.
fn wit_name(ty: &Type) -> String {
    let join = |parts: Vec<String>| parts.join(", ");
    let optional = |ty: Option<Type>| ty.as_ref().map_or_else(|| "_".to_string(), wit_name);
    match ty {
        Type::List(list) => format!("list<{}>", wit_name(&list.ty())),
        Type::FixedLengthList(list) => format!("list<{}, {}>", wit_name(&list.ty()), list.len()),
        Type::Map(map) => format!("map<{}, {}>", wit_name(&map.key()), wit_name(&map.value())),
        Type::Option(option) => format!("option<{}>", wit_name(&option.ty())),
        Type::Result(result) => format!(
            "result<{}, {}>",
            optional(result.ok()),
            optional(result.err())
        ),
        Type::Tuple(tuple) => format!(
            "tuple<{}>",
            join(tuple.types().map(|t| wit_name(&t)).collect())
        ),
        Type::Record(record) => format!(
            "record {{ {} }}",
            join(
                record
                    .fields()
                    .map(|f| format!("{}: {}", f.name, wit_name(&f.ty)))
                    .collect()
            )
        ),
        Type::Variant(variant) => format!(
            "variant {{ {} }}",
            join(
                variant
                    .cases()
                    .map(|c| match &c.ty {
                        Some(ty) => format!("{}({})", c.name, wit_name(ty)),
                        None => c.name.to_string(),
                    })
                    .collect()
            )
        ),
        Type::Enum(e) => format!(
            "enum {{ {} }}",
            join(e.names().map(str::to_string).collect())
        ),
        Type::Flags(f) => format!(
            "flags {{ {} }}",
            join(f.names().map(str::to_string).collect())
        ),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The size of `values` as data, as the size limits count it.
pub(crate) fn size_of_values(values: &[Val]) -> usize {
    let size: u64 = values.iter().map(data_size).sum();
    usize::try_from(size).unwrap_or(usize::MAX)
}

/// The size of `value` as data, as the size limits count it: one byte per
/// `u8`, four per `u32`, a string's UTF-8 length, one byte per case tag.
fn data_size(value: &Val) -> u64 {
    let all = |values: &[Val]| values.iter().map(data_size).sum::<u64>();
    let tagged = |payload: &Option<Box<Val>>| 1 + payload.as_deref().map_or(0, data_size);
    match value {
        Val::Bool(_) | Val::S8(_) | Val::U8(_) => 1,
        Val::S16(_) | Val::U16(_) => 2,
        Val::S32(_) | Val::U32(_) | Val::Float32(_) | Val::Char(_) | Val::Enum(_) => 4,
        Val::S64(_) | Val::U64(_) | Val::Float64(_) => 8,
        Val::String(s) => s.len() as u64,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => all(items),
        Val::Map(pairs) => pairs.iter().map(|(k, v)| data_size(k) + data_size(v)).sum(),
        Val::Record(fields) => fields.iter().map(|(_, v)| data_size(v)).sum(),
        Val::Variant(_, payload) | Val::Option(payload) => tagged(payload),
        Val::Result(Ok(payload) | Err(payload)) => tagged(payload),
        Val::Flags(names) => names.len().div_ceil(8).max(1) as u64,
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => 0,
    }
}

/// Whether values of `ty` can be copied from one plugin's store to another's:
/// anything but resources, streams, futures and error contexts.
pub(crate) fn crossable(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            false
        }
        Type::List(list) => crossable(&list.ty()),
        Type::FixedLengthList(list) => crossable(&list.ty()),
        Type::Map(map) => crossable(&map.key()) && crossable(&map.value()),
        Type::Record(record) => record.fields().all(|field| crossable(&field.ty)),
        Type::Tuple(tuple) => tuple.types().all(|ty| crossable(&ty)),
        Type::Variant(variant) => variant
            .cases()
            .all(|case| case.ty.as_ref().is_none_or(crossable)),
        Type::Option(option) => crossable(&option.ty()),
        Type::Result(result) => {
            result.ok().as_ref().is_none_or(crossable)
                && result.err().as_ref().is_none_or(crossable)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_sized_as_the_limits_count_it() {
        let image = Val::Record(vec![
            ("width".into(), Val::U32(2)),
            ("height".into(), Val::U32(1)),
            ("pixels".into(), Val::List(vec![Val::U8(1), Val::U8(2)])),
        ]);
        assert_eq!(data_size(&image), 4 + 4 + 2);
        let ok = Val::Result(Ok(Some(Box::new(image))));
        assert_eq!(data_size(&ok), 1 + 10);
        let err = Val::Result(Err(Some(Box::new(Val::String("no".into())))));
        assert_eq!(data_size(&err), 3);
        assert_eq!(data_size(&Val::Option(None)), 1);
    }
}
