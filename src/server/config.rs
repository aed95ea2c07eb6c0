//! The runtime's settings, built by the binary from flags and environment.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proto;

/// Everything the runtime needs to know before it starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (port 0 picks a free port; read it back from the server).
    pub listen: Vec<SocketAddr>,
    /// Most open WebSocket and HTTP connections; past it upgrades get 503 with `Retry-After`.
    pub max_connections: usize,
    /// Most connections from one IP address (0: no limit); past it, 503.
    pub max_connections_per_ip: usize,
    /// Most unsent bytes one connection may have queued before it is closed as a slow reader.
    pub queue_cap: usize,
    /// Most unsent bytes all connections together may have queued; past it the connections with
    /// the most queued are cut first.
    pub max_queued_total: usize,
    /// How long queued output may go without a byte of it written before the connection is
    /// dropped.
    pub send_timeout: Duration,
    /// The size of the buffers leased for reading and coalescing small writes.
    pub read_buffer_size: usize,
    /// Request head limits.
    pub http: proto::http::Limits,
    /// The largest plain HTTP request body (413 past it).
    pub max_body_size: usize,
    /// Frame and message limits and protocol timers of each connection.
    pub ws: proto::Config,
    /// How long a graceful shutdown waits for clients to finish the close handshake.
    pub shutdown_timeout: Duration,
    /// Whether SIGINT and SIGTERM start a graceful shutdown (the binary: yes; tests: no).
    pub handle_signals: bool,
    /// permessage-deflate (RFC 7692) on upgrades that offer it: `None` declines it.
    pub compression: Option<crate::server::compress::Compression>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            queue_cap: 32 << 20,
            max_queued_total: 256 << 20,
            send_timeout: Duration::from_secs(30),
            read_buffer_size: 16 << 10,
            compression: None,
            http: proto::http::Limits::default(),
            max_body_size: 1 << 20,
            ws: proto::Config::default(),
            shutdown_timeout: Duration::from_secs(10),
            handle_signals: false,
        }
    }
}
