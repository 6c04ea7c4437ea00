//! The bad behaviours of the `misbehave` test fixture that need no host: the
//! operation names, the sandbox probe and the call counter (the endless
//! loop, the memory hog and the recursion are the hostile suite's).
//!
//! Free of WebAssembly bindings like the other plugins' logic files, so it
//! builds and is unit-tested natively. Depends on `std` only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static SICK: AtomicBool = AtomicBool::new(false);

/// Marks this instance sick (op `sick`): its get-status says failed.
pub fn fall_sick() {
    SICK.store(true, Ordering::SeqCst);
}

/// Whether op `sick` ran in this instance.
pub fn is_sick() -> bool {
    SICK.load(Ordering::SeqCst)
}

/// The `op` option values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Echo,
    Panic,
    Loop,
    Alloc,
    Stdout,
    Log,
    Count,
    Config,
    Emit,
    Recurse,
    Probe,
    /// Echo after sleeping `ms` milliseconds (a slow call).
    Sleep,
    /// From now on this instance's get-status says `failed`.
    Sick,
    /// Keeps `kb` KiB (default 1024) of linear memory for good: a runtime
    /// that grows call after call.
    Leak,
    /// Keeps `kb` KiB (default 1024) filled with [`stain_marker`].
    Stain,
    /// Counts the stains anywhere in this instance's linear memory.
    Stains,
}

/// The accepted `op` values, for error messages.
pub const OP_NAMES: &str =
    "echo, panic, loop, alloc, stdout, log, count, config, emit, recurse, probe, sleep, sick, leak, stain, stains";

impl Op {
    /// Parses an `op` option value; the error is the message for `unsupported`.
    pub fn parse(name: &str) -> Result<Op, String> {
        Ok(match name {
            "echo" => Op::Echo,
            "panic" => Op::Panic,
            "loop" => Op::Loop,
            "alloc" => Op::Alloc,
            "stdout" => Op::Stdout,
            "log" => Op::Log,
            "count" => Op::Count,
            "config" => Op::Config,
            "emit" => Op::Emit,
            "recurse" => Op::Recurse,
            "probe" => Op::Probe,
            "sleep" => Op::Sleep,
            "sick" => Op::Sick,
            "leak" => Op::Leak,
            "stain" => Op::Stain,
            "stains" => Op::Stains,
            other => return Err(format!("unknown op `{other}`: expected one of {OP_NAMES}")),
        })
    }
}

/// Tries to reach what a sandboxed plugin must not see: a host file, the
/// root directory, environment variables, and a TCP connection to `addr`.
/// Returns one `key=outcome` line per attempt.
pub fn probe(addr: &str) -> String {
    let outcome = |r: Result<String, String>| match r {
        Ok(v) => format!("ok {v}"),
        Err(e) => format!("denied ({e})"),
    };
    let file = std::fs::read("/etc/passwd")
        .map(|b| format!("{} bytes", b.len()))
        .map_err(|e| e.to_string());
    let dir = std::fs::read_dir("/")
        .map(|d| format!("{} entries", d.count()))
        .map_err(|e| e.to_string());
    let env = std::env::vars().count();
    let connect = std::net::TcpStream::connect(addr)
        .map(|_| "connected".to_string())
        .map_err(|e| e.to_string());
    format!(
        "file={}\ndir={}\nenv={env}\nconnect={}",
        outcome(file),
        outcome(dir),
        outcome(connect)
    )
}

/// Parses a whole-number option (`mb`, `ms`).
pub fn parse_whole(option: &str, value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|e| format!("option `{option}` must be a whole number, got `{value}`: {e}"))
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Keeps `kb` KiB of memory, touched so that it is really used, until the
/// instance is gone; returns how many KiB this instance now keeps.
pub fn leak(kb: u64) -> u64 {
    static KEPT: AtomicU64 = AtomicU64::new(0);
    let block = vec![1u8; (kb as usize) << 10];
    std::hint::black_box(&block);
    std::mem::forget(block);
    KEPT.fetch_add(kb, Ordering::Relaxed) + kb
}

/// What op `stain` fills memory with. The binary holds it inverted, so the
/// only copies in memory are the ones a stain (or a scan's needle) made.
pub fn stain_marker() -> [u8; 16] {
    b"\xa8\xbe\xad\xbb\xba\xb1\xd2\xac\xab\xbe\xb6\xb1\xd2\xcb\xcd\xde".map(|b| !b)
}

/// Keeps `kb` KiB filled with the marker until the instance is gone.
pub fn stain(kb: u64) {
    let block = stain_marker().repeat((kb as usize) << 6);
    std::hint::black_box(&block);
    std::mem::forget(block);
}

/// The 16-byte-aligned blocks of `memory` (which starts 16-byte aligned)
/// that hold the marker and are followed by another: a stain, not the one
/// needle a scan keeps.
pub fn stains(memory: &[u8]) -> usize {
    let marker = stain_marker();
    let blocks = memory.chunks_exact(16);
    blocks
        .clone()
        .zip(blocks.skip(1))
        .filter(|(block, next)| *block == marker && *next == marker)
        .count()
}

/// Increments and returns the per-instance call counter: a fresh instance
/// starts again from 1, which lets a test tell whether it was reused.
pub fn next_count() -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_op() {
        for name in OP_NAMES.split(", ") {
            assert!(Op::parse(name).is_ok(), "{name}");
        }
        assert!(Op::parse("explode").is_err_and(|m| m.contains("explode")));
    }

    #[test]
    fn stains_are_counted_and_a_lone_marker_is_not() {
        assert_eq!(&stain_marker(), b"WARDEN-STAIN-42!");
        let mut memory = vec![0u8; 16];
        memory.extend(stain_marker().repeat(4));
        memory.extend([0u8; 16]);
        memory.extend(stain_marker());
        assert_eq!(stains(&memory), 3);
    }

    #[test]
    fn mb_option() {
        assert_eq!(parse_whole("mb", "16"), Ok(16));
        assert!(parse_whole("mb", "lots").is_err_and(|m| m.contains("`mb`")));
    }

    #[test]
    fn counter_increases() {
        let a = next_count();
        let b = next_count();
        assert!(b > a);
    }
}
