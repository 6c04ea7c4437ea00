//! `core-wasi-reader`: a WASI preview1 core module (wasm32-wasip1) on the
//! JSON ABI. `{"read": "/input/x.txt"}` answers the file's text,
//! `{"env": "NAME"}` the variable, `{"connect": "127.0.0.1:80"}` tries a
//! socket; failures come back as `{"error": ...}`. What it can reach is what
//! the sandbox maps: its permissions, granted by the operator.

use serde_json::{Value, json};

/// Answers one request.
pub fn answer(input: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => return json!({"error": e.to_string()}),
    };
    if let Some(path) = request["read"].as_str() {
        return match std::fs::read_to_string(path) {
            Ok(text) => json!({"content": text}),
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    if let Some(name) = request["env"].as_str() {
        return json!({"value": std::env::var(name).ok()});
    }
    if let Some(addr) = request["connect"].as_str() {
        return match std::net::TcpStream::connect(addr) {
            Ok(_) => json!({"connected": true}),
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    json!({"error": "expected read, env or connect"})
}

static mut BUFFER: Vec<u8> = Vec::new();

fn hand_out(bytes: Vec<u8>) -> i64 {
    // SAFETY: single-threaded; the host reads the buffer before the next call.
    unsafe {
        BUFFER = bytes;
        let buffer = &*std::ptr::addr_of!(BUFFER);
        ((buffer.as_ptr() as i64) << 32) | buffer.len() as i64
    }
}

/// A buffer of `len` bytes for the input.
#[unsafe(no_mangle)]
pub extern "C" fn allocate(len: i32) -> i32 {
    (hand_out(vec![0; len.max(0) as usize]) >> 32) as i32
}

/// Answers the request of `len` bytes at `ptr`.
#[unsafe(no_mangle)]
pub extern "C" fn execute(ptr: i32, len: i32) -> i64 {
    // SAFETY: the host wrote `len` bytes at `ptr`, a buffer from `allocate`.
    let input = unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len.max(0) as usize) };
    hand_out(answer(input).to_string().into_bytes())
}

/// The module's metadata.
#[unsafe(no_mangle)]
pub extern "C" fn meta() -> i64 {
    hand_out(json!({"name": "core-wasi-reader", "version": "0.1.0"}).to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_requests_are_errors() {
        assert!(answer(b"{}")["error"].is_string());
        assert_eq!(answer(br#"{"env": "WARDEN_SURELY_UNSET"}"#)["value"], Value::Null);
    }
}
