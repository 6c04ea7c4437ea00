//! Embedding Warden in an application: load a plugin, call it, react to the
//! events plugins emit.
//!
//! Build the plugins first (`cargo run --release -p warden-cli -- build plugins`),
//! then: `cargo run --release -p warden --example embed -- dist/text-transform "hello world"`

use warden::{ProcessRequest, Warden};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let plugin_dir = args.next().unwrap_or_else(|| "dist/text-transform".into());
    let input = args.next().unwrap_or_else(|| "hello from the host".into());

    let host = Warden::new()?;
    host.subscribe(|event| println!("event {} from {}", event.event_type, event.source))?;

    let plugin = host.load_blocking(&plugin_dir)?;
    let response = plugin.process_blocking(ProcessRequest::new(input).option("op", "title"))?;
    println!("{}", String::from_utf8_lossy(&response.output));
    Ok(())
}
