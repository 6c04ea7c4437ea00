//! `core-math`: a plain core module (wasm32-unknown-unknown) with numeric
//! exports, called by name: `warden call core-math --export add --args 3 4`.
//! `spin` and `hog` misbehave on purpose, for the sandbox tests.

/// The sum of `a` and `b`, wrapping.
#[unsafe(no_mangle)]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// A risk score for a payment of `amount` cents: 0 (low) to 3 (refuse).
#[unsafe(no_mangle)]
pub extern "C" fn risk_check(amount: i64) -> i32 {
    match amount {
        i64::MIN..=0 => 3,
        1..=100_000 => 0,
        100_001..=1_000_000 => 1,
        1_000_001..=10_000_000 => 2,
        _ => 3,
    }
}

/// Never returns: the host's deadline must stop it.
#[unsafe(no_mangle)]
pub extern "C" fn spin() -> i32 {
    let mut n: i32 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Grows memory by `mib` MiB: the host's memory limit must refuse it.
#[unsafe(no_mangle)]
pub extern "C" fn hog(mib: i32) -> i32 {
    let buffer = vec![1u8; (mib.max(0) as usize) << 20];
    std::hint::black_box(&buffer).len() as i32 >> 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_risk() {
        assert_eq!(add(3, 4), 7);
        assert_eq!(add(i32::MAX, 1), i32::MIN);
        assert_eq!(risk_check(50_000), 0);
        assert_eq!(risk_check(5_000_000), 2);
        assert_eq!(risk_check(-1), 3);
    }
}
