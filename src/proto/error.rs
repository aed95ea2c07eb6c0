//! Every rule a peer can break, one variant each, with the answer it gets.
//!
//! Frame and message rules ([`ProtocolError`]) map to the close code sent before the connection
//! is failed (RFC 6455 §7.1.7, §7.4.1). Handshake and HTTP rules ([`HandshakeError`]) map to the
//! HTTP status of the rejection (RFC 6455 §4.2.2, RFC 9110, RFC 6585 §5).

use core::fmt;

use crate::proto::close::CloseCode;

/// A violation of RFC 6455 by the peer, found while reading frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set while no extension is negotiated (§5.2).
    ReservedBits,
    /// Opcode 0x3-0x7 or 0xB-0xF (§5.2).
    ReservedOpcode,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong,
    /// A control frame with FIN clear (§5.5).
    FragmentedControlFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    LengthTopBitSet,
    /// A client sent a frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// A frame's payload is larger than the configured frame limit (§10.4).
    FrameTooLarge,
    /// A message is larger than the configured message limit (§10.4).
    MessageTooLarge,
    /// A continuation frame arrived with no message open (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame arrived while a fragmented message was open (§5.4).
    ExpectedContinuation,
    /// A text message is not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close frame with a code that may not be sent on the wire (§7.4).
    InvalidCloseCode,
    /// A close frame whose reason is not valid UTF-8 (§5.5.1).
    InvalidCloseReason,
    /// RSV1 (a compressed message, RFC 7692 §6) on a continuation or control frame: it is set
    /// on a message's first frame only (§6.1), and control frames are never compressed.
    CompressedContinuation,
    /// A compressed message that does not inflate (RFC 7692 §6.2, RFC 1951).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code sent to the peer when this rule is broken (§7.4.1).
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::FrameTooLarge | Self::MessageTooLarge => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, fit for a close frame and a log line (under 123 bytes).
    pub const fn reason(self) -> &'static str {
        match self {
            Self::ReservedBits => "reserved bits set without an extension",
            Self::ReservedOpcode => "reserved opcode",
            Self::ControlFrameTooLong => "control frame over 125 bytes",
            Self::FragmentedControlFrame => "fragmented control frame",
            Self::LengthTopBitSet => "64-bit length with the top bit set",
            Self::UnmaskedFrame => "unmasked frame from a client",
            Self::MaskedFrame => "masked frame from a server",
            Self::FrameTooLarge => "frame too large",
            Self::MessageTooLarge => "message too large",
            Self::UnexpectedContinuation => "continuation frame with no message open",
            Self::ExpectedContinuation => "new message while a fragmented message is open",
            Self::InvalidUtf8 => "invalid UTF-8 in a text message",
            Self::InvalidClosePayload => "close frame with a 1-byte payload",
            Self::InvalidCloseCode => "invalid close code",
            Self::InvalidCloseReason => "invalid UTF-8 in a close reason",
            Self::CompressedContinuation => "RSV1 on a continuation or control frame",
            Self::InvalidCompressedData => "invalid compressed data",
        }
    }

    /// A stable snake_case name, for counters and structured logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReservedBits => "reserved_bits",
            Self::ReservedOpcode => "reserved_opcode",
            Self::ControlFrameTooLong => "control_frame_too_long",
            Self::FragmentedControlFrame => "fragmented_control_frame",
            Self::LengthTopBitSet => "length_top_bit_set",
            Self::UnmaskedFrame => "unmasked_frame",
            Self::MaskedFrame => "masked_frame",
            Self::FrameTooLarge => "frame_too_large",
            Self::MessageTooLarge => "message_too_large",
            Self::UnexpectedContinuation => "unexpected_continuation",
            Self::ExpectedContinuation => "expected_continuation",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidClosePayload => "invalid_close_payload",
            Self::InvalidCloseCode => "invalid_close_code",
            Self::InvalidCloseReason => "invalid_close_reason",
            Self::CompressedContinuation => "compressed_continuation",
            Self::InvalidCompressedData => "invalid_compressed_data",
        }
    }

    /// Every variant, for tables of counters.
    pub const ALL: [ProtocolError; 17] = [
        Self::ReservedBits,
        Self::ReservedOpcode,
        Self::ControlFrameTooLong,
        Self::FragmentedControlFrame,
        Self::LengthTopBitSet,
        Self::UnmaskedFrame,
        Self::MaskedFrame,
        Self::FrameTooLarge,
        Self::MessageTooLarge,
        Self::UnexpectedContinuation,
        Self::ExpectedContinuation,
        Self::InvalidUtf8,
        Self::InvalidClosePayload,
        Self::InvalidCloseCode,
        Self::InvalidCloseReason,
        Self::CompressedContinuation,
        Self::InvalidCompressedData,
    ];
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (close {})", self.reason(), self.close_code().0)
    }
}

/// A request or response head that breaks HTTP/1.1 or the opening handshake (RFC 6455 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    // --- HTTP/1.1 syntax and limits (RFC 9112) ---
    /// The head grew past the configured size before its blank line (RFC 6585 §5: 431).
    HeadTooLarge,
    /// More header fields than the configured count (431).
    TooManyHeaders,
    /// The request-target is longer than the configured limit (RFC 9110 §15.5.15: 414).
    TargetTooLong,
    /// The request-target holds a `#`: a fragment is never sent (RFC 9112 §3.2, RFC 3986
    /// §3.5), and an upstream could read the path as ending there (400).
    FragmentInTarget,
    /// The request line is not `METHOD SP TARGET SP HTTP/x.y` (400).
    MalformedRequestLine,
    /// The status line is not `HTTP/x.y SP CODE SP REASON` (a response error).
    MalformedStatusLine,
    /// A header line is not `name: value`, or holds a forbidden byte (400).
    MalformedHeader,
    /// An HTTP version other than 1.0 and 1.1 (505).
    UnsupportedHttpVersion,
    /// Both `Transfer-Encoding` and `Content-Length`, or differing `Content-Length`s: the framing
    /// is ambiguous, the classic request-smuggling setup (RFC 9112 §6.3) (400).
    AmbiguousFraming,
    /// A `Content-Length` that is not a number (400).
    InvalidContentLength,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: 501).
    UnsupportedTransferCoding,
    /// A chunked body that breaks the grammar of RFC 9112 §7.1 (400).
    MalformedChunk,
    /// A body larger than the server accepts (RFC 9110 §15.5.14: 413).
    BodyTooLarge,
    /// `Transfer-Encoding` in an HTTP/1.0 request: its framing is faulty (RFC 9112 §6.1) (400).
    TransferEncodingHttp10,
    /// No `Host` in an HTTP/1.1 request, or more than one (RFC 9112 §3.2) (400).
    MissingHost,
    /// A `Host` whose value is not `host [":" port]` (RFC 9112 §3.2, RFC 3986 §3.2.2) (400).
    InvalidHost,
    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1: 417).
    ExpectationFailed,
    /// More than one `Origin`: it is single-valued (RFC 6454 §7.3), and the rules that read it
    /// must not disagree on which one counts (400).
    RepeatedOrigin,

    // --- Server side: the client's upgrade request (RFC 6455 §4.2.1) ---
    /// An upgrade request whose method is not GET (405).
    MethodNotGet,
    /// An upgrade request over HTTP/1.0 (400).
    UpgradeNeedsHttp11,
    /// An upgrade request with a body (`Transfer-Encoding`, or a `Content-Length` other than 0):
    /// a front end could read the body where this server reads frames (400).
    UpgradeWithBody,
    /// The `Upgrade` header does not hold the token `websocket` (400).
    MissingUpgrade,
    /// The `Connection` header does not hold the token `upgrade` (400).
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Key`, or more than one (400).
    MissingKey,
    /// A `Sec-WebSocket-Key` that does not decode to exactly 16 bytes (400).
    InvalidKey,
    /// No `Sec-WebSocket-Version` (426 with `Sec-WebSocket-Version: 13`).
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than 13 (426 with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,

    // --- Client side: the server's response (RFC 6455 §4.1) ---
    /// The server answered with a status other than 101.
    UnexpectedStatus(u16),
    /// The response has no `Upgrade: websocket`.
    ResponseMissingUpgrade,
    /// The response has no `Connection: upgrade`.
    ResponseMissingConnection,
    /// `Sec-WebSocket-Accept` is missing or does not match the key sent.
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer.
    UnofferedProtocol,
    /// The server chose an extension the client did not offer.
    UnofferedExtension,
}

impl HandshakeError {
    /// The HTTP status a server answers with (for client-side errors: 0, nothing is sent).
    pub const fn status(self) -> u16 {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::TargetTooLong => 414,
            Self::UnsupportedHttpVersion => 505,
            Self::UnsupportedTransferCoding => 501,
            Self::BodyTooLarge => 413,
            Self::ExpectationFailed => 417,
            Self::MethodNotGet => 405,
            Self::MissingVersion | Self::UnsupportedVersion => 426,
            Self::MalformedRequestLine
            | Self::FragmentInTarget
            | Self::AmbiguousFraming
            | Self::InvalidContentLength
            | Self::MalformedChunk
            | Self::TransferEncodingHttp10
            | Self::InvalidHost
            | Self::RepeatedOrigin
            | Self::MalformedHeader
            | Self::UpgradeNeedsHttp11
            | Self::UpgradeWithBody
            | Self::MissingHost
            | Self::MissingUpgrade
            | Self::MissingConnectionUpgrade
            | Self::MissingKey
            | Self::InvalidKey => 400,
            Self::MalformedStatusLine
            | Self::UnexpectedStatus(_)
            | Self::ResponseMissingUpgrade
            | Self::ResponseMissingConnection
            | Self::AcceptMismatch
            | Self::UnofferedProtocol
            | Self::UnofferedExtension => 0,
        }
    }

    /// A readable reason, for the response body and the log line.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "request head too large",
            Self::TooManyHeaders => "too many header fields",
            Self::TargetTooLong => "request-target too long",
            Self::MalformedRequestLine => "malformed request line",
            Self::FragmentInTarget => "a request-target has no fragment (#)",
            Self::MalformedStatusLine => "malformed status line",
            Self::MalformedHeader => "malformed header field",
            Self::UnsupportedHttpVersion => "unsupported HTTP version",
            Self::AmbiguousFraming => {
                "ambiguous body framing (Transfer-Encoding and Content-Length)"
            }
            Self::InvalidContentLength => "invalid Content-Length",
            Self::UnsupportedTransferCoding => "unsupported transfer coding (only chunked)",
            Self::MalformedChunk => "malformed chunked body",
            Self::BodyTooLarge => "request body too large",
            Self::TransferEncodingHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            Self::InvalidHost => "invalid Host header",
            Self::ExpectationFailed => "unsupported expectation (only 100-continue)",
            Self::RepeatedOrigin => "repeated Origin header",
            Self::MethodNotGet => "a WebSocket upgrade must use GET",
            Self::UpgradeNeedsHttp11 => "a WebSocket upgrade needs HTTP/1.1",
            Self::UpgradeWithBody => "a WebSocket upgrade has no body",
            Self::MissingHost => "missing or repeated Host header",
            Self::MissingUpgrade => "missing Upgrade: websocket",
            Self::MissingConnectionUpgrade => "missing Connection: upgrade",
            Self::MissingKey => "missing or repeated Sec-WebSocket-Key",
            Self::InvalidKey => "Sec-WebSocket-Key is not 16 bytes in base64",
            Self::MissingVersion => "missing Sec-WebSocket-Version",
            Self::UnsupportedVersion => "unsupported Sec-WebSocket-Version (13 is supported)",
            Self::UnexpectedStatus(_) => "the server did not answer 101",
            Self::ResponseMissingUpgrade => "response lacks Upgrade: websocket",
            Self::ResponseMissingConnection => "response lacks Connection: upgrade",
            Self::AcceptMismatch => "Sec-WebSocket-Accept does not match the key",
            Self::UnofferedProtocol => "the server chose a subprotocol that was not offered",
            Self::UnofferedExtension => "the server chose an extension that was not offered",
        }
    }

    /// A stable snake_case name, for counters and structured logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "head_too_large",
            Self::TooManyHeaders => "too_many_headers",
            Self::TargetTooLong => "target_too_long",
            Self::MalformedRequestLine => "malformed_request_line",
            Self::FragmentInTarget => "fragment_in_target",
            Self::MalformedStatusLine => "malformed_status_line",
            Self::MalformedHeader => "malformed_header",
            Self::UnsupportedHttpVersion => "unsupported_http_version",
            Self::AmbiguousFraming => "ambiguous_framing",
            Self::InvalidContentLength => "invalid_content_length",
            Self::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Self::MalformedChunk => "malformed_chunk",
            Self::BodyTooLarge => "body_too_large",
            Self::TransferEncodingHttp10 => "transfer_encoding_http10",
            Self::InvalidHost => "invalid_host",
            Self::ExpectationFailed => "expectation_failed",
            Self::RepeatedOrigin => "repeated_origin",
            Self::MethodNotGet => "method_not_get",
            Self::UpgradeNeedsHttp11 => "upgrade_needs_http11",
            Self::UpgradeWithBody => "upgrade_with_body",
            Self::MissingHost => "missing_host",
            Self::MissingUpgrade => "missing_upgrade",
            Self::MissingConnectionUpgrade => "missing_connection_upgrade",
            Self::MissingKey => "missing_key",
            Self::InvalidKey => "invalid_key",
            Self::MissingVersion => "missing_version",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnexpectedStatus(_) => "unexpected_status",
            Self::ResponseMissingUpgrade => "response_missing_upgrade",
            Self::ResponseMissingConnection => "response_missing_connection",
            Self::AcceptMismatch => "accept_mismatch",
            Self::UnofferedProtocol => "unoffered_protocol",
            Self::UnofferedExtension => "unoffered_extension",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedStatus(code) => write!(f, "{} ({code})", self.reason()),
            _ => f.write_str(self.reason()),
        }
    }
}

/// An encoder was given an output buffer too small for what it had to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// The number of bytes the output needed.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

/// Result of a parser that may need more input: "need more bytes" is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a whole item.
    Complete(T),
    /// The input ends before the item does; call again with more bytes.
    Partial,
}
