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
    /// Payload bytes received in data messages.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Protocol errors, by kind, in the order of [`ProtocolError::ALL`].
    pub protocol_errors: [u64; ProtocolError::ALL.len()],
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
