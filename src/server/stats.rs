//! Counters the runtime keeps, read by applications (stats, metrics) through the context.

use std::collections::BTreeMap;

use crate::proto::ProtocolError;

/// What the runtime counted since it started.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// WebSocket connections open now.
    pub connections_open: u64,
    /// WebSocket connections opened since start.
    pub connections_total: u64,
    /// TCP connections accepted since start (WebSocket, plain HTTP and refused).
    pub tcp_accepted: u64,
    /// Plain HTTP requests answered.
    pub http_requests: u64,
    /// Refused handshakes, by HTTP status.
    pub handshakes_rejected: BTreeMap<u16, u64>,
    /// Close codes sent, by code.
    pub close_codes_sent: BTreeMap<u16, u64>,
    /// Close codes received, by code (1005 for a close frame without a code).
    pub close_codes_received: BTreeMap<u16, u64>,
    /// Connections closed because their unsent bytes passed the queue cap.
    pub slow_reader_disconnects: u64,
    /// Connections dropped because their queued output was not written for the send timeout.
    pub send_timeouts: u64,
    /// Connections cut because all queues together passed `--max-queued-total`.
    pub queue_budget_disconnects: u64,
    /// Unsent bytes in all connections' queues (as of the end of the last batch of work).
    pub queued_bytes: u64,
    /// Pong deadlines missed.
    pub pong_timeouts: u64,
    /// Handshakes not finished in time.
    pub handshake_timeouts: u64,
    /// Connections closed for sending no message for the idle timeout.
    pub idle_timeouts: u64,
    /// Whole data messages received.
    pub messages_in: u64,
    /// Data messages sent (a broadcast counts once per recipient).
    pub messages_out: u64,
    /// Messages compressed (permessage-deflate): a broadcast compressed once for many
    /// connections counts once.
    pub compressed_messages: u64,
    /// Payload bytes received in data messages.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Protocol errors, by kind, in the order of [`ProtocolError::ALL`].
    pub protocol_errors: [u64; ProtocolError::ALL.len()],
    /// Time from accept to the 101 response being queued (written at the end of the same turn
    /// of the loop unless the socket is full).
    pub handshake_seconds: Histogram,
    /// Time from a broadcast frame being queued to its last byte being written, once per
    /// receiver (`OutQueue::write_observed`).
    pub delivery_seconds: Histogram,
}

/// A histogram of durations in fixed buckets (Prometheus style): an observation is a few
/// comparisons and additions into arrays of fixed size, never an allocation.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Observations in each bucket of [`Histogram::BOUNDS`] (not cumulative), and last those
    /// over the largest bound.
    pub counts: [u64; BUCKETS + 1],
    /// Sum of all observations, in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

const BUCKETS: usize = 17;

impl Histogram {
    /// Upper bounds of the buckets, in seconds: 50 µs to 10 s, 1-2.5-5 a decade. What the loop
    /// does in one turn takes microseconds, so the small ones are finer than Prometheus'
    /// default buckets (5 ms and up).
    pub const BOUNDS: [f64; BUCKETS] = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0, 10.0,
    ];

    /// The same bounds in nanoseconds, for observations in whole nanoseconds.
    const BOUNDS_NS: [u64; BUCKETS] = [
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        50_000_000,
        100_000_000,
        250_000_000,
        500_000_000,
        1_000_000_000,
        2_500_000_000,
        5_000_000_000,
        10_000_000_000,
    ];

    /// Records one observation of `ns` nanoseconds.
    pub fn observe_ns(&mut self, ns: u64) {
        // The first bound at or over `ns` (BUCKETS, the `+Inf` slot, when there is none).
        let i = Self::BOUNDS_NS.partition_point(|&b| b < ns);
        self.counts[i] += 1;
        self.sum += ns as f64 * 1e-9;
        self.count += 1;
    }

    /// Records one observation.
    pub fn observe(&mut self, d: std::time::Duration) {
        self.observe_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Each bound with the observations at or under it (cumulative), smallest first; `+Inf`
    /// (all of them, [`Histogram::count`]) is not included.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        Self::BOUNDS.iter().zip(self.counts.iter()).scan(0, |sum, (&le, &n)| {
            *sum += n;
            Some((le, *sum))
        })
    }
}

impl Stats {
    /// Counts a protocol error.
    pub fn protocol_error(&mut self, e: ProtocolError) {
        if let Some(i) = ProtocolError::ALL.iter().position(|&k| k == e) {
            self.protocol_errors[i] += 1;
        }
    }

    /// Protocol errors by name, with their counts (zeros included).
    pub fn protocol_errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ProtocolError::ALL.iter().zip(self.protocol_errors.iter()).map(|(e, n)| (e.name(), *n))
    }

    pub(crate) fn count(map: &mut BTreeMap<u16, u64>, key: u16) {
        *map.entry(key).or_insert(0) += 1;
    }

    /// Counts a close code: the codes a peer may choose freely (RFC 6455 §7.4.2: 3000-3999
    /// registered, 4000-4999 private) under their range's first, 3000 or 4000, so that peers
    /// cannot add a metric series per code; [`close_code_label`] writes those as `3xxx`, `4xxx`.
    pub(crate) fn count_close(map: &mut BTreeMap<u16, u64>, code: u16) {
        Self::count(map, if (3000..5000).contains(&code) { code / 1000 * 1000 } else { code });
    }
}

/// The label of a close code as [`Stats::count_close`] keeps it.
pub fn close_code_label(code: u16) -> String {
    match code {
        3000 => "3xxx".into(),
        4000 => "4xxx".into(),
        c => c.to_string(),
    }
}

/// Resident memory of this process, from `/proc/self/statm` (pages × page size).
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Open file descriptors of this process.
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_hold_what_is_at_or_under_their_bound() {
        for (ns, s) in Histogram::BOUNDS_NS.iter().zip(Histogram::BOUNDS) {
            assert_eq!(*ns, (s * 1e9).round() as u64);
        }
        let mut h = Histogram::default();
        for ns in [0, 50_000, 50_001, 1_000_000, 10_000_000_000, 10_000_000_001, u64::MAX] {
            h.observe_ns(ns);
        }
        let c: Vec<(f64, u64)> = h.cumulative().collect();
        assert_eq!(c.len(), Histogram::BOUNDS.len());
        assert_eq!(c[0], (0.00005, 2));
        assert_eq!(c[1], (0.0001, 3));
        assert_eq!(c[4], (0.001, 4));
        assert_eq!(c[16], (10.0, 5));
        assert_eq!((h.count, h.counts[17]), (7, 2), "two over the largest bound: +Inf only");
        h.observe(std::time::Duration::from_millis(3));
        assert_eq!(h.cumulative().nth(6), Some((0.005, 5)));
    }
}
