//! One end of a tunnel: the streams multiplexed over its WebSocket, their credit, their limits and
//! their open deadlines. Messages in, events out, never a socket or a clock.
//!
//! # Calling order
//!
//! 1. [`Session::new`] once the tunnel's WebSocket is open, with this end's [`Role`], its
//!    [`Config`] and the target names it exposes (none for a controller).
//! 2. Each binary WebSocket message received: [`Session::handle_message`]. It returns at most one
//!    [`Event`], which borrows the message. An error fails the whole tunnel: close the WebSocket
//!    with [`TunnelError::close_code`].
//! 3. After every call that may owe the peer something (`handle_message`, `handle_timeout`,
//!    `consume`): [`Session::poll_transmit`] until `None`, and send each as a binary message.
//! 4. Sending: [`Session::open_stream`], [`Session::accept`], [`Session::send_data`],
//!    [`Session::send_relay`], [`Session::finish`] and [`Session::reset`] encode into the
//!    caller's buffer. `send_data` and `send_relay` take no more than the stream's credit: when
//!    they take nothing, wait for [`Event::Window`] on that stream.
//! 5. Receiving: when the bytes of an [`Event::Data`] or [`Event::Relay`] have been passed on,
//!    [`Session::consume`] them; the window is granted back as they are consumed, so a stream
//!    whose receiver does not consume stalls, and only that stream.
//! 6. Time: call [`Session::handle_timeout`] (until `None`) when [`Session::poll_timeout`] has
//!    passed.
//!
//! # A stream's life
//!
//! ```text
//!  opener: open_stream --OPEN--> receiver: Event::Opened --accept--OPEN_OK--> opener: Accepted
//!                                                        --reset---RESET----> opener: Reset
//!  both ways, once accepted: DATA / MESSAGE (within credit), WINDOW, then FIN (half-close)
//!  the stream is forgotten when FIN went both ways, or at a RESET from either end
//! ```
//!
//! The opener may send `FIN` before the `OPEN_OK` (a request with no body), nothing else: it has
//! no credit until the `OPEN_OK` grants it.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use core::fmt;
use core::time::Duration;

use crate::proto::close::CloseCode;
use crate::proto::error::BufferTooSmall;
use crate::proto::frame::Opcode;
use crate::proto::tunnel::codec::{
    self, HEADER_LEN, MAX_CONTROL_LEN, MAX_PAYLOAD, MAX_WINDOW, Message, ResetCause, StreamId,
    WireError,
};

/// Which end of the tunnel this is; it decides which stream ids this end allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The public end, which the agent dials; it opens odd stream ids (1, 3, 5, ...).
    Controller,
    /// The end behind NAT, next to the services; it opens even stream ids (2, 4, 6, ...).
    Agent,
}

impl Role {
    /// The first id this role allocates.
    const fn first_id(self) -> u32 {
        match self {
            Self::Controller => 1,
            Self::Agent => 2,
        }
    }
}

/// The limits of one end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Live streams at most, both directions together; a peer's `OPEN` past it gets
    /// `RESET refused`, and [`Session::open_stream`] fails.
    pub max_streams: u32,
    /// The credit this end grants each stream for what it receives, at most [`MAX_WINDOW`]. It
    /// is granted again as the application consumes.
    pub window: u32,
    /// How long an `OPEN` this end sent may wait for its answer before the stream is reset
    /// (`open_timeout`). `None`: no deadline.
    pub open_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_streams: 10_000, window: 2 << 20, open_timeout: Some(Duration::from_secs(10)) }
    }
}

/// What one message (or a deadline) did to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The peer opened a stream to one of this end's targets: answer it with
    /// [`Session::accept`] or [`Session::reset`].
    Opened {
        /// The stream.
        stream: StreamId,
        /// The target, one of those this end exposes.
        target: &'a str,
        /// The head is a WebSocket upgrade.
        websocket: bool,
        /// The request head.
        head: &'a [u8],
    },
    /// The peer's `OPEN` was refused (the stream cap, or a target not exposed); the `RESET` is
    /// queued and the stream never existed.
    Refused {
        /// The id the peer used.
        stream: StreamId,
        /// [`ResetCause::REFUSED`] or [`ResetCause::UNKNOWN_TARGET`].
        cause: ResetCause,
    },
    /// The peer accepted a stream this end opened.
    Accepted {
        /// The stream.
        stream: StreamId,
        /// The response head.
        head: &'a [u8],
    },
    /// Body bytes; [`Session::consume`] them once passed on.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: &'a [u8],
    },
    /// A piece of a relayed WebSocket message; [`Session::consume`] `1 + data.len()` once
    /// passed on. The pieces of a message come in order: text or binary, then continuations
    /// until one without `more`; close, ping and pong may come between them, whole.
    Relay {
        /// The stream.
        stream: StreamId,
        /// Text, binary, continuation, close, ping or pong.
        opcode: Opcode,
        /// More pieces of this message follow.
        more: bool,
        /// The piece's payload.
        data: &'a [u8],
    },
    /// The peer granted credit: [`Session::send_data`] may take more on this stream.
    Window {
        /// The stream.
        stream: StreamId,
        /// The credit now held.
        credit: u32,
    },
    /// The peer sends nothing more on this stream.
    Fin {
        /// The stream.
        stream: StreamId,
    },
    /// The stream ended at once, both ways, and is forgotten.
    Reset {
        /// The stream.
        stream: StreamId,
        /// Why.
        cause: ResetCause,
        /// The peer reset it; `false`: this end did (a deadline, or the peer broke a stream
        /// rule), and the `RESET` is queued.
        by_peer: bool,
    },
}

impl Event<'_> {
    /// The stream the event is about.
    pub const fn stream(&self) -> StreamId {
        match *self {
            Self::Opened { stream, .. }
            | Self::Refused { stream, .. }
            | Self::Accepted { stream, .. }
            | Self::Data { stream, .. }
            | Self::Relay { stream, .. }
            | Self::Window { stream, .. }
            | Self::Fin { stream }
            | Self::Reset { stream, .. } => stream,
        }
    }
}

/// A rule the peer broke that fails the whole tunnel: close its WebSocket with
/// [`TunnelError::close_code`]. Stream-level faults (credit overrun, data after `FIN`) reset
/// only the stream and are [`Event::Reset`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelError {
    /// The message breaks the wire format.
    Wire(WireError),
    /// An `OPEN` with an id of this end's parity (each end allocates its own).
    WrongParity,
    /// An `OPEN` with an id not above every id the peer opened before (ids are never reused).
    StreamIdNotIncreasing,
    /// A message for a stream id that was never opened.
    UnknownStream,
    /// An `OPEN_OK` for a stream the peer opened, or one already accepted.
    UnexpectedOpenOk,
    /// The peer made this end owe more `RESET`s than twice the stream cap: it opens streams
    /// and does not read the answers.
    TooManyPendingResets,
}

impl TunnelError {
    /// The WebSocket close code the tunnel is closed with (RFC 6455 §7.4.1).
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::TooManyPendingResets => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, fit for a close frame and a log line.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Wire(e) => e.reason(),
            Self::WrongParity => "tunnel stream opened with the other end's id parity",
            Self::StreamIdNotIncreasing => "tunnel stream id reused or not increasing",
            Self::UnknownStream => "tunnel message for a stream never opened",
            Self::UnexpectedOpenOk => "tunnel OPEN_OK for a stream not waiting for one",
            Self::TooManyPendingResets => "tunnel peer opens streams without reading resets",
        }
    }

    /// A stable snake_case name, for counters and structured logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Wire(e) => e.name(),
            Self::WrongParity => "wrong_parity",
            Self::StreamIdNotIncreasing => "stream_id_not_increasing",
            Self::UnknownStream => "unknown_stream",
            Self::UnexpectedOpenOk => "unexpected_open_ok",
            Self::TooManyPendingResets => "too_many_pending_resets",
        }
    }
}

impl From<WireError> for TunnelError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A call this end made that the stream's state does not allow (a bug in the driver, or a race
/// with a `RESET` it has not seen yet); nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The tunnel failed; nothing more is sent.
    Failed,
    /// No live stream has this id.
    UnknownStream,
    /// The stream is not accepted yet (or not opened by the peer, for `accept`).
    NotAccepted,
    /// The stream was already accepted, or this end opened it.
    NotAcceptable,
    /// This end already sent `FIN` on the stream.
    Finished,
    /// The stream cap is reached.
    TooManyStreams,
    /// Every stream id of this end's parity was used: reconnect the tunnel.
    IdsExhausted,
    /// The target name is not 1 to 64 bytes of `A-Z a-z 0-9 . _ -`.
    BadTarget,
    /// The head (or a relayed control payload) does not fit one message.
    TooLong,
    /// A continuation with no relayed message open, or a new one while one is open.
    BadSequence,
    /// More bytes consumed than were received and not yet consumed.
    OverConsumed,
    /// The output buffer is too small.
    BufferTooSmall(BufferTooSmall),
}

/// What [`Session::send_data`] or [`Session::send_relay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    /// How many bytes of the input the message carries (0: no credit, nothing written).
    pub taken: usize,
    /// The message's length in the output buffer.
    pub len: usize,
}

// Stream flags.
const LOCAL: u8 = 1;
const ACCEPTED: u8 = 2;
const SENT_FIN: u8 = 4;
const RECV_FIN: u8 = 8;
const RECV_IN_MESSAGE: u8 = 16;
const SEND_IN_MESSAGE: u8 = 32;
const GRANT_QUEUED: u8 = 64;

/// One live stream: 32 bytes (a test holds it to that), plus its map entry.
#[derive(Debug, Clone, Copy)]
struct Stream {
    /// What this end may still send.
    send_credit: u32,
    /// What the peer may still send.
    recv_credit: u32,
    /// Bytes consumed whose credit is not yet granted back.
    ungranted: u32,
    flags: u8,
    /// While an `OPEN` this end sent waits for its answer.
    deadline: Option<Duration>,
}

impl Stream {
    const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

/// A message this end owes the peer.
#[derive(Debug, Clone, Copy)]
enum Owed {
    Reset(StreamId, ResetCause),
    Grant(StreamId),
}

/// One end of a tunnel. See the module docs for the calling order.
#[derive(Debug)]
pub struct Session {
    role: Role,
    config: Config,
    targets: Box<[Box<str>]>,
    streams: BTreeMap<StreamId, Stream>,
    /// The open deadlines of streams waiting for an `OPEN_OK`, earliest first.
    deadlines: BTreeSet<(Duration, StreamId)>,
    owed: VecDeque<Owed>,
    owed_resets: usize,
    /// The next id this end opens (a `u64` so that running out is seen, not wrapped).
    next_local: u64,
    /// The highest id the peer opened, 0 before its first.
    last_peer: StreamId,
    failed: Option<TunnelError>,
}

impl Session {
    /// A session for `role`, accepting `OPEN`s only for `targets` (a controller passes none).
    /// `config.window` is capped at [`MAX_WINDOW`] and raised to 1.
    pub fn new(role: Role, mut config: Config, targets: &[&str]) -> Self {
        config.window = config.window.clamp(1, MAX_WINDOW);
        Self {
            role,
            config,
            targets: targets.iter().map(|&t| Box::from(t)).collect(),
            streams: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            owed: VecDeque::new(),
            owed_resets: 0,
            next_local: u64::from(role.first_id()),
            last_peer: 0,
            failed: None,
        }
    }

    /// This end's role.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The error that failed the tunnel, if one did.
    pub const fn failed(&self) -> Option<TunnelError> {
        self.failed
    }

    /// How many streams are live.
    pub fn live_streams(&self) -> usize {
        self.streams.len()
    }

    /// Whether `stream` is live.
    pub fn is_live(&self, stream: StreamId) -> bool {
        self.streams.contains_key(&stream)
    }

    /// The credit this end holds on `stream` (`None`: not live).
    pub fn send_credit(&self, stream: StreamId) -> Option<u32> {
        self.streams.get(&stream).map(|s| s.send_credit)
    }

    /// The credit the peer holds on `stream` (`None`: not live).
    pub fn recv_credit(&self, stream: StreamId) -> Option<u32> {
        self.streams.get(&stream).map(|s| s.recv_credit)
    }

    /// Handles one whole binary WebSocket message from the peer.
    ///
    /// # Errors
    /// The rule the peer broke; the tunnel has failed (every later call gets the same error),
    /// and its WebSocket is to be closed with [`TunnelError::close_code`].
    pub fn handle_message<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, TunnelError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.dispatch(msg);
        if let Err(e) = result {
            self.failed = Some(e);
            self.streams.clear();
            self.deadlines.clear();
            self.owed.clear();
            self.owed_resets = 0;
        }
        result
    }

    fn dispatch<'a>(&mut self, msg: &'a [u8]) -> Result<Option<Event<'a>>, TunnelError> {
        let m = codec::decode(msg)?;
        let id = m.stream();
        if let Message::Open { window, websocket, target, head, .. } = m {
            return self.on_open(id, window, websocket, target, head).map(Some);
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // A message for a stream already forgotten crossed this end's RESET, or arrived
            // after an open deadline: it is dropped. An id never opened is a broken peer.
            return if self.was_opened(id) { Ok(None) } else { Err(TunnelError::UnknownStream) };
        };
        // Until its OPEN_OK, a stream this end opened may only be accepted or reset.
        let waiting = s.has(LOCAL) && !s.has(ACCEPTED);
        let fault = match m {
            // Handled above; an OPEN for a live id would reuse it.
            Message::Open { .. } => return Err(TunnelError::StreamIdNotIncreasing),
            Message::OpenOk { window, head, .. } => {
                if !waiting {
                    return Err(TunnelError::UnexpectedOpenOk);
                }
                s.set(ACCEPTED, true);
                s.send_credit = window;
                if let Some(d) = s.deadline.take() {
                    self.deadlines.remove(&(d, id));
                }
                return Ok(Some(Event::Accepted { stream: id, head }));
            }
            Message::Reset { cause, .. } => {
                self.forget(id);
                return Ok(Some(Event::Reset { stream: id, cause, by_peer: true }));
            }
            _ if waiting => ResetCause::PROTOCOL,
            Message::Data { .. } | Message::Relay { .. } if s.has(RECV_FIN) => ResetCause::PROTOCOL,
            Message::Data { data, .. } => match take_credit(s, data.len()) {
                Ok(()) => return Ok(Some(Event::Data { stream: id, data })),
                Err(cause) => cause,
            },
            Message::Relay { opcode, more, data, .. } => {
                let in_message = s.has(RECV_IN_MESSAGE);
                let in_order = match opcode {
                    Opcode::Continuation => in_message,
                    Opcode::Text | Opcode::Binary => !in_message,
                    _ => true,
                };
                if !in_order {
                    ResetCause::PROTOCOL
                } else {
                    match take_credit(s, 1 + data.len()) {
                        Ok(()) => {
                            if !opcode.is_control() {
                                s.set(RECV_IN_MESSAGE, more);
                            }
                            return Ok(Some(Event::Relay { stream: id, opcode, more, data }));
                        }
                        Err(cause) => cause,
                    }
                }
            }
            Message::Window { increment, .. } => match s.send_credit.checked_add(increment) {
                // RFC 9113 §6.9.1: a window over 2^31-1 is a flow-control error.
                Some(credit) if credit <= MAX_WINDOW => {
                    s.send_credit = credit;
                    return Ok(Some(Event::Window { stream: id, credit }));
                }
                _ => ResetCause::FLOW_CONTROL,
            },
            Message::Fin { .. } => {
                if s.has(RECV_FIN) {
                    ResetCause::PROTOCOL
                } else {
                    s.set(RECV_FIN, true);
                    if s.has(SENT_FIN) {
                        self.forget(id);
                    }
                    return Ok(Some(Event::Fin { stream: id }));
                }
            }
        };
        // The peer broke a rule of this stream only: reset it, keep the tunnel.
        self.forget(id);
        self.owe_peer_reset(id, fault)?;
        Ok(Some(Event::Reset { stream: id, cause: fault, by_peer: false }))
    }

    fn on_open<'a>(
        &mut self,
        id: StreamId,
        window: u32,
        websocket: bool,
        target: &'a str,
        head: &'a [u8],
    ) -> Result<Event<'a>, TunnelError> {
        if self.is_local(id) {
            return Err(TunnelError::WrongParity);
        }
        if id <= self.last_peer {
            return Err(TunnelError::StreamIdNotIncreasing);
        }
        self.last_peer = id;
        let refused = if self.streams.len() >= self.config.max_streams as usize {
            Some(ResetCause::REFUSED)
        } else if !self.targets.iter().any(|t| **t == *target) {
            // No open proxy: only the targets this end was configured with are reached.
            Some(ResetCause::UNKNOWN_TARGET)
        } else {
            None
        };
        if let Some(cause) = refused {
            self.owe_peer_reset(id, cause)?;
            return Ok(Event::Refused { stream: id, cause });
        }
        let stream =
            Stream { send_credit: window, recv_credit: 0, ungranted: 0, flags: 0, deadline: None };
        self.streams.insert(id, stream);
        Ok(Event::Opened { stream: id, target, websocket, head })
    }

    /// Whether `id` belongs to this end's parity.
    const fn is_local(&self, id: StreamId) -> bool {
        id % 2 == self.role.first_id() % 2
    }

    /// Whether `id` was opened once (by either end), live or not.
    fn was_opened(&self, id: StreamId) -> bool {
        if self.is_local(id) { u64::from(id) < self.next_local } else { id <= self.last_peer }
    }

    /// Drops a stream and its deadline.
    fn forget(&mut self, id: StreamId) {
        if let Some(Stream { deadline: Some(d), .. }) = self.streams.remove(&id) {
            self.deadlines.remove(&(d, id));
        }
    }

    /// Queues a `RESET` the peer caused, within the bound on what the peer can make this end owe.
    fn owe_peer_reset(&mut self, id: StreamId, cause: ResetCause) -> Result<(), TunnelError> {
        if self.owed_resets >= 2 * self.config.max_streams as usize + 16 {
            return Err(TunnelError::TooManyPendingResets);
        }
        self.owe_reset(id, cause);
        Ok(())
    }

    fn owe_reset(&mut self, id: StreamId, cause: ResetCause) {
        self.owed_resets += 1;
        self.owed.push_back(Owed::Reset(id, cause));
    }

    /// The next message this end owes the peer (`RESET`s, `WINDOW` grants), written into `out`.
    pub fn poll_transmit(&mut self, out: &mut [u8; MAX_CONTROL_LEN]) -> Option<usize> {
        while let Some(owed) = self.owed.pop_front() {
            let msg = match owed {
                Owed::Reset(stream, cause) => {
                    self.owed_resets -= 1;
                    Message::Reset { stream, cause }
                }
                Owed::Grant(stream) => {
                    let Some(s) = self.streams.get_mut(&stream) else { continue };
                    s.set(GRANT_QUEUED, false);
                    if s.ungranted == 0 || s.has(RECV_FIN) {
                        continue;
                    }
                    let increment = core::mem::take(&mut s.ungranted);
                    s.recv_credit += increment;
                    Message::Window { stream, increment }
                }
            };
            return codec::encode(&msg, out).ok();
        }
        None
    }

    /// When [`Session::handle_timeout`] is to be called next (the earliest open deadline).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    /// Resets one stream whose `OPEN` was not answered by `now` (`RESET open_timeout` queued).
    /// Call until `None`.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<Event<'static>> {
        let &(d, stream) = self.deadlines.first()?;
        if d > now {
            return None;
        }
        self.forget(stream);
        self.owe_reset(stream, ResetCause::OPEN_TIMEOUT);
        Some(Event::Reset { stream, cause: ResetCause::OPEN_TIMEOUT, by_peer: false })
    }

    /// Opens a stream to the peer's `target`, writing the `OPEN` into `out`; `now` starts its
    /// open deadline. Returns the new stream's id and the message's length.
    ///
    /// # Errors
    /// The tunnel failed, the stream cap is reached, the ids ran out, the target name is not
    /// valid, the head does not fit one message, or `out` is too small.
    pub fn open_stream(
        &mut self,
        target: &str,
        websocket: bool,
        head: &[u8],
        now: Duration,
        out: &mut [u8],
    ) -> Result<(StreamId, usize), SendError> {
        self.check_failed()?;
        if !codec::valid_target(target.as_bytes()) {
            return Err(SendError::BadTarget);
        }
        if 5 + target.len() + head.len() > MAX_PAYLOAD {
            return Err(SendError::TooLong);
        }
        if self.streams.len() >= self.config.max_streams as usize {
            return Err(SendError::TooManyStreams);
        }
        let stream = StreamId::try_from(self.next_local).map_err(|_| SendError::IdsExhausted)?;
        let window = self.config.window;
        let len = write(&Message::Open { stream, window, websocket, target, head }, out)?;
        self.next_local += 2;
        let deadline = self.config.open_timeout.map(|t| now.saturating_add(t));
        if let Some(d) = deadline {
            self.deadlines.insert((d, stream));
        }
        let s =
            Stream { send_credit: 0, recv_credit: window, ungranted: 0, flags: LOCAL, deadline };
        self.streams.insert(stream, s);
        Ok((stream, len))
    }

    /// Accepts a stream the peer opened ([`Event::Opened`]), writing the `OPEN_OK` with the
    /// response head into `out`.
    ///
    /// # Errors
    /// The stream is not live, was opened by this end or already accepted, the head does not
    /// fit one message, or `out` is too small.
    pub fn accept(
        &mut self,
        stream: StreamId,
        head: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        let window = self.config.window;
        let s = self.stream_mut(stream)?;
        if s.has(LOCAL) || s.has(ACCEPTED) {
            return Err(SendError::NotAcceptable);
        }
        if 4 + head.len() > MAX_PAYLOAD {
            return Err(SendError::TooLong);
        }
        let len = write(&Message::OpenOk { stream, window, head }, out)?;
        s.set(ACCEPTED, true);
        s.recv_credit = window;
        Ok(len)
    }

    /// Writes a `DATA` message carrying as much of `data` as the stream's credit, one message
    /// and `out` allow; takes nothing (and writes nothing) when the credit is 0.
    ///
    /// # Errors
    /// The stream is not live or not accepted, this end sent `FIN`, or `out` cannot hold a
    /// header and one byte.
    pub fn send_data(
        &mut self,
        stream: StreamId,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<Sent, SendError> {
        let s = self.sendable(stream)?;
        let n = data.len().min(s.send_credit as usize).min(MAX_PAYLOAD);
        if n == 0 {
            return Ok(Sent::default());
        }
        let n = n.min(out.len().saturating_sub(HEADER_LEN));
        if n == 0 {
            return Err(SendError::BufferTooSmall(BufferTooSmall { needed: HEADER_LEN + 1 }));
        }
        let len = write(&Message::Data { stream, data: &data[..n] }, out)?;
        s.send_credit -= n as u32;
        Ok(Sent { taken: n, len })
    }

    /// Writes one piece of a relayed WebSocket message: `opcode` (text or binary to begin a
    /// message, continuation for the pieces after), and as much of `data` as the credit allows
    /// (one byte of credit goes to the type) and `out` holds. The piece is marked `more` if it
    /// does not carry all of `data` or `last` is false; then the rest follows as a
    /// continuation. Close, ping and pong (at most 125 bytes) go whole or not at all. Takes
    /// nothing when the credit is short.
    ///
    /// # Errors
    /// As [`Session::send_data`], and a sequence that breaks the rules above.
    pub fn send_relay(
        &mut self,
        stream: StreamId,
        opcode: Opcode,
        data: &[u8],
        last: bool,
        out: &mut [u8],
    ) -> Result<Sent, SendError> {
        let s = self.sendable(stream)?;
        let in_message = s.has(SEND_IN_MESSAGE);
        let room = (s.send_credit as usize).min(MAX_PAYLOAD);
        let (n, more) = match opcode {
            Opcode::Continuation if !in_message => return Err(SendError::BadSequence),
            Opcode::Text | Opcode::Binary if in_message => return Err(SendError::BadSequence),
            // RFC 6455 §5.5: a control frame is whole and at most 125 bytes.
            _ if opcode.is_control() && data.len() > 125 => return Err(SendError::TooLong),
            _ if opcode.is_control() && room <= data.len() => return Ok(Sent::default()),
            _ if opcode.is_control() => (data.len(), false),
            _ if room == 0 => return Ok(Sent::default()),
            _ => {
                // What `out` holds after the header and the type byte.
                let fits = out.len().saturating_sub(HEADER_LEN + 1);
                let n = data.len().min(room - 1).min(fits);
                (n, n < data.len() || !last)
            }
        };
        let msg = Message::Relay { stream, opcode, more, data: &data[..n] };
        let len = write(&msg, out)?;
        s.send_credit -= 1 + n as u32;
        if !opcode.is_control() {
            s.set(SEND_IN_MESSAGE, more);
        }
        Ok(Sent { taken: n, len })
    }

    /// Half-closes the stream this way: writes a `FIN` into `out`. The opener may do so before
    /// the `OPEN_OK`; the receiver only after accepting.
    ///
    /// # Errors
    /// The stream is not live, this end already sent `FIN`, or `out` is too small.
    pub fn finish(&mut self, stream: StreamId, out: &mut [u8]) -> Result<usize, SendError> {
        let s = self.stream_mut(stream)?;
        if !s.has(LOCAL) && !s.has(ACCEPTED) {
            return Err(SendError::NotAccepted);
        }
        if s.has(SENT_FIN) {
            return Err(SendError::Finished);
        }
        let len = write(&Message::Fin { stream }, out)?;
        s.set(SENT_FIN, true);
        if s.has(RECV_FIN) {
            self.forget(stream);
        }
        Ok(len)
    }

    /// Ends the stream both ways at once: writes a `RESET` with `cause` into `out`, and forgets
    /// the stream. Also the way to refuse a stream the peer opened.
    ///
    /// # Errors
    /// The stream is not live, or `out` is too small.
    pub fn reset(
        &mut self,
        stream: StreamId,
        cause: ResetCause,
        out: &mut [u8],
    ) -> Result<usize, SendError> {
        self.stream_mut(stream)?;
        let len = write(&Message::Reset { stream, cause }, out)?;
        self.forget(stream);
        Ok(len)
    }

    /// Records that `n` bytes received on `stream` were passed on (for a relayed piece, count
    /// its type byte too); their credit is granted back to the peer (`WINDOW`, from
    /// [`Session::poll_transmit`]) once half the window is owed. A stream no longer live is
    /// ignored: its bytes need no credit.
    ///
    /// # Errors
    /// More bytes than were received and not yet consumed.
    pub fn consume(&mut self, stream: StreamId, n: usize) -> Result<(), SendError> {
        let window = self.config.window;
        let Some(s) = self.streams.get_mut(&stream) else { return Ok(()) };
        let granted = s.has(LOCAL) || s.has(ACCEPTED);
        let unconsumed = if granted { window - s.recv_credit - s.ungranted } else { 0 };
        let n =
            u32::try_from(n).ok().filter(|&n| n <= unconsumed).ok_or(SendError::OverConsumed)?;
        s.ungranted += n;
        if s.ungranted >= window.div_ceil(2) && !s.has(GRANT_QUEUED) && !s.has(RECV_FIN) {
            s.set(GRANT_QUEUED, true);
            self.owed.push_back(Owed::Grant(stream));
        }
        Ok(())
    }

    fn check_failed(&self) -> Result<(), SendError> {
        if self.failed.is_some() { Err(SendError::Failed) } else { Ok(()) }
    }

    fn stream_mut(&mut self, stream: StreamId) -> Result<&mut Stream, SendError> {
        self.check_failed()?;
        self.streams.get_mut(&stream).ok_or(SendError::UnknownStream)
    }

    /// A stream this end may send data on.
    fn sendable(&mut self, stream: StreamId) -> Result<&mut Stream, SendError> {
        let s = self.stream_mut(stream)?;
        if !s.has(ACCEPTED) {
            return Err(SendError::NotAccepted);
        }
        if s.has(SENT_FIN) {
            return Err(SendError::Finished);
        }
        Ok(s)
    }
}

/// Takes `n` bytes of the peer's credit on `s`, or names the fault.
fn take_credit(s: &mut Stream, n: usize) -> Result<(), ResetCause> {
    match u32::try_from(n).ok().and_then(|n| s.recv_credit.checked_sub(n)) {
        Some(left) => {
            s.recv_credit = left;
            Ok(())
        }
        // The peer sent past the window it was granted.
        None => Err(ResetCause::FLOW_CONTROL),
    }
}

fn write(msg: &Message<'_>, out: &mut [u8]) -> Result<usize, SendError> {
    codec::encode(msg, out).map_err(SendError::BufferTooSmall)
}

/// The memory one live stream takes in this state machine, without the map's node overhead.
pub const STREAM_SIZE: usize = core::mem::size_of::<Stream>() + core::mem::size_of::<StreamId>();
