//! A token bucket per connection: `rate` messages per second on average, bursts of `burst`.

use std::time::Duration;

/// One connection's allowance.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Tokens available, in thousandths of a message.
    milli: u64,
    last: Duration,
    /// Messages refused in a row.
    pub strikes: u32,
}

/// What the bucket says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate.
    Allow,
    /// Over it: refuse this message.
    Limit,
    /// Far over it (more refusals in a row than the burst): close the connection.
    Close,
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: u32, now: Duration) -> Self {
        Self { milli: u64::from(burst) * 1000, last: now, strikes: 0 }
    }

    /// Takes one message's token if there is one. `rate == 0` means no limit.
    pub fn take(&mut self, rate: u32, burst: u32, now: Duration) -> Verdict {
        if rate == 0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_sub(self.last);
        self.last = now;
        let refill = (elapsed.as_micros() as u64).saturating_mul(u64::from(rate)) / 1000;
        self.milli = self.milli.saturating_add(refill).min(u64::from(burst.max(1)) * 1000);
        if self.milli >= 1000 {
            self.milli -= 1000;
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes += 1;
        if self.strikes > burst.max(1) { Verdict::Close } else { Verdict::Limit }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_rate_then_close() {
        let t0 = Duration::from_secs(100);
        let mut b = Bucket::new(3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(10, 3, t0), Verdict::Allow);
        }
        assert_eq!(b.take(10, 3, t0), Verdict::Limit);
        // 100 ms at 10/s refills one.
        assert_eq!(b.take(10, 3, t0 + Duration::from_millis(100)), Verdict::Allow);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(10, 3, t1), Verdict::Limit);
        assert_eq!(b.take(10, 3, t1), Verdict::Limit);
        assert_eq!(b.take(10, 3, t1), Verdict::Limit);
        assert_eq!(b.take(10, 3, t1), Verdict::Close);
        // Off.
        assert_eq!(b.take(0, 0, t1), Verdict::Allow);
    }
}
