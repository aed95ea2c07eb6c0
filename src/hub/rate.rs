//! Token buckets: `rate` messages per second on average, bursts of `burst`; one per
//! connection, or one per client address in a bounded table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
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
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes > burst.max(1) { Verdict::Close } else { Verdict::Limit }
    }

    /// Whether the bucket is full again at `now`: then it is no different from a new one.
    fn full(&self, rate: u32, burst: u32, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_micros() as u64;
        let refill = elapsed.saturating_mul(u64::from(rate)) / 1000;
        self.milli.saturating_add(refill) >= u64::from(burst.max(1)) * 1000
    }
}

/// The most addresses an [`AddrBuckets`] table holds.
pub const MAX_ADDRESSES: usize = 16_384;

/// A bucket per client address (IPv6 by /64, what one host is usually given), at most
/// [`MAX_ADDRESSES`] of them.
#[derive(Debug)]
pub struct AddrBuckets {
    rate: u32,
    burst: u32,
    buckets: HashMap<IpAddr, Bucket>,
}

impl AddrBuckets {
    /// An empty table; `rate == 0` means no limit (and no table).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self { rate, burst, buckets: HashMap::new() }
    }

    /// Takes one token from `addr`'s bucket: 0 if there was one, else how many times in a row
    /// it was refused (1 the first time: the moment to log it).
    pub fn take(&mut self, addr: IpAddr, now: Duration) -> u32 {
        if self.rate == 0 {
            return 0;
        }
        let key = match addr.to_canonical() {
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & !u128::from(u64::MAX))),
            v4 => v4,
        };
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_ADDRESSES {
            self.trim(now);
        }
        let burst = self.burst;
        let bucket = self.buckets.entry(key).or_insert_with(|| Bucket::new(burst, now));
        match bucket.take(self.rate, burst, now) {
            Verdict::Allow => 0,
            Verdict::Limit | Verdict::Close => bucket.strikes,
        }
    }

    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Makes room when the table is full: drops the buckets that are full again (idle: a new
    /// one would be the same), then, if more than half the table is left, the least recently
    /// used down to half. O(n) once per MAX_ADDRESSES / 2 new addresses at least.
    fn trim(&mut self, now: Duration) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| !b.full(rate, burst, now));
        let excess = self.buckets.len().saturating_sub(MAX_ADDRESSES / 2);
        if excess == 0 {
            return;
        }
        let mut lasts: Vec<Duration> = self.buckets.values().map(|b| b.last).collect();
        let cut = *lasts.select_nth_unstable(excess - 1).1;
        let mut left = excess;
        self.buckets.retain(|_, b| {
            let drop = left > 0 && b.last <= cut;
            left -= usize::from(drop);
            !drop
        });
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

    #[test]
    fn addresses_share_a_bucket_per_host_and_the_table_stays_bounded() {
        let t0 = Duration::from_secs(100);
        let mut t = AddrBuckets::new(1, 2);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(t.take(v4, t0), 0);
        // The same host over an IPv6 socket.
        assert_eq!(t.take(mapped, t0), 0);
        assert_eq!(t.take(v4, t0), 1);
        assert_eq!(t.take(mapped, t0), 2);
        // One /64 is one host; another /64 is another.
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert_eq!(t.take(a, t0) + t.take(b, t0), 0);
        assert_eq!(t.take(a, t0), 1);
        assert_eq!(t.take(c, t0), 0);
        assert_eq!(t.len(), 3);
        // Many addresses, none idle: the table is cut to half, the oldest first.
        for i in 0..3 * MAX_ADDRESSES as u32 {
            let now = t0 + Duration::from_millis(u64::from(i / 1000));
            t.take(IpAddr::V4(std::net::Ipv4Addr::from_bits(i)), now);
            assert!(t.len() <= MAX_ADDRESSES);
        }
        // Idle ones (full again) are dropped first, all of them; busy ones stay.
        let later = t0 + Duration::from_secs(3600);
        let new = MAX_ADDRESSES - t.len() + 1;
        for i in 0..new as u32 {
            assert_eq!(t.take(IpAddr::V4(std::net::Ipv4Addr::from_bits(u32::MAX - i)), later), 0);
        }
        assert_eq!(t.len(), new);
        // Off: nothing is kept.
        let mut off = AddrBuckets::new(0, 1);
        assert_eq!(off.take(v4, t0) + off.take(v4, t0), 0);
        assert!(off.is_empty());
    }
}
