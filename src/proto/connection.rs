//! One WebSocket connection after (or while) the opening handshake: frames in, events out,
//! the replies the RFC requires queued, timers computed, never a socket or a clock.
//!
//! # Calling order
//!
//! 1. [`Connection::new`] when the TCP connection exists (the handshake deadline starts), then
//!    [`Connection::open`] once the opening handshake ([`crate::proto::handshake`]) succeeded.
//!    [`Connection::new_open`] does both for a driver that handled the handshake itself.
//! 2. Bytes read: [`Connection::handle_bytes`], in a loop, until it has consumed them all. Each
//!    call returns at most one [`Event`], which borrows the input: payloads are unmasked in place
//!    and handed out as slices of it, so a caller that takes slices allocates nothing.
//! 3. After every call that may queue a reply: [`Connection::poll_transmit`] until `None`, and
//!    write those bytes. Data is encoded with [`Connection::send`] or
//!    [`Connection::encode_data_header`] into the caller's buffers.
//! 4. Time: call [`Connection::handle_timeout`] when [`Connection::poll_timeout`] has passed.
//! 5. When [`Connection::state`] is [`State::Closed`], flush what is queued and close the TCP
//!    connection (a server first, RFC 6455 §7.1.1; a client waits for the server to, bounded by
//!    the close deadline).
//!
//! # States (RFC 6455 §4, §7)
//!
//! ```text
//!  Connecting --open--> Open --close queued--> CloseSent ----close received-----+
//!      |                  |                   (queued, written)                  v
//!      |                  +--close received--> CloseReceived --reply written--> Closed
//!      |                                      (reply queued: the echo at once, or
//!      |                                       the caller's close in manual mode)
//!      +--handshake timeout / protocol error / close timeout / pong timeout--> Closed
//! ```
//!
//! The state is one field: each transition is one assignment, in `open`, `on_close_frame`,
//! `queue_close`, `take_close` (the close frame written), `fail` and `handle_timeout`.

use alloc::boxed::Box;
use core::time::Duration;

use crate::proto::close::{CloseCode, encode_close_payload, parse_close_payload};
use crate::proto::error::{BufferTooSmall, ProtocolError, Status};
use crate::proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, Opcode};
use crate::proto::mask::apply_mask;
use crate::proto::utf8::Utf8Validator;

/// The most bytes one control frame takes on the wire: header with mask, and 125 of payload.
pub const MAX_CONTROL_FRAME_LEN: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD;

/// Which end of the connection this is; it decides who masks (RFC 6455 §5.1, §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts connections; receives masked frames, sends unmasked ones.
    Server,
    /// Opens connections; sends masked frames, receives unmasked ones.
    Client,
}

/// Limits and timers of one connection. `None` turns a timer off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The largest frame payload accepted (1009 past it, checked at header time).
    pub max_frame_size: u64,
    /// The largest message accepted, all fragments together (1009 past it, at header time).
    pub max_message_size: u64,
    /// From [`Connection::new`] to [`Connection::open`].
    pub handshake_timeout: Option<Duration>,
    /// A ping is sent when nothing was received for this long.
    pub ping_interval: Option<Duration>,
    /// How long a pong may take after a ping before the connection is dropped.
    pub pong_timeout: Duration,
    /// The connection is closed (1001) after this long without a data frame from the peer.
    pub idle_timeout: Option<Duration>,
    /// How long the close handshake may take once this end sent its close frame.
    pub close_timeout: Duration,
}

impl Config {
    /// The same settings with no handshake deadline (for a connection whose handshake the
    /// driver times itself, or that never upgrades).
    pub const fn without_handshake_timeout(mut self) -> Self {
        self.handshake_timeout = None;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            handshake_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(30),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// The state of the connection, as the driver needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The opening handshake is under way.
    Connecting,
    /// Messages flow both ways.
    Open,
    /// This end sent (or queued) a close frame and waits for the peer's (§7.1.2).
    CloseSent,
    /// The peer's close frame arrived; the echo is queued but not yet written.
    CloseReceived,
    /// Nothing more will be sent or received: flush, then close the TCP connection.
    Closed,
}

/// The type of a data message (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Binary data (opcode 0x2).
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame.
    pub const fn opcode(self) -> Opcode {
        match self {
            Self::Text => Opcode::Text,
            Self::Binary => Opcode::Binary,
        }
    }
}

/// The payload of a control frame (at most 125 bytes), held by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    len: u8,
    buf: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlPayload {
    /// An empty payload.
    pub const EMPTY: ControlPayload = ControlPayload { len: 0, buf: [0; MAX_CONTROL_PAYLOAD] };

    /// A payload holding `bytes`, or `None` if they are over 125 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut p = Self::EMPTY;
        p.buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        p.len = bytes.len() as u8;
        Some(p)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_bytes())
    }
}

/// A close frame received from the peer, already validated (§5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, or `None` for an empty close frame (reported as 1005).
    pub code: Option<CloseCode>,
    reason: ControlPayload,
}

impl CloseFrame {
    /// The reason, valid UTF-8 (checked on receipt).
    pub fn reason(&self) -> &str {
        core::str::from_utf8(self.reason.as_bytes()).unwrap_or_default()
    }
}

/// What one call to [`Connection::handle_bytes`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A piece of a data message, unmasked in place in the caller's input. Pieces follow frame
    /// and read boundaries, not code points; the text so far is valid UTF-8 as a prefix, and the
    /// whole message is valid when `fin` is true. An empty piece is only reported with `fin`.
    Message {
        /// Text or binary, the same for every piece of one message.
        kind: MessageKind,
        /// The payload bytes of this piece.
        data: &'a [u8],
        /// This piece ends the message.
        fin: bool,
    },
    /// A ping; the pong is already queued (at most one pending: a newer ping replaces it).
    Ping(ControlPayload),
    /// A pong (solicited or not, §5.5.3).
    Pong(ControlPayload),
    /// The peer's close frame; the echo is queued unless this end closed first.
    Close(CloseFrame),
}

/// What a deadline that passed did to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The opening handshake did not finish in time: close the TCP connection.
    Handshake,
    /// Nothing was received for the ping interval: a ping is queued.
    Ping,
    /// No pong came in time: a close frame (1001) is queued and the connection is closed.
    Pong,
    /// No data frame came for the idle timeout: a close frame (1001) is queued.
    Idle,
    /// The close handshake did not finish in time: close the TCP connection.
    Close,
}

/// Why a send was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The opening handshake is not done.
    NotOpen,
    /// A close frame was sent or queued: no data may follow (§5.5.1).
    Closing,
    /// A fragmented send is open and this frame does not continue it, or none is open.
    Fragmentation,
    /// A control payload over 125 bytes (§5.5).
    ControlTooLong,
    /// A close code that may not be sent (§7.4: e.g. 1005, 1006, 1015).
    InvalidCloseCode,
    /// The output buffer is too small.
    BufferTooSmall(BufferTooSmall),
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotOpen => f.write_str("the connection is not open"),
            Self::Closing => f.write_str("a close frame was sent: no data may follow"),
            Self::Fragmentation => f.write_str("the frame does not continue the open message"),
            Self::ControlTooLong => f.write_str("a control payload over 125 bytes"),
            Self::InvalidCloseCode => f.write_str("a close code that may not be sent"),
            Self::BufferTooSmall(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SendError {}

/// The state of one WebSocket connection.
///
/// It is kept small (under 200 bytes) because a server holds one per open connection: times are
/// nanoseconds in a `u64`, and the buffers for control frame payloads live in a box that exists
/// only while such a payload is being received or waits to be sent (an empty heartbeat ping or
/// pong needs none).
#[derive(Debug)]
pub struct Connection {
    role: Role,
    /// Where the connection is in its opening and closing handshakes; the transitions are in
    /// `open`, `on_close_frame`, `queue_close`, `fail`, `poll_transmit` and `handle_timeout`.
    phase: Phase,
    /// The payload length of the queued close frame (the bytes are in `spill`).
    close_len: u8,
    pong: Pending,
    pending_ping: bool,
    /// Answer a received close frame at once (the default), or leave it to the caller.
    auto_close_reply: bool,
    /// The fragmented message this end is sending, if any.
    tx_open: Option<MessageKind>,
    /// permessage-deflate was agreed: RSV1 marks a compressed message (RFC 7692 §6).
    compression: bool,
    /// The message being received (or the last one) came compressed.
    rx_compressed: bool,
    rx: Receiver,
    spill: Option<Box<Spill>>,
    settings: Settings,
    timers: Timers,
}

/// Where a connection is (RFC 6455 §4, §7): what [`State`] shows the driver, with what each
/// state needs to know about the close frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The opening handshake is under way (§4).
    Connecting,
    /// Messages flow both ways; no close frame yet either way.
    Open,
    /// This end started the closing handshake (§7.1.2): its close frame is queued or written,
    /// and the peer's has not come.
    CloseSent(CloseOut),
    /// The peer's close frame came while this end's was not written (§7.1.3): this end's is
    /// queued (the echo, or its own not yet written), or, with the reply left to the caller
    /// ([`Connection::set_auto_close_reply`]), not yet (`reply_queued: false`).
    CloseReceived {
        /// This end's close frame waits in the queue.
        reply_queued: bool,
    },
    /// Nothing more is read: the closing handshake is complete, or the connection failed
    /// (§7.1.7) or timed out. A close frame may still wait to be written; then the TCP
    /// connection is closed.
    Closed {
        /// This end's close frame: `None` if it never had one (it failed before it opened, or
        /// the caller never replied to the peer's).
        close: Option<CloseOut>,
        /// The peer's close frame came: once this end's is written, the closing handshake is
        /// complete.
        received: bool,
    },
}

/// This end's close frame once it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseOut {
    /// Waiting for [`Connection::poll_transmit`].
    Queued,
    /// Written out.
    Written,
}

/// A pong owed to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// With an empty payload (needs no storage).
    Empty,
    /// With the payload in `Spill::pong`.
    Spilled,
}

/// Control frame payloads, boxed: allocated while one is in flight, freed when none is.
#[derive(Debug)]
struct Spill {
    /// A control frame's payload being received (it is delivered whole).
    control: [u8; MAX_CONTROL_PAYLOAD],
    pong: ControlPayload,
    close: [u8; MAX_CONTROL_PAYLOAD],
}

impl Spill {
    fn new() -> Box<Self> {
        Box::new(Self {
            control: [0; MAX_CONTROL_PAYLOAD],
            pong: ControlPayload::EMPTY,
            close: [0; MAX_CONTROL_PAYLOAD],
        })
    }
}

/// [`Config`] as the connection keeps it: durations in nanoseconds, [`NEVER`] for off.
#[derive(Debug, Clone, Copy)]
struct Settings {
    max_frame: u64,
    max_message: u64,
    handshake: u64,
    ping: u64,
    pong: u64,
    idle: u64,
    close: u64,
}

/// A time that never comes: a timer that is off or not armed.
const NEVER: u64 = u64::MAX;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(NEVER)
}

fn opt_ns(d: Option<Duration>) -> u64 {
    d.map_or(NEVER, ns)
}

fn at(t: u64) -> Option<Duration> {
    (t != NEVER).then(|| Duration::from_nanos(t))
}

#[derive(Debug)]
struct Receiver {
    /// A header split across reads, gathered here (at most 14 bytes).
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    /// Bytes of a control frame's payload gathered so far (in `Spill::control`).
    control_len: u8,
}

impl Receiver {
    const fn new() -> Self {
        Self { head: [0; MAX_HEADER_LEN], head_len: 0, frame: None, message: None, control_len: 0 }
    }
}

#[derive(Debug, Clone, Copy)]
struct FrameState {
    opcode: Opcode,
    fin: bool,
    mask: Option<[u8; 4]>,
    mask_offset: u8,
    remaining: u64,
}

#[derive(Debug, Clone, Copy)]
struct MessageState {
    kind: MessageKind,
    len: u64,
    utf8: Utf8Validator,
}

/// Deadlines and the instants they derive from, in nanoseconds ([`NEVER`] when unset).
#[derive(Debug, Clone, Copy)]
struct Timers {
    handshake: u64,
    last_rx: u64,
    last_data_rx: u64,
    last_ping: u64,
    pong_deadline: u64,
    close_deadline: u64,
}

impl Connection {
    /// A connection whose opening handshake starts now.
    pub fn new(role: Role, config: Config, now: Duration) -> Self {
        let settings = Settings {
            max_frame: config.max_frame_size,
            max_message: config.max_message_size,
            handshake: opt_ns(config.handshake_timeout),
            ping: opt_ns(config.ping_interval),
            pong: ns(config.pong_timeout),
            idle: opt_ns(config.idle_timeout),
            close: ns(config.close_timeout),
        };
        let now = ns(now);
        Self {
            role,
            phase: Phase::Connecting,
            close_len: 0,
            pong: Pending::None,
            pending_ping: false,
            auto_close_reply: true,
            tx_open: None,
            compression: false,
            rx_compressed: false,
            rx: Receiver::new(),
            spill: None,
            settings,
            timers: Timers {
                handshake: now.saturating_add(settings.handshake),
                last_rx: now,
                last_data_rx: now,
                last_ping: now,
                pong_deadline: NEVER,
                close_deadline: NEVER,
            },
        }
    }

    /// A connection whose opening handshake is already done.
    pub fn new_open(role: Role, config: Config, now: Duration) -> Self {
        let mut c = Self::new(role, config, now);
        c.open(now);
        c
    }

    /// The opening handshake succeeded: frames may flow. Does nothing unless the connection is
    /// [`State::Connecting`].
    pub fn open(&mut self, now: Duration) {
        if self.phase == Phase::Connecting {
            let now = ns(now);
            self.phase = Phase::Open;
            self.timers.handshake = NEVER;
            self.timers.last_rx = now;
            self.timers.last_data_rx = now;
            self.timers.last_ping = now;
        }
    }

    /// permessage-deflate was agreed in the handshake (RFC 7692): a message whose first frame
    /// has RSV1 set is compressed ([`Connection::is_compressed`]), and this end may send
    /// compressed messages ([`Connection::send_compressed`]). The core neither inflates nor
    /// deflates: the caller does, with [`crate::proto::extension::MessageInflater`] and
    /// [`crate::proto::deflate::Deflater`], in its own buffers.
    pub fn set_compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// Whether permessage-deflate was agreed ([`Connection::set_compression`]).
    pub const fn compression_agreed(&self) -> bool {
        self.compression
    }

    /// Whether the message whose pieces [`Connection::handle_bytes`] is handing out (or handed
    /// out last) is compressed: its pieces are DEFLATE data, not yet checked as UTF-8 or against
    /// the message limit, which apply to what they inflate to.
    pub const fn is_compressed(&self) -> bool {
        self.rx_compressed
    }

    /// The role this connection plays.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The configuration it was made with.
    pub fn config(&self) -> Config {
        let s = &self.settings;
        Config {
            max_frame_size: s.max_frame,
            max_message_size: s.max_message,
            handshake_timeout: at(s.handshake),
            ping_interval: at(s.ping),
            pong_timeout: Duration::from_nanos(s.pong),
            idle_timeout: at(s.idle),
            close_timeout: Duration::from_nanos(s.close),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Connecting => State::Connecting,
            Phase::Open => State::Open,
            Phase::CloseSent(_) => State::CloseSent,
            Phase::CloseReceived { .. } => State::CloseReceived,
            Phase::Closed { .. } => State::Closed,
        }
    }

    /// Whether frames from the peer are read: after the opening handshake, and until the peer's
    /// close frame (§5.5.1: nothing follows it) or a failure.
    fn reading(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::CloseSent(_))
    }

    /// Whether this end's close frame waits for [`Connection::poll_transmit`].
    fn close_queued(&self) -> bool {
        matches!(
            self.phase,
            Phase::CloseSent(CloseOut::Queued)
                | Phase::CloseReceived { reply_queued: true }
                | Phase::Closed { close: Some(CloseOut::Queued), .. }
        )
    }

    /// Reads frames from `input` (unmasking them in place) and returns how many bytes it
    /// consumed and the event they completed, if any. Call again with the rest of the input
    /// until it is consumed; bytes are never left unconsumed except when a partial header or
    /// control frame is being gathered, which the connection keeps itself, so every call
    /// consumes all of `input` unless it returns an event.
    ///
    /// # Errors
    /// The first [`ProtocolError`] the peer commits. The connection is then failed (§7.1.7): a
    /// close frame with the error's code is queued, the state is [`State::Closed`] and later
    /// input is discarded.
    pub fn handle_bytes<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Duration,
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        if !self.reading() {
            // Nothing may follow a close frame (§5.5.1); a failed connection reads no more.
            return Ok((input.len(), None));
        }
        self.timers.last_rx = ns(now);
        match self.read(input, now) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.fail(e.close_code(), e.reason(), now);
                Err(e)
            }
        }
    }

    fn read<'a>(
        &mut self,
        input: &'a mut [u8],
        now: Duration,
    ) -> Result<(usize, Option<Event<'a>>), ProtocolError> {
        let mut pos = 0;
        loop {
            let frame = match self.rx.frame {
                Some(f) => f,
                None => match self.read_header(&input[pos..])? {
                    (n, None) => return Ok((pos + n, None)),
                    (n, Some(h)) => {
                        pos += n;
                        let f = self.start_frame(h)?;
                        if f.remaining == 0 {
                            if let Some(ev) = self.end_frame(f, now)? {
                                return Ok((pos, Some(ev)));
                            }
                            continue;
                        }
                        f
                    }
                },
            };
            let avail = input.len() - pos;
            if avail == 0 {
                return Ok((pos, None));
            }
            let n = usize::try_from(frame.remaining).unwrap_or(usize::MAX).min(avail);
            let remaining = frame.remaining - n as u64;
            let mut f = frame;
            f.remaining = remaining;
            if frame.opcode.is_control() {
                let start = usize::from(self.rx.control_len);
                let dst = self
                    .spill
                    .get_or_insert_with(Spill::new)
                    .control
                    .get_mut(start..start + n)
                    .ok_or(ProtocolError::ControlFrameTooLong)?;
                dst.copy_from_slice(&input[pos..pos + n]);
                if let Some(key) = frame.mask {
                    f.mask_offset = apply_mask(dst, key, usize::from(frame.mask_offset)) as u8;
                }
                self.rx.control_len += n as u8;
                pos += n;
                self.rx.frame = Some(f);
                if remaining == 0 {
                    if let Some(ev) = self.end_frame(f, now)? {
                        return Ok((pos, Some(ev)));
                    }
                }
                continue;
            }
            // A data frame: hand the piece out in place.
            let data = &mut input[pos..pos + n];
            if let Some(key) = frame.mask {
                f.mask_offset = apply_mask(data, key, usize::from(frame.mask_offset)) as u8;
            }
            let msg = self.rx.message.as_mut().ok_or(ProtocolError::UnexpectedContinuation)?;
            if msg.kind == MessageKind::Text && !self.rx_compressed {
                msg.utf8.feed(data).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            let kind = msg.kind;
            self.rx.frame = Some(f);
            let fin = if remaining == 0 { self.end_data_frame(f, now)? } else { false };
            return Ok((pos + n, Some(Event::Message { kind, data, fin })));
        }
    }

    /// Gathers a header from `input` (and the bytes kept from earlier reads). Returns the bytes
    /// consumed and the header once whole.
    fn read_header(&mut self, input: &[u8]) -> Result<(usize, Option<FrameHeader>), ProtocolError> {
        if self.rx.head_len == 0 {
            // The usual case: the whole header is in this read.
            if let Status::Complete((h, n)) = FrameHeader::decode(input)? {
                return Ok((n, Some(h)));
            }
        }
        // Split header: take exactly the bytes it still needs, never more.
        let have = usize::from(self.rx.head_len);
        let want = if have < 2 { 2 } else { FrameHeader::len_from_prefix(self.rx.head[1]) };
        let take = (want - have).min(input.len());
        self.rx.head[have..have + take].copy_from_slice(&input[..take]);
        self.rx.head_len += take as u8;
        let have = usize::from(self.rx.head_len);
        if have < 2 {
            return Ok((take, None));
        }
        let want = FrameHeader::len_from_prefix(self.rx.head[1]);
        if have < want {
            // Refuse what the first two bytes already show to be wrong, without waiting.
            FrameHeader::decode(&self.rx.head[..2])?;
            let more = want - have;
            let extra = more.min(input.len() - take);
            self.rx.head[have..have + extra].copy_from_slice(&input[take..take + extra]);
            self.rx.head_len += extra as u8;
            if extra < more {
                return Ok((take + extra, None));
            }
            return self.finish_split_header(take + extra);
        }
        self.finish_split_header(take)
    }

    fn finish_split_header(
        &mut self,
        consumed: usize,
    ) -> Result<(usize, Option<FrameHeader>), ProtocolError> {
        let len = usize::from(self.rx.head_len);
        self.rx.head_len = 0;
        match FrameHeader::decode(&self.rx.head[..len])? {
            Status::Complete((h, _)) => Ok((consumed, Some(h))),
            // Unreachable: exactly the needed bytes were gathered.
            Status::Partial => Err(ProtocolError::LengthTopBitSet),
        }
    }

    /// Applies the rules known at header time and sets up the frame.
    fn start_frame(&mut self, mut h: FrameHeader) -> Result<FrameState, ProtocolError> {
        // RFC 7692 §6.1: with the extension, RSV1 on a message's first frame says it is
        // compressed; on a continuation or a control frame it is an error.
        let rsv1 = self.compression && h.rsv & 0b100 != 0;
        if rsv1 {
            if !matches!(h.opcode, Opcode::Text | Opcode::Binary) {
                return Err(ProtocolError::CompressedContinuation);
            }
            h.rsv &= 0b011;
        }
        h.check(self.role == Role::Server, self.settings.max_frame)?;
        // §5.4: fragments of one message are contiguous, control frames may come between them.
        match h.opcode {
            Opcode::Continuation => {
                let msg = self.rx.message.as_mut().ok_or(ProtocolError::UnexpectedContinuation)?;
                msg.len = grow(msg.len, h.payload_len, self.settings.max_message)?;
            }
            Opcode::Text | Opcode::Binary => {
                if self.rx.message.is_some() {
                    return Err(ProtocolError::ExpectedContinuation);
                }
                let kind =
                    if h.opcode == Opcode::Text { MessageKind::Text } else { MessageKind::Binary };
                let len = grow(0, h.payload_len, self.settings.max_message)?;
                self.rx.message = Some(MessageState { kind, len, utf8: Utf8Validator::new() });
                self.rx_compressed = rsv1;
            }
            Opcode::Close | Opcode::Ping | Opcode::Pong => self.rx.control_len = 0,
        }
        let f = FrameState {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            mask_offset: 0,
            remaining: h.payload_len,
        };
        self.rx.frame = Some(f);
        Ok(f)
    }

    /// A frame's last payload byte arrived (or it had none).
    fn end_frame(
        &mut self,
        f: FrameState,
        now: Duration,
    ) -> Result<Option<Event<'static>>, ProtocolError> {
        self.rx.frame = None;
        let len = usize::from(core::mem::take(&mut self.rx.control_len));
        let payload = match &self.spill {
            Some(spill) => {
                ControlPayload::new(&spill.control[..len]).unwrap_or(ControlPayload::EMPTY)
            }
            None => ControlPayload::EMPTY,
        };
        match f.opcode {
            Opcode::Ping => {
                if self.phase == Phase::Open {
                    // §5.5.3: a pong carries the ping's payload; only the latest needs one.
                    self.pong = match self.spill.as_mut() {
                        Some(spill) if len > 0 => {
                            spill.pong = payload;
                            Pending::Spilled
                        }
                        _ => Pending::Empty,
                    };
                }
                self.release_spill();
                Ok(Some(Event::Ping(payload)))
            }
            Opcode::Pong => {
                self.timers.pong_deadline = NEVER;
                self.release_spill();
                Ok(Some(Event::Pong(payload)))
            }
            Opcode::Close => {
                let (code, reason) = parse_close_payload(payload.as_bytes())?;
                let frame = CloseFrame {
                    code,
                    reason: ControlPayload::new(reason.as_bytes()).unwrap_or(ControlPayload::EMPTY),
                };
                self.on_close_frame(code, reason, now);
                self.pong = Pending::None;
                self.release_spill();
                Ok(Some(Event::Close(frame)))
            }
            Opcode::Text | Opcode::Binary | Opcode::Continuation => {
                // An empty data frame: only the end of a message is worth an event.
                let kind = self.rx.message.map(|m| m.kind).unwrap_or(MessageKind::Binary);
                if self.end_data_frame(f, now)? {
                    Ok(Some(Event::Message { kind, data: &[], fin: true }))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// A data frame ended; returns whether it ended its message.
    fn end_data_frame(&mut self, f: FrameState, now: Duration) -> Result<bool, ProtocolError> {
        self.rx.frame = None;
        if !f.fin {
            return Ok(false);
        }
        if let Some(msg) = self.rx.message.take() {
            if !self.rx_compressed && !msg.utf8.is_complete() {
                return Err(ProtocolError::InvalidUtf8);
            }
        }
        self.timers.last_data_rx = ns(now);
        Ok(true)
    }

    /// The peer's close frame arrived (frames are read only while open or after this end's
    /// close frame).
    fn on_close_frame(&mut self, code: Option<CloseCode>, reason: &str, now: Duration) {
        self.phase = match self.phase {
            Phase::Open if self.auto_close_reply => {
                // §5.5.1: answer with a close frame, typically echoing the status code
                // received; the reason is echoed too (clients such as Node `ws` and python
                // `websockets` do, and their peers check it).
                self.write_close_payload(code, reason, now);
                Phase::CloseReceived { reply_queued: true }
            }
            Phase::Open => {
                // The caller answers (a proxy, once the other side has): bounded by the close
                // timeout all the same.
                self.timers.close_deadline = ns(now).saturating_add(self.settings.close);
                Phase::CloseReceived { reply_queued: false }
            }
            Phase::CloseSent(CloseOut::Queued) => Phase::CloseReceived { reply_queued: true },
            // §7.1.2-§7.1.3: a close frame went each way: the closing handshake is complete.
            Phase::CloseSent(CloseOut::Written) => {
                Phase::Closed { close: Some(CloseOut::Written), received: true }
            }
            // Not read in these phases (`handle_bytes`): nothing changes.
            phase @ (Phase::Connecting | Phase::CloseReceived { .. } | Phase::Closed { .. }) => {
                phase
            }
        };
    }

    /// Queues the close frame this end sends, once, while it may still send one (§5.5.1).
    fn queue_close(&mut self, code: Option<CloseCode>, reason: &str, now: Duration) {
        self.phase = match self.phase {
            Phase::Open => Phase::CloseSent(CloseOut::Queued),
            Phase::CloseReceived { reply_queued: false } => {
                Phase::CloseReceived { reply_queued: true }
            }
            _ => return,
        };
        self.write_close_payload(code, reason, now);
    }

    /// Keeps the payload of this end's close frame until it is written, and starts the close
    /// deadline.
    fn write_close_payload(&mut self, code: Option<CloseCode>, reason: &str, now: Duration) {
        self.close_len = 0;
        if code.is_some() {
            let spill = self.spill.get_or_insert_with(Spill::new);
            self.close_len =
                encode_close_payload(code, reason, &mut spill.close).unwrap_or(0) as u8;
        }
        self.timers.close_deadline = ns(now).saturating_add(self.settings.close);
    }

    /// Fails the connection for a rule the caller found broken in what the core handed out
    /// (RFC 7692: a compressed message that does not inflate, or inflates past the limit):
    /// the close frame for `e` is queued and nothing more is read or sent.
    pub fn fail_with(&mut self, e: ProtocolError, now: Duration) {
        self.fail(e.close_code(), e.reason(), now);
    }

    /// Fails the connection (§7.1.7): a close frame if it is established and one can still be
    /// sent, then nothing.
    fn fail(&mut self, code: CloseCode, reason: &str, now: Duration) {
        self.phase = match self.phase {
            Phase::Connecting => Phase::Closed { close: None, received: false },
            Phase::Open => {
                self.write_close_payload(Some(code), reason, now);
                Phase::Closed { close: Some(CloseOut::Queued), received: false }
            }
            Phase::CloseSent(out) => Phase::Closed { close: Some(out), received: false },
            Phase::CloseReceived { reply_queued } => {
                if !reply_queued {
                    self.write_close_payload(Some(code), reason, now);
                }
                Phase::Closed { close: Some(CloseOut::Queued), received: true }
            }
            closed @ Phase::Closed { .. } => closed,
        };
        self.pong = Pending::None;
        self.pending_ping = false;
    }

    /// Starts the close handshake (§7.1.2) with `code` and `reason` (cut to 123 bytes on a
    /// character boundary). Does nothing if a close frame was already sent or queued.
    ///
    /// # Errors
    /// A code that may not be sent on the wire (§7.4.1: 1005, 1006, 1015, unassigned ones).
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Duration) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode);
        }
        if self.phase == Phase::Connecting {
            return Err(SendError::NotOpen);
        }
        self.queue_close(Some(code), reason, now);
        Ok(())
    }

    /// Queues a ping (one at a time; a second call before it is written replaces nothing).
    ///
    /// # Errors
    /// Not open, or closing.
    pub fn ping(&mut self) -> Result<(), SendError> {
        self.check_can_send()?;
        self.pending_ping = true;
        Ok(())
    }

    /// Queues an unsolicited pong (§5.5.3: a heartbeat that expects no answer).
    ///
    /// # Errors
    /// A payload over 125 bytes, not open, or closing.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.check_can_send()?;
        let p = ControlPayload::new(payload).ok_or(SendError::ControlTooLong)?;
        self.pong = if payload.is_empty() {
            Pending::Empty
        } else {
            self.spill.get_or_insert_with(Spill::new).pong = p;
            Pending::Spilled
        };
        Ok(())
    }

    /// Takes this end's close frame out of the queue to be written; `false` if none waits.
    fn take_close(&mut self) -> bool {
        self.phase = match self.phase {
            Phase::CloseSent(CloseOut::Queued) => Phase::CloseSent(CloseOut::Written),
            // §7.1.2-§7.1.3: a close frame went each way: the closing handshake is complete.
            Phase::CloseReceived { reply_queued: true } => {
                Phase::Closed { close: Some(CloseOut::Written), received: true }
            }
            Phase::Closed { close: Some(CloseOut::Queued), received } => {
                Phase::Closed { close: Some(CloseOut::Written), received }
            }
            _ => return false,
        };
        true
    }

    /// Whether [`Connection::poll_transmit`] has a frame to give.
    pub fn wants_transmit(&self) -> bool {
        self.pong != Pending::None || self.pending_ping || self.close_queued()
    }

    /// Writes the next control frame the connection owes the peer (pong, ping, close) into
    /// `out` and returns its length, or `None` if nothing is owed. `mask` is the masking key a
    /// client must use (§5.3: fresh and unpredictable for every frame); a server ignores it.
    pub fn poll_transmit(
        &mut self,
        out: &mut [u8; MAX_CONTROL_FRAME_LEN],
        mask: [u8; 4],
    ) -> Option<usize> {
        let mask = (self.role == Role::Client).then_some(mask);
        let (opcode, payload): (Opcode, &[u8]) =
            match core::mem::replace(&mut self.pong, Pending::None) {
                Pending::Spilled => {
                    (Opcode::Pong, self.spill.as_deref().map_or(&[][..], |s| s.pong.as_bytes()))
                }
                Pending::Empty => (Opcode::Pong, &[]),
                Pending::None if core::mem::take(&mut self.pending_ping) => (Opcode::Ping, &[]),
                Pending::None if self.take_close() => {
                    let len = usize::from(self.close_len);
                    (Opcode::Close, self.spill.as_deref().map_or(&[][..], |s| &s.close[..len]))
                }
                Pending::None => {
                    self.release_spill();
                    return None;
                }
            };
        let n = crate::proto::frame::encode_frame(true, opcode, mask, payload, out).ok();
        // The last owed frame is out: its payload's box goes (a caller may stop polling here).
        if !self.wants_transmit() {
            self.release_spill();
        }
        n
    }

    /// Whether a received close frame is answered at once (`true`, the default) or by the
    /// caller with [`Connection::close`]. A proxy answers once the other side has: RFC 6455
    /// §5.5.1 lets an endpoint delay its reply ("as soon as practical"), and until it replies it
    /// may still send. The close timeout bounds the wait.
    pub fn set_auto_close_reply(&mut self, auto: bool) {
        self.auto_close_reply = auto;
    }

    /// The declared length of the message being received: the payload lengths of its frames
    /// seen so far (0 between messages). A caller gathering the message can reserve this much
    /// at once; it is never more than `max_message_size`.
    pub fn message_len(&self) -> u64 {
        self.rx.message.map_or(0, |m| m.len)
    }

    /// Whether a close frame was both received and sent (written out by `poll_transmit`): the
    /// closing handshake is complete and the TCP connection must now be closed (§5.5.1). The
    /// peer sends nothing after its close frame, so closing at once loses nothing; a connection
    /// that failed instead has received no close frame, and its peer may still be sending.
    pub fn close_handshake_done(&self) -> bool {
        self.phase == Phase::Closed { close: Some(CloseOut::Written), received: true }
    }

    /// Payload bytes of the data frame being received that have not arrived yet (0 between
    /// frames, inside a control frame, and once closing or failed). Every one of them is
    /// payload, so a caller gathering a large message may read them straight into its message
    /// buffer and pass that region to [`Connection::handle_bytes`], which unmasks and checks it
    /// in place and returns it whole as the piece: no copy out of a shared read buffer.
    pub fn payload_remaining(&self) -> u64 {
        match self.rx.frame {
            Some(f) if self.reading() => {
                if f.opcode.is_control() {
                    0
                } else {
                    f.remaining
                }
            }
            _ => 0,
        }
    }

    /// Whether a fragmented send is open (its next frame must continue it).
    pub const fn tx_is_fragmenting(&self) -> bool {
        self.tx_open.is_some()
    }

    fn check_can_send(&self) -> Result<(), SendError> {
        match self.phase {
            Phase::Connecting => Err(SendError::NotOpen),
            // §5.5.1: data may be sent until this end's close frame.
            Phase::Open | Phase::CloseReceived { reply_queued: false } => Ok(()),
            Phase::CloseSent(_)
            | Phase::CloseReceived { reply_queued: true }
            | Phase::Closed { .. } => Err(SendError::Closing),
        }
    }

    /// Encodes one data frame (header and payload, masked for a client) into `out` and returns
    /// its length. `fin == false` opens or continues a fragmented message (§5.4): its later
    /// frames go out as continuations, and `kind` must stay the same until the frame with
    /// `fin == true`.
    ///
    /// # Errors
    /// Not open, closing, a `kind` that does not match the open fragmented message, or `out`
    /// too small (nothing is recorded then, so the call can be repeated with a larger buffer).
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
        out: &mut [u8],
        mask: [u8; 4],
    ) -> Result<usize, SendError> {
        let (head, n) = self.data_header(kind, payload.len() as u64, fin, mask)?;
        let needed = self.fill(&head[..n], payload, out, mask)?;
        self.tx_open = if fin { None } else { Some(kind) };
        Ok(needed)
    }

    /// Writes a frame's header and payload into `out`, masking the payload for a client.
    fn fill(
        &self,
        head: &[u8],
        payload: &[u8],
        out: &mut [u8],
        mask: [u8; 4],
    ) -> Result<usize, SendError> {
        let (n, needed) = (head.len(), head.len() + payload.len());
        let out =
            out.get_mut(..needed).ok_or(SendError::BufferTooSmall(BufferTooSmall { needed }))?;
        out[..n].copy_from_slice(head);
        out[n..].copy_from_slice(payload);
        if self.role == Role::Client {
            apply_mask(&mut out[n..], mask, 0);
        }
        Ok(needed)
    }

    /// Encodes only the header of a data frame, for a server that sends one payload to many
    /// connections without copying it (server frames are not masked, so the payload bytes are
    /// the same on the wire for everyone). A client must use [`Connection::send`].
    ///
    /// # Errors
    /// As [`Connection::send`]; and `NotOpen` for a client.
    pub fn encode_data_header(
        &mut self,
        kind: MessageKind,
        payload_len: u64,
        fin: bool,
    ) -> Result<([u8; MAX_HEADER_LEN], usize), SendError> {
        if self.role == Role::Client {
            return Err(SendError::NotOpen);
        }
        let r = self.data_header(kind, payload_len, fin, [0; 4])?;
        self.tx_open = if fin { None } else { Some(kind) };
        Ok(r)
    }

    /// Encodes one whole compressed message (RSV1 set, RFC 7692 §6): `payload` is what the
    /// caller's [`crate::proto::deflate::Deflater`] made of it. As [`Connection::send`]
    /// otherwise; `NotOpen` if compression was not agreed, `Fragmentation` inside a fragmented
    /// send.
    pub fn send_compressed(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        out: &mut [u8],
        mask: [u8; 4],
    ) -> Result<usize, SendError> {
        if !self.compression {
            return Err(SendError::NotOpen);
        }
        if self.tx_open.is_some() {
            return Err(SendError::Fragmentation);
        }
        let (mut head, n) = self.data_header(kind, payload.len() as u64, true, mask)?;
        head[0] |= 0x40;
        self.fill(&head[..n], payload, out, mask)
    }

    /// The header of one whole compressed message from a server (RSV1 set), for a payload
    /// shared by many connections (see [`Connection::encode_data_header`]).
    pub fn encode_compressed_header(
        &mut self,
        kind: MessageKind,
        payload_len: u64,
    ) -> Result<([u8; MAX_HEADER_LEN], usize), SendError> {
        if !self.compression || self.role == Role::Client {
            return Err(SendError::NotOpen);
        }
        if self.tx_open.is_some() {
            return Err(SendError::Fragmentation);
        }
        let (mut head, n) = self.data_header(kind, payload_len, true, [0; 4])?;
        head[0] |= 0x40;
        Ok((head, n))
    }

    fn data_header(
        &self,
        kind: MessageKind,
        payload_len: u64,
        fin: bool,
        mask: [u8; 4],
    ) -> Result<([u8; MAX_HEADER_LEN], usize), SendError> {
        self.check_can_send()?;
        let opcode = match self.tx_open {
            None => kind.opcode(),
            Some(open) if open == kind => Opcode::Continuation,
            Some(_) => return Err(SendError::Fragmentation),
        };
        let mask = (self.role == Role::Client).then_some(mask);
        let h = FrameHeader { fin, rsv: 0, opcode, mask, payload_len };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut head);
        Ok((head, n))
    }

    /// The next instant at which [`Connection::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Duration> {
        at(self.next_deadline())
    }

    /// [`Connection::poll_timeout`] in nanoseconds (no conversion to a `Duration`); the
    /// runtime's, so not in the core built alone.
    #[cfg(feature = "server")]
    pub(crate) fn deadline_nanos(&self) -> Option<u64> {
        let t = self.next_deadline();
        (t != NEVER).then_some(t)
    }

    /// The next deadline in nanoseconds, [`NEVER`] if none. Additions saturate, so a timer set
    /// far into the future (or off, [`NEVER`]) never wraps around to the past.
    fn next_deadline(&self) -> u64 {
        let t = &self.timers;
        let s = &self.settings;
        match self.state() {
            State::Connecting => t.handshake,
            State::Open => {
                let ping = if t.pong_deadline != NEVER {
                    t.pong_deadline
                } else {
                    t.last_rx.max(t.last_ping).saturating_add(s.ping)
                };
                ping.min(t.last_data_rx.saturating_add(s.idle))
            }
            State::CloseSent | State::CloseReceived | State::Closed => t.close_deadline,
        }
    }

    /// Acts on the deadline that passed at `now`, if one did, and says what it did. Call it
    /// again while [`Connection::poll_timeout`] is still at or before `now`.
    pub fn handle_timeout(&mut self, now: Duration) -> Option<Timeout> {
        let deadline = self.next_deadline();
        let now_ns = ns(now);
        if deadline == NEVER || now_ns < deadline {
            return None;
        }
        match self.phase {
            Phase::Connecting => {
                // §4.1: no frame is sent on a connection that never opened.
                self.phase = Phase::Closed { close: None, received: false };
                self.timers.handshake = NEVER;
                Some(Timeout::Handshake)
            }
            Phase::Open => {
                let t = self.timers;
                if t.pong_deadline != NEVER && now_ns >= t.pong_deadline {
                    self.fail(CloseCode::GOING_AWAY, "pong timeout", now);
                    return Some(Timeout::Pong);
                }
                if now_ns >= t.last_data_rx.saturating_add(self.settings.idle) {
                    self.queue_close(Some(CloseCode::GOING_AWAY), "idle timeout", now);
                    return Some(Timeout::Idle);
                }
                self.pending_ping = true;
                self.timers.last_ping = now_ns;
                self.timers.pong_deadline = now_ns.saturating_add(self.settings.pong);
                Some(Timeout::Ping)
            }
            Phase::CloseSent(_) | Phase::CloseReceived { .. } | Phase::Closed { .. } => {
                // §7.1.1: the closing handshake took too long: close the TCP connection.
                self.phase = match self.phase {
                    Phase::CloseSent(out) => Phase::Closed { close: Some(out), received: false },
                    Phase::CloseReceived { reply_queued } => Phase::Closed {
                        close: reply_queued.then_some(CloseOut::Queued),
                        received: true,
                    },
                    other => other,
                };
                self.timers.close_deadline = NEVER;
                Some(Timeout::Close)
            }
        }
    }

    /// Whether the boxed control payload buffers are allocated (they are only while a control
    /// payload is being received or waits to be sent).
    pub fn holds_control_buffer(&self) -> bool {
        self.spill.is_some()
    }

    /// Frees the control payload buffers once nothing is in them.
    fn release_spill(&mut self) {
        let busy = self.rx.control_len > 0
            || self.rx.frame.is_some_and(|f| f.opcode.is_control())
            || self.pong == Pending::Spilled
            || (self.close_queued() && self.close_len > 0);
        if !busy {
            self.spill = None;
        }
    }
}

/// Adds a frame's length to its message's, refusing a message over `max` (§10.4).
fn grow(len: u64, add: u64, max: u64) -> Result<u64, ProtocolError> {
    match len.checked_add(add) {
        Some(total) if total <= max => Ok(total),
        _ => Err(ProtocolError::MessageTooLarge),
    }
}
