//! Content digests: what identifies a plugin's bytes in the compile cache
//! and in its signature.

use sha2::{Digest as _, Sha256};

/// The sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
