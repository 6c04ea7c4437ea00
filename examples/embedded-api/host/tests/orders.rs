//! The embedded-API example end to end: the plugin calls the application's
//! own interface, its notes are attributed to it, and a host without the
//! extension refuses the plugin, naming the missing import.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use embedded_api::{OrderBook, orders_extension};
use warden::{Error, PluginError, ProcessRequest, Warden};

fn plugin_dir() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("embedded-api");
        warden_build::build_plugin(&source, &out)
            .unwrap_or_else(|e| panic!("building the example plugin: {e}"))
            .dir
    })
}

fn book() -> Arc<OrderBook> {
    let book = Arc::new(OrderBook::default());
    book.place("o-1", "ada", 10_000);
    book.place("o-2", "bob", 5_000);
    book.place("o-3", "ada", 10_000);
    book.place("o-4", "ada", 10_000);
    book
}

#[test]
fn the_plugin_reads_and_annotates_the_applications_orders() {
    let book = book();
    let host = Warden::builder()
        .extension(orders_extension(book.clone()))
        .build()
        .expect("host");
    let plugin = host.load_blocking(plugin_dir()).expect("load");
    let first = plugin
        .process_blocking(ProcessRequest::new("o-1"))
        .expect("o-1");
    assert_eq!(
        String::from_utf8(first.output).expect("utf-8"),
        r#"{"order":"o-1","customer":"ada","discount_percent":0,"total_cents":10000}"#
    );
    let third = plugin
        .process_blocking(ProcessRequest::new("o-4"))
        .expect("o-4");
    assert_eq!(
        String::from_utf8(third.output).expect("utf-8"),
        r#"{"order":"o-4","customer":"ada","discount_percent":10,"total_cents":9000}"#
    );
    assert_eq!(
        book.notes("o-4"),
        ["loyalty-discount: loyalty discount 10%"]
    );
    match plugin.process_blocking(ProcessRequest::new("o-9")) {
        Err(Error::Plugin {
            error: PluginError::InvalidInput(m),
            ..
        }) => assert_eq!(m, "no order `o-9`"),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn a_host_without_the_extension_refuses_the_plugin() {
    let host = Warden::new().expect("host");
    match host.load_blocking(plugin_dir()) {
        Err(Error::UnsatisfiedImport { import, .. }) => {
            assert!(import.contains("myapp:api/orders"), "{import}")
        }
        other => panic!("expected an unsatisfied import, got {other:?}"),
    }
}

#[test]
fn two_extensions_with_one_state_type_are_refused() {
    let err = Warden::builder()
        .extension(orders_extension(book()))
        .extension(orders_extension(book()))
        .build()
        .expect_err("duplicate extension state");
    assert!(
        matches!(&err, Error::Host(m) if m.contains("OrdersApi")),
        "{err}"
    );
}
