//! How a call finds its build: `name`, `name@1.2.0` or `name@^1.2` (a
//! semver range resolves to the highest loaded match), and the sticky
//! canary split of unqualified calls by routing key.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Canary shares are in basis points: 10,000 is all traffic.
pub(crate) const ALL: u32 = 10_000;

pub(crate) use crate::target::{VersionSpec, parse_target};

/// The bucket (0..10,000) of a routing key: the same key always lands in
/// the same bucket, so a caller keeps its version while the share stays.
pub(crate) fn bucket(key: &str) -> u32 {
    // FNV-1a, then a finalizer so that similar keys spread evenly.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (mix(h) % u64::from(ALL)) as u32
}

/// The bucket of a call without a routing key: successive calls walk the
/// buckets evenly, so the split holds over any run of calls.
pub(crate) fn next_unkeyed_bucket() -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (mix(NEXT.fetch_add(1, Ordering::Relaxed)) % u64::from(ALL)) as u32
}

/// SplitMix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A share in percent (0–100, fractions allowed) as basis points.
pub(crate) fn basis_points(plugin: &str, percent: f64) -> Result<u32> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(Error::Deploy {
            plugin: plugin.to_string(),
            message: format!("a canary share must be between 0 and 100 percent, not {percent}"),
        });
    }
    Ok((percent * 100.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_even() {
        assert_eq!(bucket("user-42"), bucket("user-42"));
        let mut per_tenth = [0u32; 10];
        for i in 0..10_000 {
            per_tenth[(bucket(&format!("user-{i}")) / 1_000) as usize] += 1;
        }
        for n in per_tenth {
            assert!((900..=1100).contains(&n), "{per_tenth:?}");
        }
        let mut unkeyed = [0u32; 10];
        for _ in 0..10_000 {
            unkeyed[(next_unkeyed_bucket() / 1_000) as usize] += 1;
        }
        for n in unkeyed {
            assert!((900..=1100).contains(&n), "{unkeyed:?}");
        }
    }

    #[test]
    fn shares() {
        assert_eq!(basis_points("p", 12.5).expect("ok"), 1250);
        assert_eq!(basis_points("p", 100.0).expect("ok"), ALL);
        assert!(basis_points("p", 101.0).is_err());
        assert!(basis_points("p", f64::NAN).is_err());
    }
}
