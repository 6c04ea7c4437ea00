//! The attacks of the hostile plugin suite, free of WebAssembly bindings so
//! that they build (and their harmless parts are tested) natively. Each
//! function tries one thing a sandboxed plugin must not be able to do and
//! reports what happened; the host's tests assert that every one of them is
//! contained.

use std::io::{Read, Write};

/// Spins until the host interrupts it (epoch deadline or fuel).
pub fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        // black_box keeps the loop a real loop that burns fuel and reaches
        // epoch checks.
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Recurses without bound. Its locals stay in wasm registers, not on the
/// shadow stack in linear memory, so what overflows is the wasm call stack
/// the host limits.
pub fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(n.wrapping_add(1)))).wrapping_add(1)
}

const MIB: usize = 1 << 20;

/// Allocates `limit` blocks of 1 MiB (forever when `None`), touching every
/// page, and returns how many MiB it held. Unbounded, it only ends when an
/// allocation is refused, which aborts the guest.
pub fn hog_memory(limit: Option<u64>) -> u64 {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut held: u64 = 0;
    while limit.is_none_or(|l| held < l) {
        let mut block = vec![0u8; MIB];
        for i in (0..MIB).step_by(4096) {
            block[i] = (held as u8).wrapping_add(1);
        }
        blocks.push(std::hint::black_box(block));
        held += 1;
    }
    std::hint::black_box(&blocks);
    held
}

/// Reads `path` and returns its size, or the error the sandbox gave.
pub fn read_file(path: &str) -> Result<String, String> {
    std::fs::read(path)
        .map(|bytes| format!("read {} bytes of {path}", bytes.len()))
        .map_err(|e| format!("read {path}: {e}"))
}

/// Writes to `path`, or returns the error the sandbox gave.
pub fn write_file(path: &str) -> Result<String, String> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(b"owned"))
        .map(|()| format!("wrote {path}"))
        .map_err(|e| format!("write {path}: {e}"))
}

/// Opens a TCP connection to `addr` and sends a line.
pub fn connect(addr: &str) -> Result<String, String> {
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(b"hello from a plugin\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    Ok(format!("connected to {addr}"))
}

/// Resolves `host:port` through the system resolver.
pub fn lookup(target: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<String> = target
        .to_socket_addrs()
        .map_err(|e| format!("lookup {target}: {e}"))?
        .map(|a| a.to_string())
        .collect();
    Ok(format!("{target} is {}", addrs.join(", ")))
}

/// Binds and listens on `addr`, waiting briefly for one client.
pub fn listen(addr: &str) -> Result<String, String> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    Ok(format!("listening on {local}"))
}

/// Every environment variable the plugin can see, one `NAME=value` a line.
pub fn environment() -> String {
    let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    vars.join("\n")
}

/// Sleeps inside a host call (a clock poll), where epoch interruption
/// cannot reach the guest.
pub fn sleep(seconds: u64) -> String {
    std::thread::sleep(std::time::Duration::from_secs(seconds));
    format!("slept {seconds}s")
}

/// Writes `bytes` of text to stdout in 64 KiB chunks.
pub fn flood_stdout(bytes: usize) -> usize {
    let chunk = "x".repeat(1023) + "\n";
    let mut out = std::io::stdout();
    let mut written = 0;
    while written < bytes {
        if out.write_all(chunk.as_bytes()).is_err() {
            break;
        }
        written += chunk.len();
    }
    written
}

/// `size` bytes of output.
pub fn huge_output(size: usize) -> Vec<u8> {
    vec![b'A'; size]
}

/// Reads the whole of stdin (which the host never connects).
pub fn read_stdin() -> String {
    let mut input = Vec::new();
    match std::io::stdin().read_to_end(&mut input) {
        Ok(n) => format!("stdin gave {n} bytes"),
        Err(e) => format!("stdin: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_attacks_return() {
        assert_eq!(hog_memory(Some(2)), 2);
        assert_eq!(huge_output(3), b"AAA");
        assert!(read_file("/definitely/not/here").is_err());
        assert!(connect("not an address").is_err());
    }
}
