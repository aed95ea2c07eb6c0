//! One connection as the runtime holds it: the socket, the protocol state, the stage it is in
//! (`state.rs`), the outbound queue, and what the loop tracks about readiness and closing.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::{NonZeroU32, NonZeroU64};
use std::rc::Rc;
use std::time::Duration;

use crate::proto::{Config as WsConfig, Connection, Role, State};
use crate::server::api::Tag;
use crate::server::outq::OutQueue;
use crate::server::pool::Pool;
use crate::server::state::ConnState;
use crate::server::timer::TimerId;
use crate::server::transport::Transport;

/// Below this, a read through the shared buffer costs no more (`Conn::direct_read_len`).
const MIN_DIRECT: usize = 64 << 10;

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) socket: Transport,
    /// The peer's address ([`Conn::peer`]).
    peer: Peer,
    pub(crate) ws: Connection,
    /// Which application owns the connection, as the handler named it (`Context::set_tag`).
    pub(crate) tag: Tag,
    /// Where the connection is in its life, with what only that stage needs (`state.rs`).
    pub(crate) state: ConnState,
    pub(crate) out: OutQueue,
    /// The armed timer and the deadline it was armed for.
    pub(crate) timer: Option<(TimerId, At)>,
    /// Readiness as last reported and not yet used up (edge-triggered).
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its side (or the socket failed).
    pub(crate) eof: bool,
    /// A slow reader, cut off: not read until an event says the peer closed its side (what is
    /// left to read then is bounded by the socket buffers).
    pub(crate) cut: bool,
    /// An event said the peer's side is closed: read on until EOF.
    pub(crate) hup: bool,
    /// This side shut down writing; the connection lingers until EOF or `linger_until`.
    pub(crate) shut_wr: bool,
    pub(crate) linger_until: Option<At>,
    /// Queued for a flush by the current batch of work.
    pub(crate) dirty: bool,
    /// Listed to be served again in the next pass of the loop (`Server::read_again`).
    pub(crate) scheduled: bool,
    /// A frame read in place ended with nothing after it read yet: the next read takes at most
    /// a frame header (`payload.rs`).
    pub(crate) header_next: bool,
    /// Why it ends, once known (`set_close`).
    pub(crate) close: Option<Box<Close>>,
    pub(crate) opened_at: At,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// The request's path (an outbound connection's target), for the log; shared by the
    /// connections on the same path (`Core::shared_path`). ([`Conn::path`].)
    pub(crate) path: Option<SharedPath>,
    /// The handler paused reading (flow control).
    pub(crate) paused: bool,
    /// Tell the handler (`on_drained`) once the queue is at or below this many bytes.
    /// (Plus one: `Option<NonZeroU32>` is 4 bytes.)
    pub(crate) drain_mark: Option<NonZeroU32>,
    /// Where the last pong queued ends, counted in bytes written (`bytes_out`): while it is
    /// unwritten, the control frames the core owes stay there (RFC 6455 §5.5.3: a newer ping's
    /// pong replaces the one owed), so a peer that pings and never reads holds one pong here.
    pub(crate) pong_end: u64,
    /// The code of a close frame queued and not yet written (0: none); counted when written.
    pub(crate) close_queued: u16,
    /// When output queued is dropped if none of it has been written by then (`--send-timeout`).
    pub(crate) send_deadline: Option<At>,
}

/// A request path as connections share it (`Core::shared_path`): a thin pointer, 8 bytes in
/// each connection where an `Rc<str>` takes 16.
#[allow(clippy::redundant_allocation)]
pub(crate) type SharedPath = Rc<Box<str>>;

/// A peer's address in 16 bytes, where a `SocketAddr` takes 32: an IPv4 one inline, an IPv6
/// one (with its flow info and scope id) boxed.
#[derive(Debug)]
pub(crate) enum Peer {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl Peer {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => Self::V4(a),
            SocketAddr::V6(a) => Self::V6(Box::new(a)),
        }
    }

    pub(crate) fn get(&self) -> SocketAddr {
        match self {
            Self::V4(a) => SocketAddr::V4(*a),
            Self::V6(a) => SocketAddr::V6(**a),
        }
    }
}

/// Why a connection ends: the close code to report (received, or sent when this end failed
/// the connection) and the reason of the close frame received, for the handler and the log.
#[derive(Debug)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: Box<str>,
    /// The socket error that ended a plain TCP connection (`on_tcp_closed`).
    pub(crate) error: Option<std::io::Error>,
}

/// An instant on the loop's clock (time since the server started) in 8 bytes, where a
/// `Duration` takes 16 and an `Option<Duration>` too: nanoseconds plus one, so that
/// `Option<At>` is 8 bytes as well. A connection holds four of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct At(NonZeroU64);

impl At {
    pub(crate) fn new(t: Duration) -> Self {
        Self(NonZeroU64::MIN.saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// `nanos` nanoseconds (saturating, as `new`).
    pub(crate) fn from_nanos(nanos: u64) -> Self {
        Self(NonZeroU64::MIN.saturating_add(nanos))
    }

    pub(crate) fn get(self) -> Duration {
        Duration::from_nanos(self.0.get() - 1)
    }
}

impl Conn {
    /// Records why the connection ends (the first reason wins), for the close log line and
    /// `on_close`.
    pub(crate) fn set_close(&mut self, code: u16, reason: &str) {
        if self.close.is_none() {
            self.close = Some(Box::new(Close { code, reason: Box::from(reason), error: None }));
        }
    }

    /// Records the socket error that ends the connection (the first reason wins).
    pub(crate) fn set_error(&mut self, e: std::io::Error) {
        if self.close.is_none() {
            let reason = Box::from(e.to_string());
            self.close = Some(Box::new(Close { code: 1006, reason, error: Some(e) }));
        }
    }

    /// Whether a socket error ended the connection ([`Conn::set_error`]).
    pub(crate) fn failed(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.error.is_some())
    }

    pub(crate) fn new(
        socket: Transport,
        peer: SocketAddr,
        role: Role,
        ws: WsConfig,
        state: ConnState,
        now: Duration,
    ) -> Self {
        Self {
            socket,
            peer: Peer::new(peer),
            ws: Connection::new(role, ws, now),
            tag: Tag::NONE,
            state,
            out: OutQueue::default(),
            timer: None,
            readable: false,
            writable: false,
            eof: false,
            cut: false,
            hup: false,
            shut_wr: false,
            linger_until: None,
            dirty: false,
            scheduled: false,
            header_next: false,
            close: None,
            opened_at: At::new(now),
            bytes_in: 0,
            bytes_out: 0,
            path: None,
            paused: false,
            drain_mark: None,
            pong_end: 0,
            close_queued: 0,
            send_deadline: None,
        }
    }

    /// The peer's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer.get()
    }

    /// The request's path (an outbound connection's target), for the log; empty before there
    /// is one.
    pub(crate) fn path(&self) -> &str {
        self.path.as_deref().map_or("", |p| p)
    }

    /// Whether the handler may write a streamed response to it: a body of a given length is
    /// written even to a client that half-closed.
    pub(crate) fn takes_stream_writes(&self) -> bool {
        self.state.body_owed() || (self.state.is_stream() && !self.eof)
    }

    /// How many bytes to read straight into the message being gathered, or 0 to read as usual
    /// (`payload.rs`). Once a large frame's header is in, the message gets its room at once
    /// (from `pool` if small enough), before any of its payload is read: then all of it, the
    /// first piece too, is read in place, none copied out of the loop's buffer.
    pub(crate) fn direct_read_len(&mut self, pool: &mut Pool) -> usize {
        // A compressed message is inflated piece by piece (`on_frames`), never read in place;
        // TLS: the record layer decrypts into the loop's buffer.
        let ConnState::Ws(w) = &mut self.state else { return 0 };
        if w.streaming() || self.ws.is_compressed() || self.socket.is_tls() {
            return 0;
        }
        let owed = usize::try_from(self.ws.payload_remaining()).unwrap_or(usize::MAX);
        if owed < MIN_DIRECT {
            return 0;
        }
        let declared = usize::try_from(self.ws.message_len()).unwrap_or(0);
        let room = w.msg_with_room(declared, pool);
        owed.min(room.capacity() - room.len())
    }

    /// An open WebSocket with nothing to write now and nothing changed since it was last
    /// settled (`dirty` is clear: every change made to a connection is settled where it is
    /// made, by `flush_dirty` or the timers): settling it before a read would find all as it
    /// was left, so the loop reads it at once (`on_ready`).
    pub(crate) fn only_to_read(&self) -> bool {
        matches!(self.state, ConnState::Ws(_))
            && self.ws.state() == State::Open
            && !self.eof
            && !self.dirty
            && (!self.writable || (self.out.is_empty() && !self.socket.wants_write()))
            && self.pong_end == 0
            && self.close_queued == 0
            && self.drain_mark.is_none()
    }

    /// The earliest instant the loop must look at this connection again. (Compared in
    /// nanoseconds: the loop asks after every message, and most times only to find the timer
    /// already armed early enough.)
    pub(crate) fn deadline(&self) -> Option<At> {
        let ws = self.ws.deadline_nanos().map(At::from_nanos);
        [self.linger_until, self.send_deadline, ws].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::net::TcpStream;

    // docs/architecture.md, Memory: what an open idle WebSocket costs is mostly its slot. (This
    // is the test build's size: mio's `TcpStream` is 16 bytes with debug assertions, 4 in a
    // release build, where `Conn` is 376.)
    #[test]
    fn a_connection_slot_stays_small() {
        assert!(core::mem::size_of::<Conn>() <= 392, "{}", core::mem::size_of::<Conn>());
        assert_eq!(core::mem::size_of::<Peer>(), 16);
        assert_eq!(core::mem::size_of::<ConnState>(), 24);
        assert_eq!(core::mem::size_of::<Option<SharedPath>>(), 8);
    }

    /// A server connection, open, over a loopback socket (never read here).
    fn open_ws() -> (Conn, std::net::TcpListener) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap());
        let socket = Transport::Plain(tcp);
        let state = ConnState::Ws(crate::server::state::Ws::default());
        let mut conn =
            Conn::new(socket, addr, Role::Server, WsConfig::default(), state, Duration::ZERO);
        conn.ws.open(Duration::ZERO);
        (conn, listener)
    }

    /// The header of a masked binary frame of `len` bytes (RFC 6455 §5.2), FIN set.
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    // docs/performance.md, 1 MiB: a large frame's payload is read in place from its first byte,
    // none of it copied out of the loop's buffer, so the message has its room once the header
    // alone is in (before, the room came with the first payload bytes, read into the loop's
    // buffer and copied).
    #[test]
    fn a_large_frame_is_read_in_place_from_its_first_payload_byte() {
        let (mut conn, _listener) = open_ws();
        let mut pool = Pool::new(16 << 10, 4);
        assert_eq!(conn.direct_read_len(&mut pool), 0, "between frames");
        let mut h = header(1 << 20);
        assert_eq!(conn.ws.handle_bytes(&mut h, Duration::ZERO).unwrap().0, h.len());
        assert_eq!(conn.direct_read_len(&mut pool), 1 << 20);
        // A frame under the threshold goes through the loop's buffer.
        let (mut conn, _listener) = open_ws();
        let mut h = header(MIN_DIRECT as u64 - 1);
        conn.ws.handle_bytes(&mut h, Duration::ZERO).unwrap();
        assert_eq!(conn.direct_read_len(&mut pool), 0);
    }

    #[test]
    fn a_peer_address_round_trips() {
        for a in ["127.0.0.1:80", "[::1]:443", "[fe80::1%7]:9"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(Peer::new(a).get(), a);
        }
    }

    #[test]
    fn an_instant_round_trips_and_orders() {
        for t in [0, 1, 999, 1_000_000_007, u64::from(u32::MAX) * 1000] {
            assert_eq!(At::new(Duration::from_nanos(t)).get(), Duration::from_nanos(t));
        }
        assert!(At::new(Duration::from_millis(1)) < At::new(Duration::from_millis(2)));
        assert_eq!(core::mem::size_of::<Option<At>>(), 8);
    }
}
