//! A wire's check of the provider's export, against stand-in providers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::{LinkCall, Provider, Providers, Served, Wire};
use crate::error::{Error, Result};
use crate::values::Signature;

/// A component exporting `x:y/z` with `f` over `ty`, a list or string type.
fn exporting(engine: &Engine, ty: &str) -> Component {
    let wat = format!(
        r#"(component
            (core module $m
                (memory (export "memory") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) unreachable)
                (func (export "f") (param i32 i32) (result i32) unreachable))
            (core instance $i (instantiate $m))
            (func $f (param "a" {ty}) (result {ty})
                (canon lift (core func $i "f") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
            (instance $x (export "f" (func $f)))
            (export "x:y/z" (instance $x)))"#
    );
    Component::new(engine, wat).expect("provider component")
}

/// A loaded build as links see it, counting how often its component is read.
struct StandIn {
    id: u64,
    component: Component,
    read: AtomicUsize,
}

impl Provider for StandIn {
    fn name(&self) -> &str {
        "provider"
    }
    fn describe(&self) -> (semver::Version, String) {
        (semver::Version::new(0, 1, 0), "minimal".into())
    }
    fn build_id(&self) -> u64 {
        self.id
    }
    fn component(&self) -> &Component {
        self.read.fetch_add(1, Ordering::SeqCst);
        &self.component
    }
    fn serve<'a>(&'a self, call: LinkCall<'a>) -> Served<'a> {
        Box::pin(async move { Err(call) })
    }
}

struct NoProviders;

impl Providers for NoProviders {
    fn find(&self, target: &str) -> Result<Box<dyn Provider>> {
        Err(Error::Host(format!("no `{target}` here")))
    }
}

/// The wire of a consumer importing `f` over `list<u8>` from `x:y/z`.
fn wire(engine: &Engine) -> Wire {
    let consumer = Component::new(
        engine,
        r#"(component (import "x:y/z" (instance
            (export "f" (func (param "a" (list u8)) (result (list u8)))))))"#,
    )
    .expect("consumer component");
    let types = consumer.component_type();
    let Some(ComponentItem::ComponentInstance(imported)) =
        types.get_import(engine, "x:y/z").map(|import| import.ty)
    else {
        panic!("the consumer imports `x:y/z`");
    };
    let Some(ComponentItem::ComponentFunc(ty)) = imported.exports(engine).next().map(|(_, f)| f.ty)
    else {
        panic!("`x:y/z` has `f`");
    };
    let plugins: Weak<dyn Providers> = Weak::<NoProviders>::new();
    Wire {
        consumer: "consumer".into(),
        interface: "x:y/z".into(),
        function: "f".into(),
        provider: "provider".into(),
        refused: None,
        signature: Signature::of(&ty),
        plugins,
        resolved: Mutex::new(None),
    }
}

#[test]
fn each_build_is_checked_at_its_first_call_and_remembered() {
    let engine = Engine::default();
    let wire = wire(&engine);
    let build = |id, ty| StandIn {
        id,
        component: exporting(&engine, ty),
        read: AtomicUsize::new(0),
    };
    let good = build(1, "(list u8)");
    for _ in 0..3 {
        wire.export_in(&good).expect("the same types");
    }
    assert_eq!(good.read.load(Ordering::SeqCst), 1, "checked once");

    // A new build whose `f` changed type is refused at each call.
    let changed = build(2, "string");
    for _ in 0..2 {
        match wire.export_in(&changed) {
            Err(Error::Linked { error, .. }) => {
                assert!(matches!(*error, Error::Unsupported { .. }), "{error:?}");
            }
            other => panic!("a changed type must be refused, got {other:?}"),
        }
    }
    assert_eq!(changed.read.load(Ordering::SeqCst), 2, "never remembered");

    // A later build with the same types is checked anew.
    let later = build(3, "(list u8)");
    wire.export_in(&later).expect("the same types");
    wire.export_in(&later).expect("the same types");
    assert_eq!(later.read.load(Ordering::SeqCst), 1);
}
