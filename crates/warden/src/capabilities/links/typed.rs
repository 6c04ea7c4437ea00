//! The fast path of a link: a function of one argument and one result,
//! each bytes or text (`list<u8>` or `string`; the result may also be a
//! `result` of either with a `string` error), crosses through wasmtime's
//! typed calls, which copy the data out of the consumer's memory and into
//! the provider's as blocks. Any other function crosses as dynamic values,
//! one `Val` of 40 bytes per list element, lifted and lowered one by one.
//!
//! Nothing else differs: the provider's call is the same
//! [`super::LinkCall`] on the same path, with its own instance, deadline,
//! memory and size limits, and wasmtime charges what it copies out of a
//! guest to the host call's fuel: a byte of guest memory here, where a
//! `Val` costs 40. (Text is checked and, if the guest chose another string
//! encoding, converted on the way, as on the value path.)

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{ComponentType, Func, Lift, LinkerInstance, Lower};
use wasmtime::{Store, StoreContextMut};

use super::{Args, Returned, Wire};
use crate::state::PluginState;

/// A Rust type the fast path carries a value of.
trait Carried: ComponentType + Lift + Lower + Send + Sync + 'static {
    /// The value's size as data, as the size limits count it (as
    /// `values::size_of_values` counts the same value).
    fn data_size(&self) -> usize;
}

impl Carried for Vec<u8> {
    fn data_size(&self) -> usize {
        self.len()
    }
}

impl Carried for String {
    fn data_size(&self) -> usize {
        self.len()
    }
}

impl<T: Carried> Carried for Result<T, String> {
    fn data_size(&self) -> usize {
        1 + match self {
            Ok(value) => value.data_size(),
            Err(message) => message.len(),
        }
    }
}

/// A fast-path call's argument, and how the provider's instance makes the
/// call with it.
pub(crate) trait TypedCall: Send + Sync {
    /// The argument's size as data.
    fn data_size(&self) -> usize;
    /// Calls `func`, the provider's export, in `store`.
    fn call<'a>(
        &'a self,
        store: &'a mut Store<PluginState>,
        func: Func,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Returned>> + Send + 'a>>;
}

/// The argument of a function from `P` to `R`.
struct Typed<P, R> {
    /// The consumer's argument, lifted out of its memory.
    arg: P,
    /// The result type, which the provider's call is made for.
    result: PhantomData<fn() -> R>,
}

impl<P: Carried, R: Carried> TypedCall for Typed<P, R> {
    fn data_size(&self) -> usize {
        self.arg.data_size()
    }

    fn call<'a>(
        &'a self,
        store: &'a mut Store<PluginState>,
        func: Func,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Returned>> + Send + 'a>> {
        Box::pin(async move {
            // Cannot fail: the export was checked against the import's type
            // (`Wire::export_of`), which chose `P` and `R`.
            let typed = func.typed::<(&P,), (R,)>(&*store)?;
            let (value,) = typed.call_async(&mut *store, (&self.arg,)).await?;
            let size = value.data_size();
            Ok(Returned::Typed(Box::new(value), size))
        })
    }
}

/// What the fast path carries: bytes or text.
#[derive(Clone, Copy)]
enum Kind {
    Bytes,
    Text,
}

/// What `ty` is as the fast path carries it, if it can.
fn kind(ty: &Type) -> Option<Kind> {
    match ty {
        Type::String => Some(Kind::Text),
        Type::List(list) if matches!(list.ty(), Type::U8) => Some(Kind::Bytes),
        _ => None,
    }
}

/// What a fast-path function returns.
#[derive(Clone, Copy)]
enum Returns {
    /// Bytes or text.
    Plain(Kind),
    /// `result<_, string>`.
    OrError(Kind),
}

/// What a function returning `ty` returns on the fast path, if it can.
fn returns(ty: &Type) -> Option<Returns> {
    match ty {
        Type::Result(result) if matches!(result.err(), Some(Type::String)) => {
            result.ok().as_ref().and_then(kind).map(Returns::OrError)
        }
        other => kind(other).map(Returns::Plain),
    }
}

/// The only item of `items`, if it has exactly one.
fn single<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// The argument and result of a function of type `ty`, if it takes the
/// fast path.
fn shape(ty: &ComponentFunc) -> Option<(Kind, Returns)> {
    let param = single(ty.params().map(|(_, ty)| ty)).and_then(|ty| kind(&ty))?;
    let result = single(ty.results()).and_then(|ty| returns(&ty))?;
    Some((param, result))
}

/// Defines `wire`'s function, of type `ty`, on the fast path when its type
/// allows; `false` when it does not, and nothing was defined.
pub(super) fn define(
    instance: &mut LinkerInstance<'_, PluginState>,
    wire: &Arc<Wire>,
    ty: &ComponentFunc,
) -> wasmtime::Result<bool> {
    let Some((param, result)) = shape(ty) else {
        return Ok(false);
    };
    match param {
        Kind::Bytes => define_returning::<Vec<u8>>(instance, wire, result)?,
        Kind::Text => define_returning::<String>(instance, wire, result)?,
    }
    Ok(true)
}

/// Defines `wire`'s function from `P` to what `result` says.
fn define_returning<P: Carried>(
    instance: &mut LinkerInstance<'_, PluginState>,
    wire: &Arc<Wire>,
    result: Returns,
) -> wasmtime::Result<()> {
    match result {
        Returns::Plain(Kind::Bytes) => wrap::<P, Vec<u8>>(instance, wire),
        Returns::Plain(Kind::Text) => wrap::<P, String>(instance, wire),
        Returns::OrError(Kind::Bytes) => wrap::<P, Result<Vec<u8>, String>>(instance, wire),
        Returns::OrError(Kind::Text) => wrap::<P, Result<String, String>>(instance, wire),
    }
}

/// Defines `wire`'s function as a typed host function from `P` to `R`.
fn wrap<P: Carried, R: Carried>(
    instance: &mut LinkerInstance<'_, PluginState>,
    wire: &Arc<Wire>,
) -> wasmtime::Result<()> {
    let wire = wire.clone();
    let function = wire.function.clone();
    instance.func_wrap_async(
        &function,
        move |mut store: StoreContextMut<'_, PluginState>, (arg,): (P,)| {
            let wire = wire.clone();
            Box::new(async move {
                let call = Typed::<P, R> {
                    arg,
                    result: PhantomData,
                };
                let value = wire
                    .run(
                        store.data_mut(),
                        Args::Typed(&call),
                        |returned| match returned {
                            Returned::Typed(value, _) => value.downcast::<R>().ok(),
                            Returned::Values(_) => None,
                        },
                    )
                    .await?;
                Ok((*value,))
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Val};

    use super::*;
    use crate::values::size_of_values;

    #[test]
    fn one_argument_and_one_result_of_bytes_or_text_take_the_fast_path() {
        let engine = wasmtime::Engine::default();
        let component = Component::new(
            &engine,
            r#"(component
                (import "bytes" (func (param "a" (list u8)) (result (list u8))))
                (import "text" (func (param "a" string) (result string)))
                (import "bytes-or-error" (func (param "a" string) (result (result (list u8) (error string)))))
                (import "text-or-error" (func (param "a" (list u8)) (result (result string (error string)))))
                (import "signed" (func (param "a" (list s8)) (result (list u8))))
                (import "two" (func (param "a" string) (param "b" string) (result string)))
                (import "nothing" (func (param "a" string)))
                (import "none" (func (result string)))
                (import "bytes-error" (func (param "a" string) (result (result string (error (list u8))))))
                (import "no-ok" (func (param "a" string) (result (result (error string)))))
                (import "record" (func (param "a" (list u8)) (result (tuple u32 (list u8)))))
            )"#,
        )
        .expect("component");
        let types = component.component_type();
        let mut fast = Vec::new();
        for (name, item) in types.imports(&engine) {
            let ComponentItem::ComponentFunc(ty) = item.ty else {
                panic!("`{name}` is not a function");
            };
            if shape(&ty).is_some() {
                fast.push(name);
            }
        }
        fast.sort_unstable();
        assert_eq!(fast, ["bytes", "bytes-or-error", "text", "text-or-error"]);
    }

    #[test]
    fn sizes_count_as_the_value_path_counts_them() {
        let text = "grüße".to_string();
        let boxed = |value| Some(Box::new(value));
        let cases = [
            (
                vec![1u8, 2, 3].data_size(),
                Val::List(vec![Val::U8(1), Val::U8(2), Val::U8(3)]),
            ),
            (text.data_size(), Val::String(text.clone())),
            (
                Ok::<Vec<u8>, String>(Vec::new()).data_size(),
                Val::Result(Ok(boxed(Val::List(Vec::new())))),
            ),
            (
                Err::<String, String>(text.clone()).data_size(),
                Val::Result(Err(boxed(Val::String(text.clone())))),
            ),
        ];
        for (fast, value) in cases {
            assert_eq!(
                fast,
                size_of_values(std::slice::from_ref(&value)),
                "{value:?}"
            );
        }
    }
}
