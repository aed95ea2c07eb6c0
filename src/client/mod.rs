//! `weir client`: a command-line WebSocket client.

pub mod console;

/// The client's settings (`weir client URL [FLAGS]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The server to connect to; starts with `ws://` or `wss://`.
    pub url: String,
    /// Send binary messages instead of text.
    pub binary: bool,
    /// Extra request headers, as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// Subprotocols to offer, in order of preference.
    pub subprotocols: Vec<String>,
    /// The `Origin` header to send, if any.
    pub origin: Option<String>,
    /// PEM roots a `wss://` server is verified against (none: the system's).
    pub tls_ca: Option<String>,
    /// Verify no certificate (testing only).
    pub insecure: bool,
    /// permessage-deflate to offer: `None` offers none (`--compression`).
    pub compression: Option<crate::server::compress::Mode>,
    /// Messages shorter than this are sent uncompressed.
    pub compression_min_size: u64,
}
