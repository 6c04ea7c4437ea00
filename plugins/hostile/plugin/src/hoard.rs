//! Attacks on what the host holds for the plugin rather than on the sandbox
//! itself: handles, buffers, sockets, header maps, log lines, events, the
//! key-value store, and mapped directories swapped under the host. Each
//! floods until the host refuses: a trap (`host-resource-limit`,
//! `not-granted`) or an error it reports as `contained: ...`.

use std::cell::RefCell;

use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::io::poll::Pollable;

use crate::component::warden::plugin::events::emit_event;
use crate::component::warden::plugin::logging::log;
use crate::component::warden::plugin::store;
use crate::component::warden::plugin::types::LogLevel;

thread_local! {
    /// Pollables kept from call to call by `grow-and-leak`.
    static LEAKED: RefCell<Vec<Pollable>> = const { RefCell::new(Vec::new()) };
}

/// Outbound requests with bodies written until they buffer no more, none
/// ever sent, until the host stops making them.
pub fn body_streams() -> String {
    use wasip2::http::types::{Fields, OutgoingRequest};
    let chunk = vec![b'x'; 1 << 20];
    let mut held = Vec::new();
    loop {
        let request = OutgoingRequest::new(Fields::new());
        let Ok(body) = request.body() else { break };
        let Ok(stream) = body.write() else { break };
        while let Ok(n) = stream.check_write() {
            if n == 0
                || stream
                    .write(&chunk[..(n as usize).min(chunk.len())])
                    .is_err()
            {
                break;
            }
        }
        held.push((request, body, stream));
    }
    format!("held {} requests", held.len())
}

/// Output streams, one more each time, kept.
pub fn table_flood() -> String {
    let mut held = Vec::new();
    loop {
        held.push(wasip2::cli::stdout::get_stdout());
    }
}

/// Timers, one more each time, kept.
pub fn pollable_flood() -> String {
    let mut held = Vec::new();
    loop {
        held.push(subscribe_duration(3_600_000_000_000));
    }
}

/// TCP sockets, each an open file on the host, kept.
pub fn socket_flood() -> Result<String, String> {
    use wasip2::sockets::network::IpAddressFamily;
    use wasip2::sockets::tcp_create_socket::create_tcp_socket;
    let mut held = Vec::new();
    loop {
        match create_tcp_socket(IpAddressFamily::Ipv4) {
            Ok(socket) => held.push(socket),
            Err(code) => return Err(format!("socket {}: {code:?}", held.len())),
        }
    }
}

/// Header maps filled until each refuses another field, kept.
pub fn header_fields_flood() -> String {
    use wasip2::http::types::Fields;
    let value = vec![b'v'; 1024];
    let mut held = Vec::new();
    loop {
        let fields = Fields::new();
        let mut n = 0;
        while fields.append(&format!("x-flood-{n}"), &value).is_ok() {
            n += 1;
        }
        held.push(fields);
    }
}

/// One log line of `bytes` bytes.
pub fn giant_log_line(bytes: usize) -> String {
    log(LogLevel::Info, &"x".repeat(bytes));
    format!("logged {bytes} bytes")
}

/// An event with a payload of `bytes` bytes, and one with a type as long.
pub fn giant_event(bytes: usize) -> String {
    emit_event("hostile.giant", &vec![b'e'; bytes]);
    emit_event(&"t".repeat(bytes.min(1 << 20)), b"tiny");
    "emitted".to_string()
}

/// Keys of 1 KiB values until the store refuses one, then a listing with a
/// prefix longer than any key.
pub fn kv_flood() -> Result<String, String> {
    let value = vec![b'k'; 1024];
    let mut refusals = Vec::new();
    for i in 0u64.. {
        if let Err(e) = store::set("", &format!("flood/{i:08}"), &value) {
            refusals.push(format!("set {i}: {e:?}"));
            break;
        }
    }
    match store::list_keys("", &"p".repeat(100_000), None, 1000) {
        Ok(page) => {
            return Ok(format!(
                "listed {} keys with a huge prefix",
                page.keys.len()
            ));
        }
        Err(e) => refusals.push(format!("list: {e:?}")),
    }
    Err(refusals.join("; "))
}

/// Increments one key for ever: every moment of the call is in the store
/// or between two of its calls.
pub fn kv_loop() -> String {
    loop {
        if let Err(e) = store::increment("", "loop", 1) {
            return format!("the store refused: {e:?}");
        }
    }
}

/// Rewrites one file in its data directory for ever: every moment of the
/// call is in a file system call or between two of them.
pub fn file_loop() -> String {
    loop {
        if let Err(e) = std::fs::write("/data/loop.txt", b"again") {
            return format!("the write failed: {e}");
        }
    }
}

/// `bytes` random bytes in one call: the host would have to make them all
/// at once.
pub fn random_flood(bytes: u64) -> String {
    let got = wasip2::random::random::get_random_bytes(bytes);
    format!("got {} random bytes", got.len())
}

/// `per_call` more timers each call, kept across calls.
pub fn grow_and_leak(per_call: usize) -> String {
    LEAKED.with(|leaked| {
        let mut leaked = leaked.borrow_mut();
        for _ in 0..per_call {
            leaked.push(subscribe_duration(3_600_000_000_000));
        }
        format!("holding {}", leaked.len())
    })
}

/// Step `swap`: replaces the directory mapped read-only at `/ro` (which is
/// `sub` inside the read-write `/rw`) with a symlink to `../outside`, for
/// the next instance to map. Step `read`: reads `/ro/secret.txt`.
pub fn symlink_swap(step: &str) -> Result<String, String> {
    match step {
        "swap" => {
            std::fs::rename("/rw/sub", "/rw/sub-old").map_err(|e| format!("rename: {e}"))?;
            let (rw, _) = wasip2::filesystem::preopens::get_directories()
                .into_iter()
                .find(|(_, path)| path == "/rw")
                .ok_or("no /rw")?;
            rw.symlink_at("../outside", "sub")
                .map_err(|e| format!("symlink: {e:?}"))?;
            Ok("swapped".into())
        }
        _ => match std::fs::read_to_string("/ro/secret.txt") {
            Ok(text) => Ok(text),
            Err(e) => Err(format!("contained: read /ro/secret.txt: {e}")),
        },
    }
}
