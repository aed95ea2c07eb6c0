//! What an application implements ([`Handler`]) and what it is given to act with
//! ([`Context`]): send, broadcast (one encode, shared bytes), close.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::proto::connection::{MessageKind, SendError};
use crate::proto::frame::{FrameHeader, MAX_HEADER_LEN};
use crate::proto::handshake::UpgradeRequest;
use crate::proto::http::Request;
use crate::proto::{CloseCode, State};
use crate::server::event_loop::Core;
use crate::server::slab::Key;
use crate::server::stats::Stats;

/// A WebSocket connection, as the application names it. Stale ids are harmless: every call
/// with the id of a connection that is gone does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub(crate) Key);

impl ConnId {
    /// A number that identifies the connection in logs (its token).
    pub fn as_u64(self) -> u64 {
        self.0.to_token() as u64
    }
}

/// A plain HTTP response, or a refusal of an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra header fields (`Content-Length` and `Connection` are written by the runtime).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: body.into().into_bytes() }
    }

    /// A response with a content type.
    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self { status, headers: vec![("Content-Type".into(), content_type.into())], body }
    }
}

/// The application's answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Upgrade, with the chosen subprotocol (one the client offered) and extra headers.
    Accept {
        /// The subprotocol, if one is chosen.
        protocol: Option<String>,
        /// Extra header fields for the 101 response.
        headers: Vec<(String, Vec<u8>)>,
    },
    /// Refuse with this response.
    Reject(Response),
}

impl Decision {
    /// Accept with no subprotocol and no extra headers.
    pub fn accept() -> Self {
        Self::Accept { protocol: None, headers: Vec::new() }
    }
}

/// An outbound WebSocket connection to open ([`Context::connect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Where to connect (names are resolved before, never on the loop).
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request-target (path and query).
    pub target: String,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// Extra header fields (`Origin`, `Authorization`, ...).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why an outbound connection did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The TCP connection failed (refused, unreachable, reset).
    Io(String),
    /// The connect and handshake did not finish within the handshake timeout.
    Timeout,
    /// The server answered with another status than 101.
    Refused {
        /// The status it answered with.
        status: u16,
    },
    /// The server's response broke the handshake rules (RFC 6455 §4.1).
    Handshake(crate::proto::HandshakeError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "connection failed: {e}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Refused { status } => write!(f, "the server refused the upgrade with {status}"),
            Self::Handshake(e) => write!(f, "bad handshake response: {e}"),
        }
    }
}

/// An application served by the runtime. Every method runs on the event loop's thread and
/// must not block.
pub trait Handler {
    /// A request that is not a WebSocket upgrade (health checks, pages, APIs). The connection
    /// is closed after the response.
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_, '_>,
        peer: SocketAddr,
    ) -> Response;

    /// A valid upgrade request: accept it (with a subprotocol and headers) or refuse it.
    fn on_upgrade(
        &mut self,
        ctx: &mut Context<'_>,
        req: &UpgradeRequest<'_, '_>,
        peer: SocketAddr,
    ) -> Decision;

    /// The 101 response is queued: the connection is open.
    fn on_open(&mut self, _ctx: &mut Context<'_>, _id: ConnId) {}

    /// A whole data message (its size is bounded by the configured message limit).
    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]);

    /// The connection is gone: `code` is the peer's close code (1005 if its close frame had
    /// none), or 1006 if it closed without one, or the code this end failed it with.
    fn on_close(&mut self, _ctx: &mut Context<'_>, _id: ConnId, _code: CloseCode, _reason: &str) {}

    /// The loop is about to start (open outbound connections here).
    fn on_start(&mut self, _ctx: &mut Context<'_>) {}

    /// An outbound connection finished its handshake and is open, with the subprotocol the
    /// server chose.
    fn on_connected(&mut self, _ctx: &mut Context<'_>, _id: ConnId, _protocol: Option<&str>) {}

    /// An outbound connection failed before it opened (no `on_close` follows).
    fn on_connect_failed(&mut self, _ctx: &mut Context<'_>, _id: ConnId, _error: &ConnectError) {}

    /// The [`crate::server::Waker`] of this server was woken (by another thread).
    fn on_wake(&mut self, _ctx: &mut Context<'_>) {}
}

/// What a handler acts with: the runtime's connections, counters and clock.
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
}

impl Context<'_> {
    /// The loop's clock: time since the server started.
    pub fn now(&self) -> Duration {
        self.core.now
    }

    /// The runtime's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Whether the server is shutting down.
    pub fn draining(&self) -> bool {
        self.core.draining
    }

    /// The peer's address, if the connection still exists.
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.core.conns.get(id.0).map(|c| c.peer)
    }

    /// Whether the connection is open for sending.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.core.conns.get(id.0).is_some_and(|c| c.ws.state() == State::Open)
    }

    /// Queues a message (copied) to one connection.
    ///
    /// # Errors
    /// The connection is gone, not open, or closing; a connection whose queue passes its cap
    /// is closed as a slow reader and the message is dropped.
    pub fn send(&mut self, id: ConnId, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.core.send(id.0, kind, data)
    }

    /// Queues a message to one connection, taking the buffer (no copy of the payload).
    ///
    /// # Errors
    /// As [`Context::send`].
    pub fn send_owned(
        &mut self,
        id: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        self.core.send_owned(id.0, kind, data)
    }

    /// Sends one message to many connections: the frame is encoded once and its bytes are
    /// shared by every queue. Returns how many connections it was queued to.
    pub fn broadcast(
        &mut self,
        ids: impl IntoIterator<Item = ConnId>,
        kind: MessageKind,
        data: &[u8],
    ) -> usize {
        let frame = shared_frame(kind, data);
        let mut n = 0;
        for id in ids {
            if self.core.send_shared(id.0, kind, &frame).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Opens an outbound WebSocket connection; `on_connected` or `on_connect_failed` follows.
    ///
    /// # Errors
    /// The socket could not be created or registered.
    pub fn connect(&mut self, req: ConnectRequest) -> io::Result<ConnId> {
        self.core.connect(req).map(ConnId)
    }

    /// Stops the loop after the current wake-up (`Server::run` returns).
    pub fn stop(&mut self) {
        self.core.stopping = true;
    }

    /// Starts the close handshake with a connection.
    pub fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.core.close(id.0, code, reason);
    }
}

/// A whole unmasked frame (what a server sends) in one shared buffer.
fn shared_frame(kind: MessageKind, data: &[u8]) -> Rc<[u8]> {
    let h = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: kind.opcode(),
        mask: None,
        payload_len: data.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut head);
    let mut v = Vec::with_capacity(n + data.len());
    v.extend_from_slice(&head[..n]);
    v.extend_from_slice(data);
    Rc::from(v)
}
