//! The values a handler and the runtime pass each other: connection ids, requests, tags,
//! plain responses, upgrade decisions, outbound connection requests and their errors.

use std::net::SocketAddr;

use crate::proto::handshake;
use crate::proto::http::{Header, Headers};
use crate::proto::relay::RETRY_AFTER;
use crate::server::slab::Key;

/// A WebSocket connection, as the application names it. Stale ids are harmless: every call
/// with the id of a connection that is gone does nothing. Ids order by where the connection's
/// state lives: sending to many in order touches memory front to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Key);

impl ConnId {
    /// A number that identifies the connection in logs (its token).
    pub fn as_u64(self) -> u64 {
        self.0.to_token() as u64
    }
}

/// `c-INDEX.GENERATION` (`c-0.1`): the one form of a connection's id, in every log line
/// (`id=`), as the hub's client name, and in a program's `WEIR_CLIENT_ID`.
impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c-{}", self.0)
    }
}

/// A request as the handler gets it, in [`Handler::on_request`](crate::server::Handler::on_request)
/// (a plain request, with its whole body) and [`Handler::on_upgrade`](crate::server::Handler::on_upgrade)
/// (a valid WebSocket upgrade: no body).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The connection it came on.
    pub id: ConnId,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The method token, case-sensitive (RFC 9110 §9.1): `GET` for an upgrade.
    pub method: &'a str,
    /// The request-target (`/chat?room=1`).
    pub target: &'a str,
    /// The target's path: up to its `?`, and in the absolute-form what follows the authority.
    pub path: &'a str,
    /// The target after its first `?`, if it has one.
    pub query: Option<&'a str>,
    /// The `Host` header's value (empty in an HTTP/1.0 request without one).
    pub host: &'a [u8],
    /// The `Origin` header's value, which a server checks against the origins it serves
    /// (RFC 6455 §4.2.2, §10.2).
    pub origin: Option<&'a [u8]>,
    /// Every header line, in order.
    pub headers: &'a [Header<'a>],
    /// The whole body, de-chunked (empty for an upgrade).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The header lines, with lookups by name.
    pub fn fields(&self) -> Headers<'a, 'a> {
        Headers(self.headers)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.fields().get(name)
    }

    /// The subprotocols an upgrade offers, in the client's order of preference
    /// (RFC 6455 §4.1, §11.3.4); see [`UpgradeRequest::protocols`](crate::proto::handshake::UpgradeRequest::protocols).
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        handshake::offered_protocols(self.fields())
    }
}

/// Which application owns a connection or a child process, as the handler names it: given
/// with [`Context::set_tag`](crate::server::Context::set_tag) (or inherited, see [`Context::tag_new`](crate::server::Context::tag_new)) and read back with
/// [`Context::tag`](crate::server::Context::tag) in every callback, so a handler made of several applications routes each
/// callback without asking each application whether the id is its own. 0 ([`Tag::NONE`]) until
/// one is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tag(pub u8);

impl Tag {
    /// No tag given.
    pub const NONE: Self = Self(0);
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
    /// The body streams: only the head is sent now, the connection stays open, and the
    /// handler writes with [`Context::stream_write`](crate::server::Context::stream_write) (server-sent events).
    pub stream: bool,
    /// The answer comes later ([`Response::deferred`]): nothing is sent now.
    pub defer: bool,
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into().into_bytes(),
            stream: false,
            defer: false,
        }
    }

    /// The answer to a request still in its handshake when the server shuts down: 503 with
    /// `Retry-After` (RFC 9110 §15.6.4, §10.2.3), what the runtime answers a request that comes
    /// in while it drains and what an app answers one it deferred.
    pub fn shutting_down() -> Self {
        let mut r = Self::text(503, "server shutting down\n");
        r.headers.push(("Retry-After".into(), RETRY_AFTER.as_bytes().to_vec()));
        r
    }

    /// No answer yet: the handler gives it later with
    /// [`Context::respond`](crate::server::Context::respond) (after asking another server, say).
    /// Nothing more is read from the connection meanwhile; after the answer it is kept alive
    /// (requests pipelined behind it served in order) or closed, as after any answer.
    pub fn deferred() -> Self {
        Self { defer: true, ..Self::text(0, "") }
    }

    /// A response whose body streams (see [`Response::stream`]).
    pub fn streaming(status: u16, content_type: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Vec::new(),
            stream: true,
            defer: false,
        }
    }

    /// A response with a content type.
    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            stream: false,
            defer: false,
        }
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
    /// Decide later, with [`Context::accept`](crate::server::Context::accept) or [`Context::reject`](crate::server::Context::reject) (a proxy asks its upstream
    /// first). Nothing more is read from the client meanwhile; the handshake timeout still runs.
    Defer,
}

impl Decision {
    /// Accept with no subprotocol and no extra headers.
    pub fn accept() -> Self {
        Self::Accept { protocol: None, headers: Vec::new() }
    }
}

/// An outbound WebSocket connection to open ([`Context::connect`](crate::server::Context::connect)).
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
    /// How long the connect and the handshake may take (`None`: the handshake timeout).
    pub timeout: Option<std::time::Duration>,
}

/// What the server's 101 said to an outbound connection (RFC 6455 §4.1), for
/// [`crate::server::Handler::on_connected`].
#[derive(Debug, Clone, Copy)]
pub struct Connected<'a> {
    /// The subprotocol the server chose.
    pub protocol: Option<&'a str>,
    /// Every field of the 101 in order, the handshake's own (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) included: a relay passes on what is not its hop's. Bounded as any head
    /// (`max_head_len`, `max_headers`).
    pub headers: &'a [Header<'a>],
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

impl ConnectError {
    /// The status the server refused with, when it is one a client can be given in turn: a
    /// final status (RFC 9110 §15: 200-599). An interim one (1xx) answers nothing.
    pub fn refusal_status(&self) -> Option<u16> {
        match self {
            Self::Refused { status } if (200..=599).contains(status) => Some(*status),
            _ => None,
        }
    }
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
