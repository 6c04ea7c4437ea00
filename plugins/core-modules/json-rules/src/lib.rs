//! `core-json-rules`: a core module (wasm32-unknown-unknown) speaking the
//! linear-memory JSON ABI: `allocate(len) -> ptr`, `execute(ptr, len) ->
//! ptr << 32 | len`, `meta() -> ptr << 32 | len`.
//!
//! `execute` scores an order (`{"amount": 120, "country": "NO"}`). An input
//! with `"lie"` makes it break the ABI on purpose, so the host's checks can
//! be tested: `"pointer"` (outside memory), `"length"` (past the end),
//! `"edge"` (a small read that starts inside memory and runs past its end),
//! `"huge"` (over the output cap), `"garbage"` (not JSON).

use serde_json::{Value, json};

/// What `execute` returns for `input`, or how it lies.
pub enum Answer {
    Json(Vec<u8>),
    Pack(u32, u32),
}

/// The first byte past the module's linear memory.
fn memory_end() -> u32 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) * 65536) as u32
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        u32::MAX
    }
}

/// Scores the order in `input`.
pub fn evaluate(input: &[u8]) -> Answer {
    let request: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => return Answer::Json(json!({"error": e.to_string()}).to_string().into_bytes()),
    };
    match request["lie"].as_str() {
        Some("pointer") => return Answer::Pack(0xFFFF_0000, 16),
        Some("length") => return Answer::Pack(16, u32::MAX - 8),
        Some("edge") => return Answer::Pack(memory_end().saturating_sub(8), 64),
        Some("huge") => return Answer::Json(vec![b' '; 1 << 20]),
        Some("garbage") => return Answer::Json(b"{not json".to_vec()),
        _ => {}
    }
    let amount = request["amount"].as_f64().unwrap_or(0.0);
    let country = request["country"].as_str().unwrap_or("");
    let mut reasons = Vec::new();
    if amount > 10_000.0 {
        reasons.push("amount over 10000");
    }
    if !matches!(country, "NO" | "SE" | "DK") {
        reasons.push("country outside the region");
    }
    let answer = json!({
        "approved": reasons.is_empty(),
        "reasons": reasons,
    });
    Answer::Json(answer.to_string().into_bytes())
}

/// The last buffer handed out or returned; kept alive until the next call.
static mut BUFFER: Vec<u8> = Vec::new();

fn hand_out(bytes: Vec<u8>) -> i64 {
    // SAFETY: the module is single-threaded; the host reads the buffer
    // before calling again.
    unsafe {
        BUFFER = bytes;
        let buffer = &*std::ptr::addr_of!(BUFFER);
        ((buffer.as_ptr() as i64) << 32) | buffer.len() as i64
    }
}

/// A buffer of `len` bytes for the host to write the input into.
#[unsafe(no_mangle)]
pub extern "C" fn allocate(len: i32) -> i32 {
    (hand_out(vec![0; len.max(0) as usize]) >> 32) as i32
}

/// Runs the rules on the `len` bytes at `ptr`.
#[unsafe(no_mangle)]
pub extern "C" fn execute(ptr: i32, len: i32) -> i64 {
    // SAFETY: the host wrote `len` bytes at `ptr`, a buffer from `allocate`.
    let input = unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len.max(0) as usize) };
    match evaluate(input) {
        Answer::Json(bytes) => hand_out(bytes),
        Answer::Pack(ptr, len) => ((ptr as i64) << 32) | len as i64,
    }
}

/// The module's metadata.
#[unsafe(no_mangle)]
pub extern "C" fn meta() -> i64 {
    let meta = json!({"name": "core-json-rules", "version": "0.1.0", "abi": "json"});
    hand_out(meta.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_scored() {
        let Answer::Json(out) = evaluate(br#"{"amount": 20000, "country": "US"}"#) else {
            panic!("expected JSON");
        };
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["approved"], false);
        assert_eq!(v["reasons"].as_array().unwrap().len(), 2);
    }
}
