//! One tunnel message: a 6-byte header (type, flags, stream id) and a payload, carried as one
//! binary WebSocket message. `docs/tunnel.md` has the table of types and payloads.
//!
//! ```text
//!  0        1        2                                  6
//! +--------+--------+--------+--------+--------+--------+---------------------
//! |  type  | flags  |      stream id (u32, big-endian)  |  payload ...
//! +--------+--------+--------+--------+--------+--------+---------------------
//! ```
//!
//! The WebSocket layer delivers whole messages, so [`decode`] takes one whole message: input that
//! is shorter than its type needs is [`WireError::Truncated`], never "need more bytes".

use core::fmt;

use crate::proto::error::BufferTooSmall;
use crate::proto::frame::Opcode;

/// The header: type, flags, stream id.
pub const HEADER_LEN: usize = 6;

/// The largest payload of one message. A fixed part of the wire format, so that the two ends
/// never disagree on it: larger bodies and relayed messages are sent in pieces.
pub const MAX_PAYLOAD: usize = 64 << 10;

/// The largest tunnel message: the WebSocket carrying the tunnel must accept messages this long.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + MAX_PAYLOAD;

/// The largest window (or credit) a stream may hold: 2^31 - 1 bytes, as in HTTP/2
/// (RFC 9113 §6.9.1), so sums of two windows never overflow a `u32`.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The longest target name (the name an agent exposes a service under, such as `web`).
pub const MAX_TARGET_LEN: usize = 64;

/// The longest control message the session queues itself (`WINDOW`, the longest of those).
pub const MAX_CONTROL_LEN: usize = HEADER_LEN + 4;

/// A stream's number; 0 is never a stream.
pub type StreamId = u32;

/// The type byte of each message.
pub mod kind {
    /// Opens a stream to a target: window, target name, request head.
    pub const OPEN: u8 = 0x1;
    /// Accepts a stream: window, response head.
    pub const OPEN_OK: u8 = 0x2;
    /// Bytes of an HTTP body (or any byte stream).
    pub const DATA: u8 = 0x3;
    /// A piece of a relayed WebSocket message: its type byte, then its payload.
    pub const MESSAGE: u8 = 0x4;
    /// A credit grant: the receiver may be sent this many more bytes.
    pub const WINDOW: u8 = 0x5;
    /// Half-close: the sender sends nothing more on this stream.
    pub const FIN: u8 = 0x6;
    /// Ends the stream at once, both ways, with a cause.
    pub const RESET: u8 = 0x7;
}

/// `OPEN` flag: the request head is a WebSocket upgrade.
pub const FLAG_WEBSOCKET: u8 = 0x01;
/// `MESSAGE` flag: more pieces of this relayed message follow.
pub const FLAG_MORE: u8 = 0x01;

/// Why a stream was reset. Codes not listed here are passed on as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetCause(pub u8);

impl ResetCause {
    /// The stream cap of the receiver was reached.
    pub const REFUSED: ResetCause = ResetCause(1);
    /// The receiver exposes no target of that name.
    pub const UNKNOWN_TARGET: ResetCause = ResetCause(2);
    /// The `OPEN` was not answered in time.
    pub const OPEN_TIMEOUT: ResetCause = ResetCause(3);
    /// The peer sent more than its credit, or granted a window past [`MAX_WINDOW`]; the
    /// binary's relay also resets with it a stream past its tunnel's cap of bytes waiting for
    /// the credit the peer withholds (`relay::MAX_WAITING`).
    pub const FLOW_CONTROL: ResetCause = ResetCause(4);
    /// The peer broke the stream's sequence (data after `FIN`, a bad relayed-message sequence).
    pub const PROTOCOL: ResetCause = ResetCause(5);
    /// The application gave up on the stream (the public client went away).
    pub const CANCEL: ResetCause = ResetCause(6);
    /// The agent could not reach the service behind the target.
    pub const CONNECT_FAILED: ResetCause = ResetCause(7);
    /// The end is shutting down.
    pub const SHUTDOWN: ResetCause = ResetCause(8);

    /// A stable snake_case name, for counters (`resets by cause`) and logs.
    pub const fn name(self) -> &'static str {
        match self.0 {
            1 => "refused",
            2 => "unknown_target",
            3 => "open_timeout",
            4 => "flow_control",
            5 => "protocol",
            6 => "cancel",
            7 => "connect_failed",
            8 => "shutdown",
            _ => "other",
        }
    }
}

/// One decoded tunnel message; payloads borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Opens `stream` to `target`, granting the receiver `window` bytes of credit.
    Open {
        /// The new stream.
        stream: StreamId,
        /// The credit the opener grants for what the receiver sends back.
        window: u32,
        /// The head is a WebSocket upgrade: the stream will carry relayed messages.
        websocket: bool,
        /// The exposed name, 1 to 64 bytes of `A-Z a-z 0-9 . _ -`.
        target: &'a str,
        /// The HTTP/1.1 request head, opaque to the tunnel.
        head: &'a [u8],
    },
    /// Accepts `stream`, granting the opener `window` bytes of credit.
    OpenOk {
        /// The stream accepted.
        stream: StreamId,
        /// The credit the receiver grants for what the opener sends.
        window: u32,
        /// The HTTP/1.1 response head (a 101 for an upgrade), opaque to the tunnel.
        head: &'a [u8],
    },
    /// Body bytes.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes; they take this much credit.
        data: &'a [u8],
    },
    /// A piece of a relayed WebSocket message (seed 003's encoding: a type byte, the payload).
    Relay {
        /// The stream.
        stream: StreamId,
        /// The message type, with RFC 6455's opcode numbers (0 continues a message).
        opcode: Opcode,
        /// More pieces of this message follow.
        more: bool,
        /// The payload of this piece; it takes `1 + data.len()` credit.
        data: &'a [u8],
    },
    /// A credit grant.
    Window {
        /// The stream.
        stream: StreamId,
        /// How many more bytes the sender of this message may be sent, at least 1.
        increment: u32,
    },
    /// Half-close.
    Fin {
        /// The stream.
        stream: StreamId,
    },
    /// Ends the stream.
    Reset {
        /// The stream.
        stream: StreamId,
        /// Why.
        cause: ResetCause,
    },
}

impl Message<'_> {
    /// The stream the message is about.
    pub const fn stream(&self) -> StreamId {
        match *self {
            Self::Open { stream, .. }
            | Self::OpenOk { stream, .. }
            | Self::Data { stream, .. }
            | Self::Relay { stream, .. }
            | Self::Window { stream, .. }
            | Self::Fin { stream }
            | Self::Reset { stream, .. } => stream,
        }
    }

    /// The credit the message takes from its stream's window (`DATA` and `MESSAGE` payloads).
    pub const fn credit(&self) -> usize {
        match *self {
            Self::Data { data, .. } => data.len(),
            Self::Relay { data, .. } => 1 + data.len(),
            _ => 0,
        }
    }

    /// The encoded length.
    pub const fn encoded_len(&self) -> usize {
        HEADER_LEN
            + match *self {
                Self::Open { target, head, .. } => 5 + target.len() + head.len(),
                Self::OpenOk { head, .. } => 4 + head.len(),
                Self::Data { data, .. } => data.len(),
                Self::Relay { data, .. } => 1 + data.len(),
                Self::Window { .. } => 4,
                Self::Fin { .. } => 0,
                Self::Reset { .. } => 1,
            }
    }
}

/// A message that breaks the wire format. Each fails the whole tunnel (the WebSocket is closed
/// with 1002): an end that sends one is broken, and nothing it sends after can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Shorter than the header, or than the fixed fields of its type.
    Truncated,
    /// A payload over [`MAX_PAYLOAD`].
    TooLong,
    /// A type byte that is not one of the seven.
    UnknownType,
    /// A flag bit its type does not define.
    BadFlags,
    /// Stream id 0.
    ZeroStreamId,
    /// `WINDOW`, `FIN` or `RESET` with a payload of the wrong length.
    BadLength,
    /// A window or increment of 0 (for `WINDOW`) or over [`MAX_WINDOW`].
    BadWindow,
    /// A target name empty, over 64 bytes, or with a byte outside `A-Z a-z 0-9 . _ -`.
    BadTarget,
    /// A relayed message type that is not 0, 1, 2, 8, 9 or 10.
    BadOpcode,
    /// A relayed close, ping or pong in pieces, or over 125 bytes (RFC 6455 §5.5).
    BadControl,
}

impl WireError {
    /// A short reason, fit for a close frame and a log line.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Truncated => "tunnel message truncated",
            Self::TooLong => "tunnel message payload over 64 KiB",
            Self::UnknownType => "unknown tunnel message type",
            Self::BadFlags => "undefined flag set on a tunnel message",
            Self::ZeroStreamId => "tunnel message for stream 0",
            Self::BadLength => "tunnel control message of the wrong length",
            Self::BadWindow => "tunnel window of 0 or over 2^31-1",
            Self::BadTarget => "invalid tunnel target name",
            Self::BadOpcode => "invalid relayed message type",
            Self::BadControl => "relayed control message fragmented or over 125 bytes",
        }
    }

    /// A stable snake_case name, for counters and structured logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::TooLong => "too_long",
            Self::UnknownType => "unknown_type",
            Self::BadFlags => "bad_flags",
            Self::ZeroStreamId => "zero_stream_id",
            Self::BadLength => "bad_length",
            Self::BadWindow => "bad_window",
            Self::BadTarget => "bad_target",
            Self::BadOpcode => "bad_opcode",
            Self::BadControl => "bad_control",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Whether `name` may be a target name: 1 to 64 bytes of `A-Z a-z 0-9 . _ -`.
pub fn valid_target(name: &[u8]) -> bool {
    (1..=MAX_TARGET_LEN).contains(&name.len())
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Decodes one whole tunnel message.
///
/// # Errors
/// The rule the message breaks; every byte of `msg` is checked, nothing is allocated.
pub fn decode(msg: &[u8]) -> Result<Message<'_>, WireError> {
    let Some((&[ty, flags, a, b, c, d], payload)) = msg.split_first_chunk::<HEADER_LEN>() else {
        return Err(WireError::Truncated);
    };
    let stream = u32::from_be_bytes([a, b, c, d]);
    if !(kind::OPEN..=kind::RESET).contains(&ty) {
        return Err(WireError::UnknownType);
    }
    let allowed = match ty {
        kind::OPEN => FLAG_WEBSOCKET,
        kind::MESSAGE => FLAG_MORE,
        _ => 0,
    };
    if flags & !allowed != 0 {
        return Err(WireError::BadFlags);
    }
    if stream == 0 {
        return Err(WireError::ZeroStreamId);
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(WireError::TooLong);
    }
    Ok(match ty {
        kind::OPEN => {
            let (window, rest) = window_prefix(payload)?;
            let (&len, rest) = rest.split_first().ok_or(WireError::Truncated)?;
            let (target, head) =
                rest.split_at_checked(usize::from(len)).ok_or(WireError::Truncated)?;
            if !valid_target(target) {
                return Err(WireError::BadTarget);
            }
            let target = core::str::from_utf8(target).map_err(|_| WireError::BadTarget)?;
            Message::Open { stream, window, websocket: flags != 0, target, head }
        }
        kind::OPEN_OK => {
            let (window, head) = window_prefix(payload)?;
            Message::OpenOk { stream, window, head }
        }
        kind::DATA => Message::Data { stream, data: payload },
        kind::MESSAGE => {
            let (&op, data) = payload.split_first().ok_or(WireError::Truncated)?;
            let opcode = Opcode::from_u4(op).map_err(|_| WireError::BadOpcode)?;
            let more = flags != 0;
            // RFC 6455 §5.5: control frames are not fragmented and carry at most 125 bytes.
            if opcode.is_control() && (more || data.len() > 125) {
                return Err(WireError::BadControl);
            }
            Message::Relay { stream, opcode, more, data }
        }
        kind::WINDOW => {
            let [a, b, c, d] = *payload else { return Err(WireError::BadLength) };
            let increment = u32::from_be_bytes([a, b, c, d]);
            if increment == 0 || increment > MAX_WINDOW {
                return Err(WireError::BadWindow);
            }
            Message::Window { stream, increment }
        }
        kind::FIN => {
            if !payload.is_empty() {
                return Err(WireError::BadLength);
            }
            Message::Fin { stream }
        }
        _ => {
            let [cause] = *payload else { return Err(WireError::BadLength) };
            Message::Reset { stream, cause: ResetCause(cause) }
        }
    })
}

/// A window field (0 allowed: an `OPEN` may grant nothing yet) and what follows it.
fn window_prefix(payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    let (w, rest) = payload.split_first_chunk::<4>().ok_or(WireError::Truncated)?;
    let window = u32::from_be_bytes(*w);
    if window > MAX_WINDOW {
        return Err(WireError::BadWindow);
    }
    Ok((window, rest))
}

/// Encodes `msg` into `out`, returning the length written.
///
/// The caller keeps the rules [`decode`] checks (the session does): a target name that is not
/// [`valid_target`], a payload over [`MAX_PAYLOAD`] or a window over [`MAX_WINDOW`] encodes into
/// a message the peer refuses.
///
/// # Errors
/// `out` is shorter than [`Message::encoded_len`]; nothing is written.
pub fn encode(msg: &Message<'_>, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let needed = msg.encoded_len();
    let Some(out) = out.get_mut(..needed) else { return Err(BufferTooSmall { needed }) };
    let (ty, flags) = match *msg {
        Message::Open { websocket, .. } => (kind::OPEN, if websocket { FLAG_WEBSOCKET } else { 0 }),
        Message::OpenOk { .. } => (kind::OPEN_OK, 0),
        Message::Data { .. } => (kind::DATA, 0),
        Message::Relay { more, .. } => (kind::MESSAGE, if more { FLAG_MORE } else { 0 }),
        Message::Window { .. } => (kind::WINDOW, 0),
        Message::Fin { .. } => (kind::FIN, 0),
        Message::Reset { .. } => (kind::RESET, 0),
    };
    let (head, body) = out.split_at_mut(HEADER_LEN);
    head[0] = ty;
    head[1] = flags;
    head[2..].copy_from_slice(&msg.stream().to_be_bytes());
    let mut w = Writer { out: body, pos: 0 };
    match *msg {
        Message::Open { window, target, head, .. } => {
            w.put(&window.to_be_bytes());
            w.put(&[target.len() as u8]);
            w.put(target.as_bytes());
            w.put(head);
        }
        Message::OpenOk { window, head, .. } => {
            w.put(&window.to_be_bytes());
            w.put(head);
        }
        Message::Data { data, .. } => w.put(data),
        Message::Relay { opcode, data, .. } => {
            w.put(&[opcode as u8]);
            w.put(data);
        }
        Message::Window { increment, .. } => w.put(&increment.to_be_bytes()),
        Message::Fin { .. } => {}
        Message::Reset { cause, .. } => w.put(&[cause.0]),
    }
    Ok(needed)
}

/// Appends to a slice already known to be long enough.
struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        self.out[self.pos..end].copy_from_slice(bytes);
        self.pos = end;
    }
}
