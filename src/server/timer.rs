//! A hashed timing wheel: O(1) arm and cancel, expiry work proportional to elapsed ticks.
//!
//! The event loop keeps one armed deadline per connection (the earliest of what the connection's
//! `poll_timeout` reports) and re-arms it when it changes, so arm and cancel must be cheap and
//! must not allocate once the wheel is warm.
//!
//! Time is a [`Duration`] since an epoch the caller picks, cut into ticks. A timer for tick `t`
//! sits in bucket `t mod buckets`, with its absolute tick stored alongside, so deadlines more than
//! one revolution away share a bucket with nearer ones and simply stay put when the bucket is
//! swept early. Two bitmaps, one bit per bucket, say which buckets hold any timer and which hold a
//! timer due within the current revolution; [`TimerWheel::next_expiry`] finds the next one with
//! `trailing_zeros`, a word (64 buckets) at a time.
//!
//! # Precision
//!
//! [`TimerWheel::expire`] fires a timer exactly when its deadline is at most `now`: never early,
//! so a connection's own `handle_timeout` always finds its deadline reached and there are no
//! spurious re-arms. A timer is filed under its deadline rounded **up** to a tick boundary, and
//! [`TimerWheel::next_expiry`] reports that boundary, so a loop that sleeps until then fires a
//! timer at most one tick after its deadline (plus the poller's own lateness).

use core::cell::Cell;
use core::time::Duration;

/// Marks the end of a list.
const NIL: u32 = u32::MAX;

/// The most timers a wheel can hold: index `u32::MAX` is the list end marker.
const MAX_ENTRIES: usize = u32::MAX as usize;

/// The fewest buckets: one bitmap word.
const MIN_BUCKETS: usize = 64;

/// The most buckets (a 1 MiB bitmap pair, 8 MiB of bucket heads).
const MAX_BUCKETS: usize = 1 << 20;

/// The longest tick, so that the part of a tick before a deadline fits an entry's `u32`.
const MAX_TICK_NANOS: u64 = 1 << 32;

/// The handle of an armed timer, for [`TimerWheel::cancel`].
///
/// It carries the generation of the timer's entry, so once the timer has fired or been cancelled
/// the handle matches nothing, even after the entry is reused for another timer (until the
/// entry's generation wraps around after 2^31 reuses).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

/// A hashed timing wheel of deadlines, each tagged with a `u64` key that expiry hands back.
///
/// Each turn of the loop, after handling events (which may arm timers), call
/// [`TimerWheel::expire`] with a monotonic `now`, then sleep no later than
/// [`TimerWheel::next_expiry`].
#[derive(Debug)]
pub struct TimerWheel {
    /// The length of a tick in nanoseconds, within `1 ..= MAX_TICK_NANOS`.
    tick_nanos: u64,
    /// `buckets - 1`; the bucket count is a power of two.
    mask: usize,
    buckets: Vec<Bucket>,
    /// One bit per bucket: the bucket's list is not empty.
    occupied: Vec<u64>,
    /// One bit per bucket: the bucket holds a timer whose tick is below `now_tick + buckets`.
    due: Vec<u64>,
    entries: Vec<Entry>,
    /// The most recently freed entry, or [`NIL`].
    free_head: u32,
    len: usize,
    /// The tick of the latest `now` seen. Every armed timer's tick is at least this, and every
    /// timer whose tick is at most this has fired (and so has every timer whose deadline was at
    /// most that `now`).
    now_tick: u64,
    /// The tick [`TimerWheel::next_expiry`] reports, once a scan found it (`None`: not known).
    /// The loop asks every turn, and between two ticks nothing usually changes: arming folds
    /// the new timer in (`arm`), and only a cancel in the bucket it names or an expiry that
    /// moves on or fires forgets it.
    next: Cell<Option<u64>>,
}

impl TimerWheel {
    /// Makes a wheel of `buckets` buckets of `tick` each, starting at `now`.
    ///
    /// `buckets` is rounded up to a power of two and kept within 64 ..= 2^20, and `tick` within
    /// 1 ns ..= 2^32 ns (4.29 s). One revolution spans `tick × buckets`: deadlines within it cost
    /// nothing until they fire, farther ones are looked at once per revolution.
    pub fn new(tick: Duration, buckets: usize, now: Duration) -> Self {
        let tick_nanos =
            u64::try_from(tick.as_nanos()).unwrap_or(MAX_TICK_NANOS).clamp(1, MAX_TICK_NANOS);
        let count = buckets.clamp(MIN_BUCKETS, MAX_BUCKETS).next_power_of_two();
        let mut wheel = TimerWheel {
            tick_nanos,
            mask: count - 1,
            buckets: vec![Bucket::EMPTY; count],
            occupied: vec![0; count / 64],
            due: vec![0; count / 64],
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            now_tick: 0,
            next: Cell::new(None),
        };
        wheel.now_tick = wheel.tick_floor(now);
        wheel
    }

    /// Makes the wheel the server uses: 4096 buckets of 10 ms, starting at `now`.
    ///
    /// Ten milliseconds is far finer than any WebSocket timeout needs, yet coarse enough that a
    /// busy loop sweeps few buckets per wake. 4096 buckets make a revolution of 40.96 s, which
    /// covers the default handshake (10 s), ping (30 s), pong (30 s) and close (5 s) timeouts, so
    /// those are never looked at before they fire. The wheel costs 32 KiB of bucket heads and
    /// 1 KiB of bitmaps, and a worst-case [`TimerWheel::next_expiry`] scans 128 words.
    pub fn standard(now: Duration) -> Self {
        Self::new(Duration::from_millis(10), 4096, now)
    }

    #[cfg(test)]
    /// Reserves room for `additional` more armed timers, so arming them does not allocate.
    ///
    /// # Panics
    ///
    /// Like [`Vec::reserve`], if the allocation's size would exceed `isize::MAX` bytes.
    pub fn reserve(&mut self, additional: usize) {
        let spare = self.entries.len().saturating_sub(self.len);
        self.entries.reserve(additional.saturating_sub(spare).min(MAX_ENTRIES));
    }

    /// Arms a timer that hands back `key` from [`TimerWheel::expire`] once `now` reaches
    /// `deadline`. O(1), and no allocation while a cancelled or fired entry is free for reuse.
    ///
    /// A deadline already past fires on the next call to [`TimerWheel::expire`].
    ///
    /// # Panics
    ///
    /// If `u32::MAX` timers are already armed, as [`Vec::push`] panics when its capacity
    /// overflows.
    pub fn arm(&mut self, key: u64, deadline: Duration) -> TimerId {
        let (mut tick, mut early) = self.tick_ceil(deadline);
        if tick < self.now_tick {
            // Already past: file it under the current tick, which the next expiry sweeps.
            (tick, early) = (self.now_tick, 0);
        }
        let index = match self.allocate(key, tick, early) {
            Some(index) => index,
            None => panic!("timer wheel full: {MAX_ENTRIES} timers"),
        };
        self.link(index, tick);
        self.len += 1;
        // What a scan would now find: the earlier of what it found before and what it reports
        // for this timer (its tick if due within the revolution, else its bucket's next tick a
        // revolution on; see `next_expiry`).
        if let Some(known) = self.next.get() {
            let count = self.bucket_count() as u64;
            let reported = if tick < self.now_tick.saturating_add(count) {
                tick
            } else {
                self.now_tick.saturating_add(((tick - self.now_tick) & self.mask as u64) + count)
            };
            self.next.set(Some(known.min(reported)));
        }
        let generation = self.entry(index).map_or(0, |e| e.generation);
        TimerId { index, generation }
    }

    /// Disarms the timer `id`, returning whether it was armed. O(1).
    ///
    /// A timer that already fired or was cancelled, including one whose entry now holds another
    /// timer, is left alone and gives `false`.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let tick = match self.entry(id.index) {
            Some(e) if e.is_armed() && e.generation == id.generation => e.tick,
            _ => return false,
        };
        // Only the bucket the next expiry was found in can move it (later); the others leave
        // both of its scans' first hits where they were.
        if self.next.get().is_some_and(|t| self.bucket_of(t) == self.bucket_of(tick)) {
            self.next.set(None);
        }
        self.unlink(id.index);
        self.release(id.index);
        true
    }

    /// The time by which the loop must call [`TimerWheel::expire`] next, or `None` if no timer
    /// is armed.
    ///
    /// It is never later than the earliest armed deadline rounded up to a tick (or, if that is
    /// before the latest `now` given to [`TimerWheel::expire`], than that `now`), and exactly
    /// that when the earliest deadline is within one revolution of the latest `now`; otherwise
    /// it may be earlier (by less than a revolution), costing a wake that fires nothing. It is in
    /// the past when a deadline already past was armed since the last expiry: sleep zero then.
    /// Cost: at most two scans of the bitmaps, `buckets / 64` words each.
    pub fn next_expiry(&self) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        let tick = match self.next.get() {
            Some(t) => t,
            None => {
                let t = self.scan_next_tick()?;
                self.next.set(Some(t));
                t
            }
        };
        Some(self.tick_start(tick))
    }

    /// The tick [`TimerWheel::next_expiry`] reports, found by scanning the bitmaps.
    fn scan_next_tick(&self) -> Option<u64> {
        let count = self.bucket_count();
        let start = self.bucket_of(self.now_tick);
        // A due timer in the bucket `offset` ticks ahead has exactly that tick.
        let due = first_set(&self.due, self.mask, start, count)
            .map(|offset| self.now_tick.saturating_add(offset as u64));
        // A timer that is not due is at least a revolution past its bucket's next tick.
        let far = first_set(&self.occupied, self.mask, start, count)
            .map(|offset| self.now_tick.saturating_add((offset + count) as u64));
        match (due, far) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer whose deadline is at most `now`, pushing its key onto `out` and
    /// disarming it.
    ///
    /// Keys come out grouped by bucket, in tick order within one revolution. The work is
    /// proportional to the ticks elapsed since the previous call, capped at one revolution
    /// (`buckets / 64` bitmap words), plus the timers in the buckets swept, however far `now`
    /// jumps. `now` should not go backwards: a `now` earlier than the latest one's tick fires
    /// nothing new.
    pub fn expire(&mut self, now: Duration, out: &mut Vec<u64>) {
        let from = self.now_tick;
        let to = self.tick_floor(now).max(from);
        self.now_tick = to;
        if to != from {
            // The scans start from `now_tick`.
            self.next.set(None);
        }
        if self.len == 0 {
            return;
        }
        let count = self.bucket_count();
        // Sweep the buckets of ticks `from ..= to + 1`, or all of them after a jump of about a
        // revolution. `from` is swept again because a past deadline armed since then is filed
        // there; `to + 1` because a deadline inside the current tick is filed under the next.
        let span = match usize::try_from(to - from) {
            Ok(elapsed) if elapsed < count - 1 => elapsed + 2,
            _ => count,
        };
        let now = now.as_nanos();
        let start = self.bucket_of(from);
        let mut offset = 0;
        while offset < span {
            let Some(found) =
                first_set(&self.occupied, self.mask, (start + offset) & self.mask, span - offset)
            else {
                break;
            };
            let bucket = (start + offset + found) & self.mask;
            // A sweep may fire timers and recounts the bucket's due ones.
            self.next.set(None);
            self.sweep(bucket, now, out);
            offset += found + 1;
        }
    }

    #[cfg(test)]
    /// The number of armed timers.
    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fires the timers of `bucket` whose deadline is at most `now` (in nanoseconds) and
    /// recounts the ones due within the revolution that starts at `now_tick`.
    fn sweep(&mut self, bucket: usize, now: u128, out: &mut Vec<u64>) {
        let horizon = self.now_tick.saturating_add(self.bucket_count() as u64);
        let mut due = 0;
        let mut cursor = self.buckets.get(bucket).map_or(NIL, |b| b.head);
        while let Some(&Entry { key, tick, early, next, .. }) = self.entry(cursor) {
            let deadline =
                (u128::from(tick) * u128::from(self.tick_nanos)).saturating_sub(u128::from(early));
            if deadline <= now {
                self.unlink(cursor);
                self.release(cursor);
                out.push(key);
            } else if tick < horizon {
                due += 1;
            }
            cursor = next;
        }
        if let Some(b) = self.buckets.get_mut(bucket) {
            b.due = due;
        }
        set_bit(&mut self.due, bucket, due > 0);
    }

    /// Takes a free entry (or makes one) for an armed timer, unlinked.
    fn allocate(&mut self, key: u64, tick: u64, early: u32) -> Option<u32> {
        let reused = self.free_head;
        if let Some(e) = self.entry_mut(reused) {
            let next_free = e.next;
            e.key = key;
            e.tick = tick;
            e.early = early;
            // Even (free) to odd (armed).
            e.generation = e.generation.wrapping_add(1);
            self.free_head = next_free;
            return Some(reused);
        }
        let index = u32::try_from(self.entries.len()).ok().filter(|&i| i != NIL)?;
        self.entries.push(Entry { key, tick, prev: NIL, next: NIL, generation: 1, early });
        Some(index)
    }

    /// Returns the unlinked entry `index` to the free list, retiring its handle.
    fn release(&mut self, index: u32) {
        let free_head = self.free_head;
        if let Some(e) = self.entry_mut(index) {
            // Odd (armed) to even (free).
            e.generation = e.generation.wrapping_add(1);
            e.prev = NIL;
            e.next = free_head;
            self.free_head = index;
            self.len -= 1;
        }
    }

    /// Pushes entry `index` onto the front of the bucket of `tick`.
    fn link(&mut self, index: u32, tick: u64) {
        let bucket = self.bucket_of(tick);
        let is_due = tick < self.now_tick.saturating_add(self.bucket_count() as u64);
        let Some(b) = self.buckets.get_mut(bucket) else {
            return;
        };
        let old_head = b.head;
        b.head = index;
        if is_due {
            b.due += 1;
        }
        if let Some(e) = self.entry_mut(old_head) {
            e.prev = index;
        }
        if let Some(e) = self.entry_mut(index) {
            e.prev = NIL;
            e.next = old_head;
        }
        set_bit(&mut self.occupied, bucket, true);
        if is_due {
            set_bit(&mut self.due, bucket, true);
        }
    }

    /// Takes entry `index` out of its bucket's list.
    fn unlink(&mut self, index: u32) {
        let Some(&Entry { tick, prev, next, .. }) = self.entry(index) else {
            return;
        };
        let bucket = self.bucket_of(tick);
        let is_due = tick < self.now_tick.saturating_add(self.bucket_count() as u64);
        if let Some(e) = self.entry_mut(next) {
            e.prev = prev;
        }
        if let Some(e) = self.entry_mut(prev) {
            e.next = next;
        }
        let Some(b) = self.buckets.get_mut(bucket) else {
            return;
        };
        if b.head == index {
            b.head = next;
        }
        if is_due {
            b.due = b.due.saturating_sub(1);
        }
        let (empty, none_due) = (b.head == NIL, b.due == 0);
        if empty {
            set_bit(&mut self.occupied, bucket, false);
        }
        if none_due {
            set_bit(&mut self.due, bucket, false);
        }
    }

    fn entry(&self, index: u32) -> Option<&Entry> {
        self.entries.get(index as usize)
    }

    fn entry_mut(&mut self, index: u32) -> Option<&mut Entry> {
        self.entries.get_mut(index as usize)
    }

    fn bucket_count(&self) -> usize {
        self.mask + 1
    }

    fn bucket_of(&self, tick: u64) -> usize {
        // Lossless: the mask is below 2^20.
        (tick & self.mask as u64) as usize
    }

    /// The tick that contains `time`.
    fn tick_floor(&self, time: Duration) -> u64 {
        // The loop asks every turn: a 64-bit division while the time fits (584 years), not
        // the 128-bit one (a call into compiler-rt).
        if let Ok(nanos) = u64::try_from(time.as_nanos()) {
            return nanos / self.tick_nanos;
        }
        let ticks = time.as_nanos() / u128::from(self.tick_nanos);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// The first tick boundary at or after `time`, and how many nanoseconds before it `time`
    /// is. A `time` beyond the last tick gives that tick, exactly.
    fn tick_ceil(&self, time: Duration) -> (u64, u32) {
        let tick = u128::from(self.tick_nanos);
        let nanos = time.as_nanos();
        let ticks = nanos.div_ceil(tick);
        match u64::try_from(ticks) {
            // No overflow: `ticks * tick` is below `nanos + tick`, and the difference is below
            // `tick`, so at most `u32::MAX`.
            Ok(whole) => (whole, u32::try_from(ticks * tick - nanos).unwrap_or(u32::MAX)),
            Err(_) => (u64::MAX, 0),
        }
    }

    /// The time at which `tick` starts, saturating at [`Duration::MAX`].
    fn tick_start(&self, tick: u64) -> Duration {
        let nanos = u128::from(tick) * u128::from(self.tick_nanos);
        if let Ok(nanos) = u64::try_from(nanos) {
            // As below, with 64-bit arithmetic (the loop asks every turn).
            return Duration::from_nanos(nanos);
        }
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        match u64::try_from(nanos / NANOS_PER_SEC) {
            // Lossless: the remainder is below 10^9.
            Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
            Err(_) => Duration::MAX,
        }
    }
}

/// The head of one bucket's list.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// The first entry, or [`NIL`].
    head: u32,
    /// How many of its timers have a tick below `now_tick + buckets`.
    due: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket { head: NIL, due: 0 };
}

/// One timer, armed or free. Armed entries form a doubly linked list per bucket; free entries a
/// singly linked free list through `next`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    /// The first tick boundary at or after the deadline (never below `now_tick` while armed).
    tick: u64,
    prev: u32,
    next: u32,
    /// Odd while armed, even while free; bumped on each change, which retires old [`TimerId`]s.
    generation: u32,
    /// How many nanoseconds before `tick` starts the deadline is (below one tick).
    early: u32,
}

impl Entry {
    fn is_armed(&self) -> bool {
        self.generation & 1 == 1
    }
}

/// Sets or clears bit `bit` of a bitmap.
fn set_bit(words: &mut [u64], bit: usize, value: bool) {
    if let Some(word) = words.get_mut(bit / 64) {
        let mask = 1 << (bit % 64);
        if value {
            *word |= mask;
        } else {
            *word &= !mask;
        }
    }
}

/// The distance from `start` to the first set bit among the `len` bits from `start` on, going
/// round the bitmap (whose length in bits is `mask + 1`, a multiple of 64). O(`len / 64`).
fn first_set(words: &[u64], mask: usize, start: usize, len: usize) -> Option<usize> {
    let mut offset = 0;
    while offset < len {
        let bit = (start + offset) & mask;
        let word = words.get(bit / 64).copied().unwrap_or(0) >> (bit % 64);
        if word != 0 {
            let found = offset + word.trailing_zeros() as usize;
            return (found < len).then_some(found);
        }
        // The bitmap wraps at a word boundary, so the rest of this word is contiguous.
        offset += 64 - bit % 64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn wheel() -> TimerWheel {
        TimerWheel::new(ms(10), 64, Duration::ZERO)
    }

    fn expire(w: &mut TimerWheel, now: Duration) -> Vec<u64> {
        let mut out = Vec::new();
        w.expire(now, &mut out);
        out
    }

    #[test]
    fn entry_is_32_bytes() {
        assert_eq!(core::mem::size_of::<Entry>(), 32);
        assert_eq!(core::mem::size_of::<Bucket>(), 8);
    }

    #[test]
    fn buckets_rounded_to_power_of_two() {
        assert_eq!(TimerWheel::new(ms(1), 100, Duration::ZERO).bucket_count(), 128);
        assert_eq!(TimerWheel::new(ms(1), 0, Duration::ZERO).bucket_count(), 64);
        assert_eq!(TimerWheel::new(ms(1), usize::MAX, Duration::ZERO).bucket_count(), 1 << 20);
        assert_eq!(TimerWheel::standard(Duration::ZERO).bucket_count(), 4096);
    }

    #[test]
    fn fires_in_order_never_early() {
        let mut w = wheel();
        w.arm(3, ms(35));
        w.arm(1, ms(10));
        w.arm(2, ms(21));
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_expiry(), Some(ms(10)));
        assert_eq!(expire(&mut w, ms(9)), Vec::<u64>::new());
        assert_eq!(expire(&mut w, ms(10)), vec![1]);
        assert_eq!(w.next_expiry(), Some(ms(30)), "21 ms rounds up to 30 ms");
        assert_eq!(expire(&mut w, ms(20)), Vec::<u64>::new());
        assert_eq!(expire(&mut w, ms(21) - Duration::from_nanos(1)), Vec::<u64>::new());
        assert_eq!(expire(&mut w, ms(21)), vec![2], "exact, inside a tick");
        assert_eq!(expire(&mut w, ms(45)), vec![3]);
        assert!(w.is_empty());
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn cancel_and_stale_ids() {
        let mut w = wheel();
        let a = w.arm(1, ms(50));
        let b = w.arm(2, ms(50));
        assert!(w.cancel(a));
        assert!(!w.cancel(a), "already cancelled");
        assert_eq!(w.len(), 1);
        // The freed entry is reused; the old id must not cancel the new timer.
        let c = w.arm(3, ms(60));
        assert_eq!(c.index, a.index);
        assert!(!w.cancel(a));
        assert_eq!(expire(&mut w, ms(100)), vec![2, 3]);
        assert!(!w.cancel(b), "already fired");
        assert!(!w.cancel(c), "already fired");
        assert!(!w.cancel(TimerId { index: 999, generation: 0 }));
    }

    #[test]
    fn past_deadlines_fire_on_next_expire() {
        let mut w = TimerWheel::new(ms(10), 64, ms(1000));
        expire(&mut w, ms(1005));
        w.arm(7, ms(3));
        w.arm(8, ms(1005));
        w.arm(9, ms(1006));
        assert_eq!(w.next_expiry(), Some(ms(1000)), "past the current tick");
        let mut fired = expire(&mut w, ms(1005));
        fired.sort_unstable();
        assert_eq!(fired, vec![7, 8]);
        assert_eq!(w.next_expiry(), Some(ms(1010)));
        assert_eq!(expire(&mut w, ms(1006)), vec![9]);
    }

    #[test]
    fn deadlines_beyond_one_revolution() {
        // 64 buckets of 10 ms: a revolution is 640 ms.
        let mut w = wheel();
        w.arm(1, ms(2000)); // Same bucket as 80 ms, three revolutions on.
        w.arm(2, ms(80));
        assert_eq!(w.next_expiry(), Some(ms(80)));
        assert_eq!(expire(&mut w, ms(80)), vec![2]);
        // Each wake before 2000 ms fires nothing; there are a handful, one per revolution.
        let mut wakes = 0;
        loop {
            let next = w.next_expiry().unwrap();
            assert!(next <= ms(2000));
            if next == ms(2000) {
                break;
            }
            assert_eq!(expire(&mut w, next), Vec::<u64>::new(), "at {next:?}");
            wakes += 1;
            assert!(wakes <= 4);
        }
        assert_eq!(expire(&mut w, ms(1999)), Vec::<u64>::new());
        assert_eq!(expire(&mut w, ms(2000)), vec![1]);
    }

    #[test]
    fn far_deadlines_are_exact_once_within_a_revolution() {
        let mut w = wheel();
        w.arm(1, ms(5000));
        // Tick 500 sits in bucket 52 (500 mod 64): a lower bound of one revolution past that
        // bucket's next tick, never later than the deadline.
        assert_eq!(w.next_expiry(), Some(ms(1160)));
        expire(&mut w, ms(4500));
        assert_eq!(w.next_expiry(), Some(ms(5000)));
    }

    #[test]
    fn big_time_jump_sweeps_one_revolution() {
        let mut w = TimerWheel::standard(Duration::ZERO);
        for i in 0..1000 {
            w.arm(i, ms(i * 7919 % 100_000));
        }
        let keep = w.arm(5000, Duration::from_secs(1_000_000));
        let never = w.arm(5001, Duration::MAX);
        // A jump of about 11 days: one sweep of the occupied buckets, not 10^8 ticks.
        let mut fired = expire(&mut w, Duration::from_secs(999_999));
        fired.sort_unstable();
        assert_eq!(fired, (0..1000).collect::<Vec<_>>());
        assert_eq!(w.len(), 2);
        assert_eq!(w.next_expiry(), Some(Duration::from_secs(1_000_000)));
        assert!(w.cancel(keep));
        assert!(w.next_expiry().is_some());
        assert!(w.cancel(never));
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn end_of_time_saturates() {
        let mut w = wheel();
        let id = w.arm(1, Duration::MAX);
        assert!(w.next_expiry().is_some());
        // Some 10^14 ticks at once: one sweep. Then the clocks saturate rather than overflow.
        assert_eq!(expire(&mut w, Duration::from_secs(1 << 40)), Vec::<u64>::new());
        assert!(w.cancel(id));
        w.arm(2, Duration::MAX);
        w.arm(3, Duration::ZERO);
        assert_eq!(expire(&mut w, Duration::MAX), vec![3, 2]);
        assert!(w.is_empty());
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let mut w = wheel();
        expire(&mut w, ms(500));
        w.arm(1, ms(505));
        assert_eq!(expire(&mut w, ms(100)), Vec::<u64>::new());
        assert_eq!(expire(&mut w, ms(510)), vec![1]);
    }

    #[test]
    fn warm_wheel_does_not_allocate() {
        let mut w = wheel();
        w.reserve(100);
        let capacity = w.entries.capacity();
        let ids: Vec<TimerId> = (0..100).map(|i| w.arm(i, ms(i * 13))).collect();
        for id in ids {
            w.cancel(id);
        }
        for i in 0..100 {
            w.arm(i, ms(i));
        }
        assert_eq!(w.entries.capacity(), capacity);
        assert_eq!(w.entries.len(), 100);
    }

    /// Random arm/cancel/expire against a naive model: expiry must match exactly (fired keys
    /// are the ones whose deadline is at most `now`), and `next_expiry` must never be later than
    /// the model's earliest deadline rounded up to a tick.
    #[test]
    fn matches_naive_model() {
        let tick = ms(10);
        for &(buckets, max_delay) in &[(64, 300u64), (64, 5_000), (256, 20_000), (4096, 60_000)] {
            let mut rng = 0x9e37_79b9_7f4a_7c15_u64 ^ max_delay;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut w = TimerWheel::new(tick, buckets, ms(123));
            let mut now = ms(123);
            // key -> (deadline, id)
            let mut model: BTreeMap<u64, (Duration, TimerId)> = BTreeMap::new();
            let round_up = |d: Duration| {
                let ticks = d.as_nanos().div_ceil(tick.as_nanos());
                tick * u32::try_from(ticks).unwrap()
            };
            let mut retired: Vec<TimerId> = Vec::new();
            let mut out = Vec::new();
            for key in 0..20_000_u64 {
                match next() % 10 {
                    0..=4 => {
                        let deadline = (now + Duration::from_micros(next() % (max_delay * 1000)))
                            .saturating_sub(ms(20));
                        let id = w.arm(key, deadline);
                        model.insert(key, (deadline, id));
                    }
                    5 | 6 => {
                        if let Some((&k, _)) = model.range(next() % key.max(1)..).next() {
                            let (_, id) = model.remove(&k).unwrap();
                            assert!(w.cancel(id));
                            retired.push(id);
                        }
                        if let Some(&id) = retired.get(next() as usize % retired.len().max(1)) {
                            assert!(!w.cancel(id), "stale id cancelled a live timer");
                        }
                    }
                    _ => {
                        let earliest = model.values().map(|(d, _)| round_up(*d)).min();
                        let wake = w.next_expiry();
                        assert_eq!(wake.is_some(), earliest.is_some());
                        if let (Some(wake), Some(earliest)) = (wake, earliest) {
                            assert!(
                                wake <= earliest.max(now),
                                "woke at {wake:?} after {earliest:?}"
                            );
                            if earliest < now + tick * u32::try_from(buckets - 1).unwrap() {
                                assert_eq!(wake.max(now), earliest.max(now));
                            }
                        }
                        // Wake as the loop would, or a little later, or after a jump.
                        now = match next() % 8 {
                            0 => now + ms(next() % (3 * max_delay)),
                            1 => now + Duration::from_micros(next() % 15_000),
                            2 => now,
                            _ => wake.unwrap_or(now).max(now) + ms(next() % 3),
                        };
                        out.clear();
                        w.expire(now, &mut out);
                        out.sort_unstable();
                        let expected: Vec<u64> =
                            model.iter().filter(|(_, (d, _))| *d <= now).map(|(k, _)| *k).collect();
                        assert_eq!(out, expected, "at {now:?}");
                        for k in &expected {
                            let (_, id) = model.remove(k).unwrap();
                            retired.push(id);
                        }
                    }
                }
                assert_eq!(w.len(), model.len());
                // What the loop is told is what a scan of the bitmaps finds now.
                let scanned = w.scan_next_tick().map(|t| w.tick_start(t));
                assert_eq!(w.next_expiry(), scanned, "at {now:?} after step {key}");
            }
        }
    }

    #[test]
    fn first_set_wraps() {
        let mut words = vec![0u64; 2];
        set_bit(&mut words, 3, true);
        set_bit(&mut words, 100, true);
        assert_eq!(first_set(&words, 127, 0, 128), Some(3));
        assert_eq!(first_set(&words, 127, 4, 128), Some(96));
        assert_eq!(first_set(&words, 127, 101, 128), Some(30));
        assert_eq!(first_set(&words, 127, 101, 30), None);
        assert_eq!(first_set(&words, 127, 3, 1), Some(0));
        assert_eq!(first_set(&[0, 0], 127, 50, 128), None);
    }
}
