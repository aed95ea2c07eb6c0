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
    /// Time from accept to the 101 response.
    pub handshake_seconds: Histogram,
}

/// A histogram of durations with fixed bucket bounds (Prometheus style).
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Upper bounds of the buckets, in seconds.
    pub bounds: &'static [f64],
    /// Observations in each bucket (not cumulative).
    pub counts: Vec<u64>,
    /// Sum of all observations, in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        const BOUNDS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
        Self { bounds: BOUNDS, counts: vec![0; BOUNDS.len()], sum: 0.0, count: 0 }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
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
