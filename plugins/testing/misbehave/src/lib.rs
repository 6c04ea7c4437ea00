//! `misbehave`: a processor plugin that misbehaves on request, as a fixture
//! for the host's sandboxing tests (traps, timeouts, memory limits, stdio
//! capture, host services, instance reuse). The host-free parts live in
//! [`behaviour`]; this file is the component glue and the host calls.
//!
//! The bindings only exist on wasm32, so a native `cargo test` builds just the
//! logic module and its tests.

pub mod behaviour;

#[cfg(target_arch = "wasm32")]
mod component {
    use crate::behaviour::{self, Op};

    wit_bindgen::generate!({ path: "../../../wit", world: "processor" });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::config::get_config;
    use warden::plugin::events::emit_event;
    use warden::plugin::logging::log;
    use warden::plugin::types::{
        LogLevel, PluginError, PluginStatus, ProcessRequest, ProcessResponse,
    };

    fn option<'a>(request: &'a ProcessRequest, key: &str) -> Option<&'a str> {
        request
            .options
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }

    /// A whole-number option, if given.
    fn whole(request: &ProcessRequest, key: &str) -> Result<Option<u64>, PluginError> {
        option(request, key)
            .map(|v| behaviour::parse_whole(key, v))
            .transpose()
            .map_err(PluginError::InvalidInput)
    }

    fn required<'a>(
        request: &'a ProcessRequest,
        key: &str,
        op: &str,
    ) -> Result<&'a str, PluginError> {
        option(request, key)
            .ok_or_else(|| PluginError::InvalidInput(format!("op `{op}` needs option `{key}`")))
    }

    /// What `stdout` and `log` write when the request has no `text` option.
    const DEFAULT_TEXT: &str = "misbehave says hello";

    fn text(output: impl Into<Vec<u8>>, items: u64) -> ProcessResponse {
        ProcessResponse {
            output: output.into(),
            content_type: "text/plain; charset=utf-8".to_string(),
            items_processed: items,
        }
    }

    struct Component;

    // Config `health = "failed"` makes get-status say failed, `"trap"`
    // makes it panic, and so does op `sick` for its instance: for the
    // host's health-check tests.
    warden_guest::plugin_lifecycle!(
        Component,
        initialize = |_| Ok(()),
        shutdown = || Ok(()),
        status = |status| match get_config("health").as_deref() {
            _ if behaviour::is_sick() => PluginStatus::Failed,
            Some("failed") => PluginStatus::Failed,
            Some("trap") => panic!("misbehave: get-status panics on purpose (health=trap)"),
            _ => status,
        }
    );

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            // Config `process = "panic"`: every call traps, whatever it asks
            // (a broken build, for the canary tests).
            if get_config("process").as_deref() == Some("panic") {
                panic!("misbehave: process panics on purpose (process=panic)");
            }
            let name = option(&request, "op").ok_or_else(|| {
                PluginError::InvalidInput(format!(
                    "missing option `op`: one of {}",
                    behaviour::OP_NAMES
                ))
            })?;
            let op = Op::parse(name).map_err(PluginError::Unsupported)?;
            match op {
                Op::Echo | Op::Sleep => {
                    if op == Op::Sleep {
                        let ms = whole(&request, "ms")?
                            .unwrap_or(100);
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                    }
                    let content_type = if request.content_type.is_empty() {
                        "application/octet-stream".to_string()
                    } else {
                        request.content_type.clone()
                    };
                    let items = request.input.len() as u64;
                    Ok(ProcessResponse {
                        output: request.input,
                        content_type,
                        items_processed: items,
                    })
                }
                Op::Panic => panic!("misbehave: panicking on purpose (op=panic)"),
                Op::Loop => hostile_attacks::spin_forever(),
                Op::Alloc => {
                    let limit = whole(&request, "mb")?;
                    let held = hostile_attacks::hog_memory(limit);
                    Ok(text(format!("allocated {held} MiB"), held))
                }
                Op::Stdout => {
                    let msg = option(&request, "text").unwrap_or(DEFAULT_TEXT);
                    println!("{msg}");
                    eprintln!("{msg}");
                    Ok(text("ok", 1))
                }
                Op::Log => {
                    log(
                        LogLevel::Info,
                        option(&request, "text").unwrap_or(DEFAULT_TEXT),
                    );
                    Ok(text("ok", 1))
                }
                Op::Count => Ok(text(behaviour::next_count().to_string(), 1)),
                Op::Leak => {
                    let kb = whole(&request, "kb")?
                        .unwrap_or(1024);
                    let kept = behaviour::leak(kb);
                    Ok(text(format!("keeping {kept} KiB"), 1))
                }
                Op::Stain => {
                    let kb = whole(&request, "kb")?
                        .unwrap_or(1024);
                    behaviour::stain(kb);
                    Ok(text("stained", 1))
                }
                Op::Stains => {
                    let size = core::arch::wasm32::memory_size(0) * 65536;
                    // SAFETY: the whole linear memory is readable, and
                    // nothing writes to it while the scan runs; the first
                    // 16 bytes are left out so that the pointer is not null.
                    let memory = unsafe { std::slice::from_raw_parts(16 as *const u8, size - 16) };
                    Ok(text(behaviour::stains(memory).to_string(), 1))
                }
                Op::Sick => {
                    behaviour::fall_sick();
                    Ok(text("sick", 1))
                }
                Op::Config => {
                    let key = required(&request, "key", "config")?;
                    Ok(text(
                        get_config(key).unwrap_or_else(|| "<none>".to_string()),
                        1,
                    ))
                }
                Op::Recurse => Ok(text(hostile_attacks::recurse(1).to_string(), 1)),
                Op::Probe => {
                    let addr = required(&request, "addr", "probe")?;
                    Ok(text(behaviour::probe(addr), 4))
                }
                Op::Emit => {
                    let event_type = required(&request, "type", "emit")?;
                    emit_event(event_type, &request.input);
                    Ok(text("ok", 1))
                }
            }
        }

        fn validate(_input: Vec<u8>) -> bool {
            // Any bytes will do: `echo` takes anything.
            true
        }
    }

    export!(Component);
}
