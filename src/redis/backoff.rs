//! How long a link waits before it dials Redis again: exponential, capped, with jitter from a
//! random number the caller supplies (so that the nodes that lost Redis together do not all
//! come back in the same millisecond, and so that tests can pick the number).

use core::time::Duration;

/// Exponential back-off with "equal jitter": the n-th wait in a row is half of
/// `min(max, first * 2^n)` plus a random part of the other half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The base of the first wait (its half is always waited).
    pub first: Duration,
    /// The most any wait can be.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts in a row (0: the link had been ready), given
    /// a uniformly random `random`.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let base = self.first.saturating_mul(1u32 << failures.min(20)).min(self.max);
        let half = base / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 { 0 } else { random % (spread + 1) };
        half + Duration::from_nanos(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff { first: Duration::from_millis(100), max: Duration::from_secs(1) };
        let ms = Duration::from_millis;
        assert_eq!(b.delay(0, 0), ms(50));
        assert_eq!(b.delay(0, u64::MAX), ms(50) + Duration::from_nanos(u64::MAX % 50_000_001));
        assert_eq!(b.delay(0, 50_000_000), ms(100));
        assert_eq!(b.delay(1, 0), ms(100));
        assert_eq!(b.delay(2, 0), ms(200));
        assert_eq!(b.delay(3, 0), ms(400));
        assert_eq!(b.delay(4, 0), ms(500), "capped at max");
        assert_eq!(b.delay(u32::MAX, 0), ms(500), "no overflow");
        for r in [1, 7, 1 << 40, u64::MAX - 3] {
            let d = b.delay(9, r);
            assert!(d >= ms(500) && d <= ms(1000), "{d:?}");
        }
        let zero = Backoff { first: Duration::ZERO, max: Duration::ZERO };
        assert_eq!(zero.delay(3, 12345), Duration::ZERO);
    }
}
