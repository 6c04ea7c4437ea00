//! The fast path of a link: a function of one argument and one result,
//! each bytes or text (`list<u8>` or `string`; the result may also be a
//! `result` of either with a `string` error), crosses through wasmtime's
//! typed calls, which copy the data out of the consumer's memory and into
//! the provider's as blocks. Any other function crosses as dynamic values,
//! one `Val` of 40 bytes per list element, lifted and lowered one by one.
//!
//! Nothing else differs: the provider's call is the same [`LinkCall`] on
//! the same path, with its own instance, deadline, memory and size limits,
//! and wasmtime charges the copy to the host call's fuel (a byte per byte
//! here, where a `Val` costs 40).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{ComponentType, Func, Lift, LinkerInstance, Lower};
use wasmtime::{Store, StoreContextMut};

use super::{Args, Returned, Wire, caller, fail};
use crate::error::Error;
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
    arg: P,
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
    Plain(Kind),
    /// `result<_, string>`.
    OrError(Kind),
}

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

/// Defines `wire`'s function, of type `ty`, on the fast path when its type
/// allows; `false` when it does not, and nothing was defined.
pub(super) fn define(
    instance: &mut LinkerInstance<'_, PluginState>,
    wire: &Arc<Wire>,
    ty: &ComponentFunc,
) -> wasmtime::Result<bool> {
    let param = single(ty.params().map(|(_, ty)| ty)).and_then(|ty| kind(&ty));
    let result = single(ty.results()).and_then(|ty| returns(&ty));
    let (Some(param), Some(result)) = (param, result) else {
        return Ok(false);
    };
    match param {
        Kind::Bytes => define_returning::<Vec<u8>>(instance, wire, result)?,
        Kind::Text => define_returning::<String>(instance, wire, result)?,
    }
    Ok(true)
}

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
                let caller = caller(store.data_mut());
                let call = Typed::<P, R> {
                    arg,
                    result: PhantomData,
                };
                let mismatch = || {
                    wire.failed(Error::Host(
                        "the provider's result is not of the function's type".into(),
                    ))
                };
                let outcome = match wire.call(caller, Args::Typed(&call)).await {
                    Ok(Returned::Typed(value, _)) => value
                        .downcast::<R>()
                        .map(|value| (*value,))
                        .map_err(|_| mismatch()),
                    Ok(Returned::Values(_)) => Err(mismatch()),
                    Err(e) => Err(e),
                };
                outcome.map_err(|e| fail(store.data_mut(), e))
            })
        },
    )
}
