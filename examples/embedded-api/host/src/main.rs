//! Runs the embedded-API example: builds the `loyalty-discount` plugin,
//! offers it the application's orders through `myapp:api/orders`, and asks
//! it for the discount of an order.
//!
//! `cargo run --release -p embedded-api`

use std::path::Path;
use std::sync::Arc;

use embedded_api::{OrderBook, orders_extension};
use warden::{ProcessRequest, Warden};

fn main() -> anyhow::Result<()> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = warden_build::build_plugin(&example.join("plugin"), &example.join("dist"))?;

    let book = Arc::new(OrderBook::default());
    book.place("o-1", "ada", 12_000);
    book.place("o-2", "ada", 8_000);
    book.place("o-3", "ada", 20_000);

    let host = Warden::builder()
        .extension(orders_extension(book.clone()))
        .build()?;
    let plugin = host.load_blocking(&built.dir)?;
    let response = plugin.process_blocking(ProcessRequest::new("o-3"))?;
    println!("{}", String::from_utf8_lossy(&response.output));
    for note in book.notes("o-3") {
        println!("note on o-3: {note}");
    }
    Ok(())
}
