//! `hostile`: a processor plugin that attacks its host. Which attack is set
//! by the `attack` config key of its manifest (each directory of
//! `plugins/hostile/suite` is one attack); what to aim at comes from the
//! `target` config key (comma-separated) and `target` request options.
//!
//! An attack that every target contains ends the call with a plugin error
//! `internal: contained: ...` listing what the sandbox answered; any success
//! is returned as output, which the host's tests treat as a breach. The
//! attacks on the sandbox live in the `hostile-attacks` crate; those on
//! what the host holds for the plugin (raw WASI, wasm only) in `hoard.rs`.

#[cfg(target_arch = "wasm32")]
mod hoard;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::sync::OnceLock;

    use hostile_attacks as attacks;

    wit_bindgen::generate!({ path: "../../../wit", world: "processor" });

    use crate::hoard;

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::logging::log;
    use warden::plugin::types::{KeyValue, LogLevel, PluginError, ProcessRequest, ProcessResponse};

    /// The manifest's configuration, kept by `initialize`.
    static CONFIG: OnceLock<Vec<KeyValue>> = OnceLock::new();

    fn config(key: &str) -> Option<&'static str> {
        CONFIG
            .get()?
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }

    fn number(key: &str, default: u64) -> u64 {
        config(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    fn attack() -> &'static str {
        config("attack").unwrap_or("none")
    }

    fn initialize(config: Vec<KeyValue>) -> Result<(), PluginError> {
        let _ = CONFIG.set(config);
        if attack() == "panic-in-init" {
            panic!("hostile: panicking in initialize");
        }
        Ok(())
    }

    fn shutdown() -> Result<(), PluginError> {
        if attack() == "trap-in-shutdown" {
            core::arch::wasm32::unreachable();
        }
        Ok(())
    }

    struct Component;

    warden_guest::plugin_lifecycle!(Component, initialize = initialize, shutdown = shutdown);

    fn text(output: impl Into<Vec<u8>>) -> ProcessResponse {
        ProcessResponse {
            output: output.into(),
            content_type: "text/plain; charset=utf-8".to_string(),
            items_processed: 1,
        }
    }

    /// Every target from the manifest and the request.
    fn targets(request: &ProcessRequest) -> Vec<String> {
        let from_config = config("target")
            .into_iter()
            .flat_map(|t| t.split(','))
            .map(|t| t.trim().to_string());
        let from_request = request
            .options
            .iter()
            .filter(|kv| kv.key == "target")
            .map(|kv| kv.value.clone());
        from_config
            .chain(from_request)
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Runs `attempt` on every target: output if any got through, else the
    /// list of refusals as the error.
    fn try_each(
        targets: &[String],
        attempt: impl Fn(&str) -> Result<String, String>,
    ) -> Result<ProcessResponse, PluginError> {
        if targets.is_empty() {
            return Err(PluginError::InvalidInput("no `target` to attack".into()));
        }
        let (breaches, refusals): (Vec<_>, Vec<_>) =
            targets.iter().map(|t| attempt(t)).partition(Result::is_ok);
        if breaches.is_empty() {
            let refusals: Vec<String> = refusals.into_iter().filter_map(Result::err).collect();
            Err(PluginError::Internal(format!(
                "contained: {}",
                refusals.join("; ")
            )))
        } else {
            let breaches: Vec<String> = breaches.into_iter().filter_map(Result::ok).collect();
            Ok(text(breaches.join("\n")))
        }
    }

    /// Opens `path` through every preopened directory with raw WASI calls,
    /// bypassing the C library's own path checks.
    fn raw_open(path: &str) -> Result<String, String> {
        use wasip2::filesystem::preopens::get_directories;
        use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
        let dirs = get_directories();
        if dirs.is_empty() {
            return Err(format!("raw open {path}: no directory is mapped"));
        }
        let mut errors = Vec::new();
        for (dir, guest) in dirs {
            match dir.open_at(
                PathFlags::SYMLINK_FOLLOW,
                path,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            ) {
                Ok(_) => return Ok(format!("raw open {path} via {guest}: opened")),
                Err(code) => errors.push(format!("raw open {path} via {guest}: {code:?}")),
            }
        }
        Err(errors.join(", "))
    }

    impl ProcessorGuest for Component {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let targets = targets(&request);
            match attack() {
                "none" | "trap-in-shutdown" => Ok(text(request.input)),
                "loop" => attacks::spin_forever(),
                "memory-bomb" => Ok(text(attacks::hog_memory(None).to_string())),
                "recursion" => Ok(text(attacks::recurse(1).to_string())),
                "read-file" => try_each(&targets, attacks::read_file),
                "raw-open" => try_each(&targets, raw_open),
                "write-file" => try_each(&targets, attacks::write_file),
                "connect" => try_each(&targets, attacks::connect),
                "lookup" => try_each(&targets, attacks::lookup),
                "listen" => try_each(&targets, attacks::listen),
                "env" => Ok(text(attacks::environment())),
                "stdin" => Ok(text(attacks::read_stdin())),
                "sleep" => Ok(text(attacks::sleep(number("seconds", 60)))),
                "huge-output" => Ok(text(attacks::huge_output(
                    number("bytes", 64 << 20) as usize
                ))),
                "stdout-flood" => {
                    let written = attacks::flood_stdout(number("bytes", 16 << 20) as usize);
                    Ok(text(format!("wrote {written} bytes to stdout")))
                }
                "log-flood" => {
                    let lines = number("lines", 100_000);
                    for i in 0..lines {
                        log(
                            LogLevel::Info,
                            &format!("flood line {i} {}", "x".repeat(100)),
                        );
                    }
                    Ok(text(format!("logged {lines} lines")))
                }
                "body-streams" => Ok(text(hoard::body_streams())),
                "table-flood" => Ok(text(hoard::table_flood())),
                "pollable-flood" => Ok(text(hoard::pollable_flood())),
                "socket-flood" => hoard::socket_flood()
                    .map(text)
                    .map_err(|e| PluginError::Internal(format!("contained: {e}"))),
                "header-fields-flood" => Ok(text(hoard::header_fields_flood())),
                "giant-log-line" => Ok(text(hoard::giant_log_line(
                    number("bytes", 64 << 20) as usize
                ))),
                "giant-event" => Ok(text(hoard::giant_event(number("bytes", 4 << 20) as usize))),
                "kv-flood" => hoard::kv_flood()
                    .map(text)
                    .map_err(|e| PluginError::Internal(format!("contained: {e}"))),
                "kv-loop" => Ok(text(hoard::kv_loop())),
                "file-loop" => Ok(text(hoard::file_loop())),
                "random-flood" => Ok(text(hoard::random_flood(number("bytes", 1 << 30)))),
                "grow-and-leak" => Ok(text(hoard::grow_and_leak(number("per-call", 40) as usize))),
                "symlink-swap" => {
                    let step = request
                        .options
                        .iter()
                        .find(|kv| kv.key == "step")
                        .map_or("read", |kv| kv.value.as_str());
                    hoard::symlink_swap(step)
                        .map(text)
                        .map_err(PluginError::Internal)
                }
                "busy" => {
                    let until = std::time::Instant::now()
                        + std::time::Duration::from_millis(number("ms", 300));
                    while std::time::Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    Ok(text("done"))
                }
                other => Err(PluginError::Unsupported(format!(
                    "unknown attack `{other}`"
                ))),
            }
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(Component);
}
