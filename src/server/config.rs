//! The runtime's settings, built by the binary from flags and environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::proto;

/// Everything the runtime needs to know before it starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (port 0 picks a free port; read it back from the server).
    pub listen: Vec<SocketAddr>,
    /// Addresses that speak TLS (HTTPS and WSS) with `tls_cert` and `tls_key`; the feature
    /// `tls` is needed.
    pub listen_tls: Vec<SocketAddr>,
    /// Every listener sets `SO_REUSEPORT`, so several processes can listen on one port and the
    /// kernel spreads connections over them.
    pub reuse_port: bool,
    /// The PEM certificate chain the TLS listeners present (re-read on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// More certificate chains and their keys (PEM): a client hello asking (SNI) for a name
    /// one of them is valid for gets the first such, any other gets `tls_cert`.
    pub tls_more: Vec<(PathBuf, PathBuf)>,
    /// The PEM roots outbound `wss://` connections are verified against (`None`: the system's).
    pub tls_ca: Option<PathBuf>,
    /// Outbound `wss://` connections verify no certificate (for tests only).
    pub tls_insecure: bool,
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
            listen_tls: Vec::new(),
            reuse_port: false,
            tls_cert: None,
            tls_key: None,
            tls_more: Vec::new(),
            tls_ca: None,
            tls_insecure: false,
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
