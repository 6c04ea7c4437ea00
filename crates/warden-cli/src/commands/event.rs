//! `warden event`: deliver an event to every event-handler plugin and show
//! what each did, including events they emitted in turn.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use warden::Event;

use crate::args::{EventArgs, Global};
use crate::host;

pub fn run(global: &Global, args: &EventArgs) -> Result<ExitCode> {
    let host = host::host(global)?;
    let mut load_failures = Vec::new();
    for dir in warden::discover(&args.dir)? {
        if let Err(e) = host.load_blocking(&dir) {
            load_failures.push(format!(
                "{}: {}",
                dir.display(),
                e.to_string().lines().next().unwrap_or("")
            ));
        }
    }
    let emitted = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = emitted.clone();
    host.subscribe(move |e| {
        if e.source != "host" {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.clone());
        }
    })?;
    let event = Event::new(&args.event_type, args.payload.as_bytes(), "host");
    let outcomes = host.dispatch_event_blocking(&event)?;
    // Events the plugins emitted travel through the bus's queues.
    host.settle_events_blocking(std::time::Duration::from_secs(5))?;
    let emitted = emitted.lock().unwrap_or_else(|p| p.into_inner()).clone();
    host.shutdown_blocking()?;
    let failed = outcomes.iter().any(|(_, r)| r.is_err());
    if args.json {
        let doc = serde_json::json!({
            "delivered": outcomes.iter().map(|(name, r)| serde_json::json!({
                "plugin": name,
                "ok": r.is_ok(),
                "error": r.as_ref().err().map(|e| e.to_string()),
            })).collect::<Vec<_>>(),
            "emitted": emitted,
            "load_errors": load_failures,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for failure in &load_failures {
            eprintln!("warning: not loaded: {failure}");
        }
        if outcomes.is_empty() {
            println!(
                "no event-handler plugin subscribes to `{}`",
                args.event_type
            );
        }
        for (name, r) in &outcomes {
            match r {
                Ok(()) => println!("{name}: ok"),
                Err(e) => println!(
                    "{name}: error: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            }
        }
        for e in &emitted {
            println!(
                "emitted {} by {}: {}",
                e.event_type,
                e.source,
                String::from_utf8_lossy(&e.payload)
            );
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
