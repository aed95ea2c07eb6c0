//! One tunnel's streams, at either end. Each stream is linked to a WebSocket on this side (a
//! public client at the controller, a service at the agent), and the relay carries its messages
//! through the tunnel's [`Session`] within the stream's credit:
//!
//! - Socket to tunnel: each message piece goes as `MESSAGE` pieces (seed 003's one-byte types:
//!   1 text, 2 binary, 0 continuation, 8 close). What the credit does not take waits, and the
//!   socket is not read until a `WINDOW` lets it go, so a stream whose far side stops reading
//!   stalls alone. The socket is not read either while the tunnel's own queue is above
//!   [`TUNNEL_HIGH_WATER`] (the one buffer all streams share).
//! - Tunnel to socket: each piece is sent on at once; its credit is granted back (consumed)
//!   only once the socket's queue is at or below [`SOCKET_LOW_WATER`], so a client that stops
//!   reading stops its stream's credit, and only its stream's.
//! - Pings and pongs are answered per hop (each WebSocket answers its own peer, RFC 6455
//!   §5.5.2-3) and not relayed; a close goes through as a close, so each side answers the
//!   other's (manual-close mode, as the proxy does), then `FIN` once the socket is gone.

use std::collections::VecDeque;
use std::time::Duration;

use crate::proto::close::{encode_close_payload, parse_close_payload};
use crate::proto::frame::Opcode;
use crate::proto::tunnel::{
    Config, Event, MAX_CONTROL_LEN, MAX_MESSAGE_LEN, ResetCause, Role, SendError, Session,
    StreamId, TunnelError,
};
use crate::proto::utf8::Utf8Validator;
use crate::proto::{CloseCode, MessageKind};
use crate::server::stats::Histogram;
use crate::server::{ConnId, Context, IdMap, id_map};
use crate::warn;

/// Unsent bytes on the tunnel's WebSocket past which the sockets sending into it are not read.
pub const TUNNEL_HIGH_WATER: usize = 1 << 20;
/// The tunnel's queue at which they are read again.
pub const TUNNEL_LOW_WATER: usize = 256 << 10;
/// A linked socket's unsent bytes at or below which what its stream received is consumed
/// (its credit granted back to the sender).
pub const SOCKET_LOW_WATER: usize = 64 << 10;
/// Bytes read from this end's sockets that may wait for their streams' credit, all the
/// tunnel's streams together. Each stream holds at most one read (the loop's buffer, 256 KiB)
/// while its credit is spent, so without a cap a peer that grants no credit (window 0 in its
/// `OPEN`s or `OPEN_OK`s) makes this end hold 256 KiB per stream, 2.5 GB for 10,000 streams.
/// Past the cap a stream with more to wait is reset (`flow_control`), logged
/// (docs/security.md, the tunnel rows; docs/tunnel.md, flow control).
pub const MAX_WAITING: usize = 64 << 20;
/// The most one read of a socket gives (the loop's read buffer, `READ_BUFFER`).
const ONE_READ: u32 = 256 << 10;

/// A piece from a socket that the stream's credit has not taken yet.
#[derive(Debug)]
struct Piece {
    opcode: Opcode,
    data: Vec<u8>,
    /// How much of `data` new credit has already taken: the rest, `data[sent..]`, waits.
    sent: usize,
    last: bool,
}

/// What a waiting piece holds besides its bytes, counted against [`MAX_WAITING`]: its slot in
/// the queue and its allocation's rounding. Without it a read of empty messages (131,072 of
/// them in 256 KiB) waited as no bytes, ~8 MiB a stream past the cap.
const PIECE_OVERHEAD: usize = 64;

impl Piece {
    /// What the piece counts against [`MAX_WAITING`]: its whole allocation, held until the
    /// last of it is sent.
    fn held(&self) -> usize {
        self.data.len() + PIECE_OVERHEAD
    }
}

/// A stream and the socket it is linked to.
#[derive(Debug)]
struct Link {
    conn: ConnId,
    /// The socket is open (the client accepted, the service connected).
    open: bool,
    /// A message from the socket is part sent: its next piece is a continuation.
    sending: bool,
    /// The kind of the message from the tunnel being sent to the socket in pieces.
    receiving: Option<MessageKind>,
    /// A text message from the tunnel is checked as it is passed on: this end sends no
    /// invalid UTF-8, whatever the far side relays (RFC 6455 §5.6, §8.1).
    utf8: Utf8Validator,
    /// Pieces from the socket waiting for credit; the socket is not read while any wait.
    waiting: VecDeque<Piece>,
    /// Bytes received and passed to the socket whose credit is held until it drains.
    owed: usize,
    /// The socket's close went into the tunnel.
    close_sent: bool,
    /// The socket is not read because the tunnel's queue is full.
    held_by_tunnel: bool,
    /// When this end sent its `OPEN` (for the open latency).
    opened_at: Duration,
    /// A plain HTTP stream: its socket is a TCP byte stream, its bytes go as `DATA`.
    plain: bool,
    /// A plain stream's `FIN` goes once the bytes waiting for credit have gone.
    fin_pending: bool,
    /// The credit below which the socket is not read: min(one read, half the window the peer
    /// first granted), so a read never overruns the credit of a stream whose peer grants
    /// as docs/tunnel.md says (back in halves of its window).
    floor: u32,
}

/// What the application at either end does after a tunnel message: open a stream's socket,
/// answer the client of an accepted one, or end one that never opened.
#[derive(Debug)]
pub enum Up<'a> {
    /// The peer opened a stream to a target of this end (the agent connects its service, then
    /// [`Tunnel::accept`] or [`Tunnel::refuse`]).
    Opened {
        /// The stream.
        stream: StreamId,
        /// The target, one this end exposes.
        target: &'a str,
        /// The head is a WebSocket upgrade.
        websocket: bool,
        /// The request head.
        head: &'a [u8],
    },
    /// The peer accepted a stream this end opened (the controller answers its client).
    Accepted {
        /// The stream.
        stream: StreamId,
        /// Its client.
        conn: ConnId,
        /// The service's response head.
        head: &'a [u8],
    },
    /// Bytes of a plain stream from the peer: the application passes them on, then
    /// [`Tunnel::delivered`].
    Data {
        /// The stream.
        stream: StreamId,
        /// Its socket.
        conn: ConnId,
        /// The bytes.
        data: &'a [u8],
    },
    /// The peer finished sending on a plain stream.
    Fin {
        /// Its socket.
        conn: ConnId,
    },
    /// A stream whose socket had not opened ended (the client is refused, the service's
    /// connection closed).
    Failed {
        /// The socket.
        conn: ConnId,
        /// Why.
        cause: ResetCause,
    },
}

/// Counters of one tunnel, for `/metrics` and the logs.
#[derive(Debug, Default, Clone)]
pub struct TunnelStats {
    /// Streams opened (by either end).
    pub streams: u64,
    /// Payload bytes from the tunnel to this end's sockets.
    pub bytes_in: u64,
    /// Payload bytes from this end's sockets into the tunnel.
    pub bytes_out: u64,
    /// Resets by cause (index = cause 1-8; 0 counts every other value), either end's.
    pub resets: [u64; 9],
    /// From this end's `OPEN` to the peer's `OPEN_OK` (the service's 101 included).
    pub open_latency: Histogram,
}

/// One end of one tunnel: its session, its tunnel WebSocket and its streams' sockets.
#[derive(Debug)]
pub struct Tunnel {
    /// The tunnel's WebSocket.
    pub conn: ConnId,
    session: Session,
    links: IdMap<StreamId, Link>,
    by_conn: IdMap<ConnId, StreamId>,
    /// Where messages are encoded (one tunnel message at most).
    buf: Vec<u8>,
    /// Some sockets are not read until the tunnel's queue drains.
    full: bool,
    /// Bytes of all the pieces waiting for credit (at most [`MAX_WAITING`]).
    waiting: usize,
    /// What went through it.
    pub stats: TunnelStats,
}

impl Tunnel {
    /// A tunnel on the open WebSocket `conn`, for `role`, taking `OPEN`s for `targets`.
    pub fn new(conn: ConnId, role: Role, config: Config, targets: &[&str]) -> Self {
        Self {
            conn,
            session: Session::new(role, config, targets),
            links: id_map(),
            by_conn: id_map(),
            buf: vec![0; MAX_MESSAGE_LEN],
            full: false,
            waiting: 0,
            stats: TunnelStats::default(),
        }
    }

    /// Streams with a socket linked now.
    pub fn open_streams(&self) -> usize {
        self.links.len()
    }

    /// Bytes read from this end's sockets that wait for their streams' credit now.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// A tunnel message received: the streams' events are acted on here, and what the
    /// application must do is returned.
    ///
    /// # Errors
    /// The peer broke the tunnel's rules: close the tunnel with the error's code, then
    /// [`Tunnel::end`].
    pub fn handle<'a>(
        &mut self,
        ctx: &mut Context<'_>,
        msg: &'a [u8],
    ) -> Result<Option<Up<'a>>, TunnelError> {
        let event = self.session.handle_message(msg)?;
        let up = event.and_then(|e| self.on_event(ctx, e));
        self.flush(ctx);
        Ok(up)
    }

    fn on_event<'a>(&mut self, ctx: &mut Context<'_>, event: Event<'a>) -> Option<Up<'a>> {
        match event {
            Event::Opened { stream, target, websocket, head } => {
                self.stats.streams += 1;
                Some(Up::Opened { stream, target, websocket, head })
            }
            Event::Refused { cause, .. } => {
                self.count_reset(cause);
                None
            }
            Event::Accepted { stream, head } => {
                let Some(link) = self.links.get(&stream) else {
                    // Its socket is gone: the stream is not wanted any more.
                    return self.reset(ctx, stream, ResetCause::CANCEL);
                };
                self.stats.open_latency.observe(ctx.now().saturating_sub(link.opened_at));
                let (conn, plain) = (link.conn, link.plain);
                let floor = self.floor(stream);
                if let Some(l) = self.links.get_mut(&stream) {
                    l.floor = floor;
                }
                if plain {
                    // A request body that came before the credit goes now.
                    self.send_waiting(ctx, stream);
                }
                Some(Up::Accepted { stream, conn, head })
            }
            Event::Data { stream, data } => match self.links.get(&stream) {
                Some(l) if l.plain => {
                    self.stats.bytes_in += data.len() as u64;
                    Some(Up::Data { stream, conn: l.conn, data })
                }
                // WebSocket streams carry messages only.
                _ => {
                    let _ = self.session.consume(stream, data.len());
                    self.reset(ctx, stream, ResetCause::PROTOCOL)
                }
            },
            // A plain stream carries HTTP bytes only (docs/tunnel.md, the wire): a relayed
            // message on one is a broken peer's, and ends the stream as DATA on a WebSocket
            // stream does.
            Event::Relay { stream, data, .. }
                if self.links.get(&stream).is_some_and(|l| l.plain) =>
            {
                let _ = self.session.consume(stream, 1 + data.len());
                self.reset(ctx, stream, ResetCause::PROTOCOL)
            }
            Event::Relay { stream, opcode, more, data } => {
                self.relay_in(ctx, stream, opcode, more, data);
                None
            }
            Event::Window { stream, .. } => {
                self.send_waiting(ctx, stream);
                None
            }
            Event::Fin { stream } => self.fin_in(ctx, stream),
            Event::Reset { stream, cause, .. } => {
                self.count_reset(cause);
                self.unlink_ended(ctx, stream, cause)
            }
        }
    }

    fn count_reset(&mut self, cause: ResetCause) {
        let i = usize::from(cause.0);
        self.stats.resets[if i < self.stats.resets.len() { i } else { 0 }] += 1;
    }

    /// A piece of a relayed message, on to the stream's socket.
    fn relay_in(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        opcode: Opcode,
        more: bool,
        data: &[u8],
    ) {
        let credit = 1 + data.len();
        let Some(link) = self.links.get_mut(&stream) else {
            // The socket is gone: the bytes need no credit back, the stream is ending.
            let _ = self.session.consume(stream, credit);
            return;
        };
        self.stats.bytes_in += data.len() as u64;
        let kind = match opcode {
            Opcode::Text => MessageKind::Text,
            Opcode::Binary => MessageKind::Binary,
            Opcode::Continuation => link.receiving.unwrap_or(MessageKind::Binary),
            Opcode::Close => {
                // RFC 6455 §5.5.1: the other side's close, passed on as its code and reason.
                let (code, reason) = match parse_close_payload(data) {
                    Ok((code, reason)) => (code.unwrap_or(CloseCode::NORMAL), reason),
                    Err(_) => (CloseCode::PROTOCOL_ERROR, "bad close through the tunnel"),
                };
                ctx.close(link.conn, code, reason);
                let _ = self.session.consume(stream, credit);
                return;
            }
            // Ping and pong are per hop: each WebSocket answers its own peer.
            _ => {
                let _ = self.session.consume(stream, credit);
                return;
            }
        };
        if opcode != Opcode::Continuation {
            link.utf8 = Utf8Validator::new();
        }
        let text_ok = kind == MessageKind::Binary
            || (link.utf8.feed(data).is_ok() && (more || link.utf8.is_complete()));
        if !text_ok {
            // The far side relayed text that is not UTF-8: the stream ends, and the socket
            // gets the code a WebSocket gets for such a message (RFC 6455 §7.4.1).
            let conn = link.conn;
            let _ = self.session.consume(stream, credit);
            if let Ok(len) = self.session.reset(stream, ResetCause::PROTOCOL, &mut self.buf) {
                self.write(ctx, len);
                self.count_reset(ResetCause::PROTOCOL);
            }
            self.unlink(stream);
            ctx.close(conn, CloseCode::INVALID_PAYLOAD, "invalid UTF-8 through the tunnel");
            return;
        }
        link.receiving = more.then_some(kind);
        if ctx.send_piece(link.conn, kind, data, !more).is_err() {
            // The socket is closing: what it cannot take is dropped with it.
            let _ = self.session.consume(stream, credit);
            return;
        }
        self.credit_back(ctx, stream, credit);
    }

    /// `n` bytes received on `stream` went to its socket: their credit goes back now, or as
    /// the socket drains to [`SOCKET_LOW_WATER`].
    fn credit_back(&mut self, ctx: &mut Context<'_>, stream: StreamId, n: usize) {
        let Some(link) = self.links.get_mut(&stream) else {
            let _ = self.session.consume(stream, n);
            return;
        };
        if link.owed > 0 || ctx.queued_bytes(link.conn) > SOCKET_LOW_WATER {
            link.owed += n;
            ctx.notify_drained(link.conn, SOCKET_LOW_WATER);
        } else {
            let _ = self.session.consume(stream, n);
        }
    }

    /// The far side's socket is gone and it sends nothing more: this side's socket is closed
    /// (if the far side's close did not already do it) and the stream finished this way too.
    fn fin_in<'a>(&mut self, ctx: &mut Context<'_>, stream: StreamId) -> Option<Up<'a>> {
        let link = self.links.get(&stream)?;
        if link.plain {
            // The application says when the plain stream ends (its socket stays meanwhile);
            // a stream finished both ways is over.
            let conn = link.conn;
            if !self.session.is_live(stream) {
                self.unlink(stream);
            }
            return Some(Up::Fin { conn });
        }
        if link.open {
            ctx.close(link.conn, CloseCode::GOING_AWAY, "the other side of the tunnel went away");
        }
        self.finish(ctx, stream);
        let link = self.unlink(stream)?;
        (!link.open).then_some(Up::Failed { conn: link.conn, cause: ResetCause::CANCEL })
    }

    /// A stream ended at once: its socket is closed, or reported if it never opened.
    fn unlink_ended<'a>(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        cause: ResetCause,
    ) -> Option<Up<'a>> {
        let link = self.unlink(stream)?;
        if !link.open || link.plain {
            // A plain stream's socket is the application's to answer or cut.
            return Some(Up::Failed { conn: link.conn, cause });
        }
        let code = if cause == ResetCause::SHUTDOWN {
            CloseCode::GOING_AWAY
        } else {
            CloseCode::INTERNAL_ERROR
        };
        ctx.close(link.conn, code, &format!("tunnel stream reset: {}", cause.name()));
        None
    }

    fn unlink(&mut self, stream: StreamId) -> Option<Link> {
        let link = self.links.remove(&stream)?;
        self.by_conn.remove(&link.conn);
        self.waiting -= link.waiting.iter().map(Piece::held).sum::<usize>();
        Some(link)
    }

    /// Opens a stream to the peer's `target` for the socket `conn` (still to be answered);
    /// [`Up::Accepted`] or [`Up::Failed`] follows. A `plain` HTTP stream's `conn` is a TCP
    /// socket, its request's body following with [`Tunnel::data`] and [`Tunnel::fin`].
    ///
    /// # Errors
    /// The stream cap is reached, the head is too long, or the tunnel failed.
    pub fn open(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        target: &str,
        head: &[u8],
        plain: bool,
    ) -> Result<StreamId, SendError> {
        let (stream, len) =
            self.session.open_stream(target, !plain, head, ctx.now(), &mut self.buf)?;
        self.write(ctx, len);
        self.link(stream, conn, ctx.now(), plain);
        self.stats.streams += 1;
        Ok(stream)
    }

    /// Links a plain stream the peer opened to the TCP socket being connected for it.
    pub fn attach_plain(&mut self, ctx: &Context<'_>, stream: StreamId, conn: ConnId) {
        self.link(stream, conn, ctx.now(), true);
    }

    /// Bytes from a plain stream's socket, into its stream as `DATA` within its credit; what
    /// the credit does not take waits, and the socket is not read until a `WINDOW`.
    pub fn data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &[u8]) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        if !data.is_empty() {
            self.send_or_wait(ctx, stream, Opcode::Binary, data, false);
        }
    }

    /// A plain stream's socket sends no more: `FIN`, after the bytes waiting for credit. The
    /// stream stays linked until [`Tunnel::release`].
    pub fn fin(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        let Some(link) = self.links.get_mut(&stream) else { return };
        link.fin_pending = true;
        if link.waiting.is_empty() {
            self.finish(ctx, stream);
        }
    }

    /// A plain stream's socket is gone: the stream is reset (`cancel`), unless the socket had
    /// finished sending ([`Tunnel::fin`]), whose bytes still waiting for credit go on.
    pub fn release_if_cut(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        if !self.links.get(&stream).is_some_and(|l| l.fin_pending) {
            self.release(ctx, conn);
        }
    }

    /// Bytes of [`Up::Data`] were passed to the socket: their credit goes back once the socket
    /// has drained to [`SOCKET_LOW_WATER`].
    pub fn delivered(&mut self, ctx: &mut Context<'_>, stream: StreamId, n: usize) {
        self.credit_back(ctx, stream, n);
        self.flush(ctx);
    }

    /// A plain stream's exchange is over (or its socket gone): the stream is unlinked, and
    /// reset (`cancel`) unless both sides finished it. The socket is the caller's.
    pub fn release(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        if self.session.is_live(stream) {
            if let Ok(len) = self.session.reset(stream, ResetCause::CANCEL, &mut self.buf) {
                self.write(ctx, len);
                self.count_reset(ResetCause::CANCEL);
            }
        }
        self.unlink(stream);
    }

    /// Links a stream the peer opened to the socket being opened for it.
    pub fn attach(&mut self, ctx: &Context<'_>, stream: StreamId, conn: ConnId) {
        self.link(stream, conn, ctx.now(), false);
    }

    fn link(&mut self, stream: StreamId, conn: ConnId, now: Duration, plain: bool) {
        let link = Link {
            conn,
            open: false,
            sending: false,
            receiving: None,
            utf8: Utf8Validator::new(),
            waiting: VecDeque::new(),
            owed: 0,
            close_sent: false,
            held_by_tunnel: false,
            opened_at: now,
            plain,
            fin_pending: false,
            floor: self.floor(stream),
        };
        self.links.insert(stream, link);
        self.by_conn.insert(conn, stream);
    }

    /// The socket of a stream this end opened is open (the client was answered).
    pub fn opened(&mut self, stream: StreamId) {
        if let Some(l) = self.links.get_mut(&stream) {
            l.open = true;
        }
    }

    /// Accepts a stream the peer opened, its socket now open, with the response `head`.
    pub fn accept(&mut self, ctx: &mut Context<'_>, stream: StreamId, head: &[u8]) {
        match self.session.accept(stream, head, &mut self.buf) {
            Ok(len) => {
                self.write(ctx, len);
                self.opened(stream);
            }
            Err(_) => {
                // The stream is gone (reset meanwhile): so is the socket's reason to be.
                if let Some(link) = self.unlink(stream) {
                    ctx.close(link.conn, CloseCode::GOING_AWAY, "the tunnel stream ended");
                }
            }
        }
    }

    /// Answers a stream the peer opened with a head that ends it (a refusal relayed), then
    /// `FIN`: the socket never opened.
    pub fn answer(&mut self, ctx: &mut Context<'_>, stream: StreamId, head: &[u8]) {
        if let Ok(len) = self.session.accept(stream, head, &mut self.buf) {
            self.write(ctx, len);
            self.finish(ctx, stream);
        }
        self.unlink(stream);
    }

    /// Ends a stream at once (`RESET cause`), its socket unlinked (not closed: the caller
    /// says what happens to it).
    pub fn refuse(&mut self, ctx: &mut Context<'_>, stream: StreamId, cause: ResetCause) {
        if let Ok(len) = self.session.reset(stream, cause, &mut self.buf) {
            self.write(ctx, len);
            self.count_reset(cause);
        }
        self.unlink(stream);
    }

    fn reset<'a>(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        cause: ResetCause,
    ) -> Option<Up<'a>> {
        if let Ok(len) = self.session.reset(stream, cause, &mut self.buf) {
            self.write(ctx, len);
            self.count_reset(cause);
        }
        self.unlink_ended(ctx, stream, cause)
    }

    fn finish(&mut self, ctx: &mut Context<'_>, stream: StreamId) {
        if let Ok(len) = self.session.finish(stream, &mut self.buf) {
            self.write(ctx, len);
        }
        if self.links.get(&stream).is_some_and(|l| l.plain) && !self.session.is_live(stream) {
            // A plain stream finished both ways is over.
            self.unlink(stream);
        }
    }

    /// A piece of a message from a linked socket, into its stream.
    pub fn piece(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        let Some(link) = self.links.get_mut(&stream) else { return };
        let opcode = match (link.sending, kind) {
            (true, _) => Opcode::Continuation,
            (false, MessageKind::Text) => Opcode::Text,
            (false, MessageKind::Binary) => Opcode::Binary,
        };
        link.sending = !fin;
        self.send_or_wait(ctx, stream, opcode, data, fin);
    }

    /// A linked socket's close frame: on through the tunnel, for the far side to answer.
    pub fn peer_close(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        self.send_close(ctx, stream, code, reason);
    }

    fn send_close(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        code: CloseCode,
        reason: &str,
    ) {
        let Some(link) = self.links.get_mut(&stream) else { return };
        if std::mem::replace(&mut link.close_sent, true) {
            return;
        }
        // A code that may not be sent (1005: none; 1006: gone without one) is not relayed as
        // such (RFC 6455 §7.4.1): none becomes 1000, gone becomes 1011.
        let code = match code {
            c if c.is_valid_on_wire() => c,
            CloseCode::NO_STATUS => CloseCode::NORMAL,
            _ => CloseCode::INTERNAL_ERROR,
        };
        let mut payload = [0u8; 125];
        let n = encode_close_payload(Some(code), reason, &mut payload).unwrap_or(0);
        self.send_or_wait(ctx, stream, Opcode::Close, &payload[..n], true);
    }

    /// A linked socket is gone: its close goes into the tunnel if it has not, then `FIN`; a
    /// stream with pieces still waiting for credit is reset (`cancel`) instead.
    pub fn closed(&mut self, ctx: &mut Context<'_>, conn: ConnId, code: CloseCode, reason: &str) {
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        self.send_close(ctx, stream, code, reason);
        let waiting = self.links.get(&stream).is_some_and(|l| !l.waiting.is_empty());
        if waiting {
            if let Ok(len) = self.session.reset(stream, ResetCause::CANCEL, &mut self.buf) {
                self.write(ctx, len);
                self.count_reset(ResetCause::CANCEL);
            }
        } else {
            self.finish(ctx, stream);
        }
        self.unlink(stream);
    }

    /// A socket's queue drained to the mark asked: the tunnel's (its held sockets are read
    /// again), or a linked socket's (its stream's credit is granted back).
    pub fn drained(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        if conn == self.conn {
            self.full = false;
            for (&stream, link) in self.links.iter_mut().filter(|(_, l)| l.held_by_tunnel) {
                link.held_by_tunnel = false;
                let credit = self.session.send_credit(stream).unwrap_or(0);
                if link.waiting.is_empty() && credit >= link.floor {
                    ctx.resume_reading(link.conn);
                }
            }
            return;
        }
        let Some(&stream) = self.by_conn.get(&conn) else { return };
        let Some(link) = self.links.get_mut(&stream) else { return };
        let owed = std::mem::take(&mut link.owed);
        let _ = self.session.consume(stream, owed);
        self.flush(ctx);
    }

    /// The credit below which `stream`'s socket is not read ([`Link::floor`]), from the
    /// credit the peer granted it (its window, when it has just opened or accepted it).
    fn floor(&self, stream: StreamId) -> u32 {
        self.session.send_credit(stream).map_or(0, |c| (c / 2).min(ONE_READ))
    }

    /// `stream`'s socket may be read: nothing of it waits, and its credit takes a whole read.
    fn readable(&self, stream: StreamId, link: &Link) -> bool {
        link.waiting.is_empty() && self.session.send_credit(stream).unwrap_or(0) >= link.floor
    }

    /// Sends what the session owes the peer (`WINDOW`, `RESET`).
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        let mut out = [0u8; MAX_CONTROL_LEN];
        while let Some(n) = self.session.poll_transmit(&mut out) {
            let _ = ctx.send(self.conn, MessageKind::Binary, &out[..n]);
        }
    }

    /// Open deadlines passed by now: those streams end (`open_timeout`); their sockets are
    /// returned to be refused.
    pub fn tick(&mut self, ctx: &mut Context<'_>, now: Duration) -> Vec<(ConnId, ResetCause)> {
        let mut failed = Vec::new();
        while let Some(Event::Reset { stream, cause, .. }) = self.session.handle_timeout(now) {
            self.count_reset(cause);
            if let Some(Up::Failed { conn, cause }) = self.unlink_ended(ctx, stream, cause) {
                failed.push((conn, cause));
            }
        }
        self.flush(ctx);
        failed
    }

    /// The tunnel is gone (closed, failed, replaced, shutting down): every open socket is
    /// closed with `code` and `reason`; the ones that never opened are returned to be refused.
    pub fn end(&mut self, ctx: &mut Context<'_>, code: CloseCode, reason: &str) -> Vec<ConnId> {
        let mut unopened = Vec::new();
        for (_, link) in self.links.drain() {
            if link.open && link.plain {
                ctx.tcp_close(link.conn);
            } else if link.open {
                ctx.close(link.conn, code, reason);
            } else {
                unopened.push(link.conn);
            }
        }
        self.by_conn.clear();
        self.waiting = 0;
        unopened
    }

    /// Sends a piece within the stream's credit; what is left waits (the socket not read) for
    /// a `WINDOW`.
    fn send_or_wait(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        opcode: Opcode,
        data: &[u8],
        last: bool,
    ) {
        let Some(link) = self.links.get(&stream) else { return };
        let (queued, plain) = (!link.waiting.is_empty(), link.plain);
        let left = if queued {
            Some((opcode, data))
        } else {
            self.push(ctx, stream, plain, opcode, data, last)
        };
        let Some(link) = self.links.get_mut(&stream) else { return };
        if let Some((opcode, rest)) = left {
            if self.waiting + rest.len() + PIECE_OVERHEAD > MAX_WAITING {
                self.overflow(ctx, stream, rest.len());
                return;
            }
            let piece = Piece { opcode, data: rest.to_vec(), sent: 0, last };
            self.waiting += piece.held();
            link.waiting.push_back(piece);
            ctx.pause_reading(link.conn);
        } else if self.session.send_credit(stream).unwrap_or(0) < link.floor {
            // docs/tunnel.md, flow control in the binary: the next read might overrun the
            // credit and wait; the socket is read again once a `WINDOW` brings the credit
            // back (the peer grants in halves of its window, at least the floor).
            ctx.pause_reading(link.conn);
        }
        if ctx.queued_bytes(self.conn) > TUNNEL_HIGH_WATER {
            link.held_by_tunnel = true;
            ctx.pause_reading(link.conn);
            if !self.full {
                self.full = true;
                ctx.notify_drained(self.conn, TUNNEL_LOW_WATER);
            }
        }
    }

    /// `more` bytes from `stream`'s socket would wait for credit past [`MAX_WAITING`]: the
    /// stream is reset (`flow_control`: its peer withholds the credit this end would need),
    /// logged, and its socket closed (a plain one cut, a WebSocket one `1011`). This keeps
    /// docs/security.md's bound on what a tunnel holds while its peer grants no credit.
    fn overflow(&mut self, ctx: &mut Context<'_>, stream: StreamId, more: usize) {
        warn!(
            "tunnel stream reset: too much waits for credit",
            stream = stream,
            bytes = more,
            waiting = self.waiting,
            cap = MAX_WAITING
        );
        if let Ok(len) = self.session.reset(stream, ResetCause::FLOW_CONTROL, &mut self.buf) {
            self.write(ctx, len);
            self.count_reset(ResetCause::FLOW_CONTROL);
        }
        let Some(link) = self.unlink(stream) else { return };
        if link.plain {
            ctx.tcp_close(link.conn);
        } else {
            let reason = "tunnel stream reset: flow_control";
            ctx.close(link.conn, CloseCode::INTERNAL_ERROR, reason);
        }
    }

    /// Pieces waiting on a stream, sent as far as its new credit goes.
    fn send_waiting(&mut self, ctx: &mut Context<'_>, stream: StreamId) {
        let plain = self.links.get(&stream).is_some_and(|l| l.plain);
        while let Some(mut piece) = self.links.get_mut(&stream).and_then(|l| l.waiting.pop_front())
        {
            self.waiting -= piece.held();
            if let Some((opcode, rest)) =
                self.push(ctx, stream, plain, piece.opcode, &piece.data[piece.sent..], piece.last)
            {
                // The rest waits where it is (no copy per grant of credit).
                piece.sent = piece.data.len() - rest.len();
                piece.opcode = opcode;
                if let Some(l) = self.links.get_mut(&stream) {
                    self.waiting += piece.held();
                    l.waiting.push_front(piece);
                }
                return;
            }
        }
        if self.links.get(&stream).is_some_and(|l| l.fin_pending) {
            self.finish(ctx, stream);
        }
        if let Some(l) = self.links.get(&stream) {
            if !l.held_by_tunnel && self.readable(stream, l) {
                ctx.resume_reading(l.conn);
            }
        }
    }

    /// Sends as much of a piece as the credit takes, in tunnel messages (`DATA` on a `plain`
    /// stream); returns what is left (with the opcode it goes on with), `None` when all went.
    fn push<'d>(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        plain: bool,
        mut opcode: Opcode,
        mut data: &'d [u8],
        last: bool,
    ) -> Option<(Opcode, &'d [u8])> {
        loop {
            let sent = if plain {
                self.session.send_data(stream, data, &mut self.buf)
            } else {
                self.session.send_relay(stream, opcode, data, last, &mut self.buf)
            };
            let sent = match sent {
                Ok(s) => s,
                // A plain request's body before the `OPEN_OK` (which brings the credit).
                Err(SendError::NotAccepted) => return Some((opcode, data)),
                // The stream ended (a RESET crossed it): the piece goes nowhere.
                Err(_) => return None,
            };
            if sent.len == 0 {
                return Some((opcode, data));
            }
            self.write(ctx, sent.len);
            self.stats.bytes_out += sent.taken as u64;
            data = &data[sent.taken..];
            if opcode.is_control() || data.is_empty() {
                return None;
            }
            if !plain {
                opcode = Opcode::Continuation;
            }
        }
    }

    fn write(&mut self, ctx: &mut Context<'_>, len: usize) {
        let _ = ctx.send(self.conn, MessageKind::Binary, &self.buf[..len]);
    }
}
