//! Every rule a peer can break, one variant each, with the answer it gets.
//!
//! Frame and message rules ([`ProtocolError`]) map to the close code sent before the connection
//! is failed (RFC 6455 §7.1.7, §7.4.1). Handshake and HTTP rules map to the HTTP status of the
//! rejection (RFC 6455 §4.2.2, RFC 9110, RFC 6585 §5), in one type per cause: [`HttpError`] (the
//! head), [`BodyError`] (a request body), [`UpgradeError`] (a server's check of an upgrade
//! request), [`ResponseError`] (a client's check of the answer), nested in [`HandshakeError`].

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

/// One rule of the opening handshake as its error types state it.
#[derive(Clone, Copy)]
struct Rule {
    status: u16,
    rfc: &'static str,
    name: &'static str,
    reason: &'static str,
}

/// The methods that read a [`Rule`]'s columns, for a type with `const fn rule(self) -> Rule`.
macro_rules! rule_methods {
    () => {
        /// The HTTP status a server answers with; 0 when nothing is answered (the peer is a
        /// server: a client sends no status).
        pub const fn status(self) -> u16 {
            self.rule().status
        }

        /// The rule broken, as the RFC and section that state it (`"RFC 9112 §3.2"`).
        pub const fn rfc(self) -> &'static str {
            self.rule().rfc
        }

        /// A stable snake_case name, for counters and structured logs.
        pub const fn name(self) -> &'static str {
            self.rule().name
        }

        /// A readable reason, for the response body and the log line.
        pub const fn reason(self) -> &'static str {
            self.rule().reason
        }
    };
}

/// Declares one error type of the opening handshake: an enum with one variant per rule, each
/// given as `Variant = (status, "RFC section", "stable_name", "reason")`, and the methods that
/// read those four columns. A variant may carry one value (the unexpected status code), which
/// no column depends on.
macro_rules! rules {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident $(($field:ty))? = ($status:literal, $rfc:literal, $key:literal, $reason:literal),
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[doc = $doc])* $variant $(($field))?, )*
        }

        impl $name {
            const fn rule(self) -> Rule {
                match self {
                    $(Self::$variant { .. } => Rule {
                        status: $status,
                        rfc: $rfc,
                        name: $key,
                        reason: $reason,
                    },)*
                }
            }

            rule_methods!();
        }

        impl fmt::Display for $name {
            /// The reason, and the value a variant carries in parentheses.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $($(Self::$variant(value) => {
                        let value: &$field = value;
                        write!(f, "{} ({value})", self.reason())
                    })?)*
                    #[allow(unreachable_patterns)]
                    _ => f.write_str(self.reason()),
                }
            }
        }

        impl core::error::Error for $name {}
    };
}

rules! {
    /// A request or response head that breaks HTTP/1.1's syntax, its limits, or a rule of its
    /// header fields (RFC 9112, RFC 9110): found by [`crate::proto::http`] before anything reads
    /// the head as a WebSocket handshake.
    pub enum HttpError {
        /// The head grew past the configured size before its blank line (431).
        HeadTooLarge = (431, "RFC 6585 §5", "head_too_large", "request head too large"),
        /// More header fields than the configured count (431).
        TooManyHeaders = (431, "RFC 6585 §5", "too_many_headers", "too many header fields"),
        /// The request-target is longer than the configured limit (414).
        TargetTooLong = (414, "RFC 9110 §15.5.15", "target_too_long", "request-target too long"),
        /// The request-target holds a `#`: a fragment is never sent (RFC 3986 §3.5), and an
        /// upstream could read the path as ending there (400).
        FragmentInTarget = (400, "RFC 9112 §3.2", "fragment_in_target", "a request-target has no fragment (#)"),
        /// The request line is not `METHOD SP TARGET SP HTTP/x.y` (400).
        MalformedRequestLine = (400, "RFC 9112 §3", "malformed_request_line", "malformed request line"),
        /// The status line is not `HTTP/x.y SP CODE SP REASON` (a server's answer: nothing is
        /// sent back).
        MalformedStatusLine = (0, "RFC 9112 §4", "malformed_status_line", "malformed status line"),
        /// A header line is not `name: value`, or holds a forbidden byte (400).
        MalformedHeader = (400, "RFC 9112 §5", "malformed_header", "malformed header field"),
        /// An HTTP version other than 1.0 and 1.1 (505).
        UnsupportedHttpVersion = (505, "RFC 9112 §2.3", "unsupported_http_version", "unsupported HTTP version"),
        /// No `Host` in an HTTP/1.1 request, or more than one (400).
        MissingHost = (400, "RFC 9112 §3.2", "missing_host", "missing or repeated Host header"),
        /// A `Host` whose value is not `host [":" port]` (RFC 3986 §3.2.2) (400).
        InvalidHost = (400, "RFC 9112 §3.2", "invalid_host", "invalid Host header"),
        /// An `Expect` other than `100-continue` (417).
        ExpectationFailed = (417, "RFC 9110 §10.1.1", "expectation_failed", "unsupported expectation (only 100-continue)"),
        /// More than one `Origin`: it is single-valued, and the rules that read it must not
        /// disagree on which one counts (400).
        RepeatedOrigin = (400, "RFC 6454 §7.3", "repeated_origin", "repeated Origin header"),
    }
}

rules! {
    /// A request body whose framing is ambiguous or unsupported, or whose chunked coding is
    /// broken or too large (RFC 9112 §6, §7): found by [`crate::proto::body`].
    pub enum BodyError {
        /// Both `Transfer-Encoding` and `Content-Length`, or differing `Content-Length`s: the
        /// classic request-smuggling setup (400).
        AmbiguousFraming = (400, "RFC 9112 §6.3", "ambiguous_framing", "ambiguous body framing (Transfer-Encoding and Content-Length)"),
        /// A `Content-Length` that is not a number (400).
        InvalidContentLength = (400, "RFC 9112 §6.3", "invalid_content_length", "invalid Content-Length"),
        /// A transfer coding other than `chunked` (501).
        UnsupportedTransferCoding = (501, "RFC 9112 §6.1", "unsupported_transfer_coding", "unsupported transfer coding (only chunked)"),
        /// `Transfer-Encoding` in an HTTP/1.0 request: its framing is faulty (400).
        TransferEncodingHttp10 = (400, "RFC 9112 §6.1", "transfer_encoding_http10", "Transfer-Encoding in an HTTP/1.0 request"),
        /// A chunked body that breaks the grammar (400).
        MalformedChunk = (400, "RFC 9112 §7.1", "malformed_chunk", "malformed chunked body"),
        /// A body larger than the server accepts (413).
        TooLarge = (413, "RFC 9110 §15.5.14", "body_too_large", "request body too large"),
    }
}

rules! {
    /// A client's WebSocket upgrade request that a server refuses (RFC 6455 §4.2.1): found by
    /// [`crate::proto::handshake::classify`].
    pub enum UpgradeError {
        /// An upgrade request whose method is not GET (405).
        MethodNotGet = (405, "RFC 6455 §4.2.1", "method_not_get", "a WebSocket upgrade must use GET"),
        /// An upgrade request over HTTP/1.0 (400).
        NotHttp11 = (400, "RFC 6455 §4.2.1", "upgrade_needs_http11", "a WebSocket upgrade needs HTTP/1.1"),
        /// An upgrade request with a body (`Transfer-Encoding`, or a `Content-Length` other
        /// than 0): a front end could read the body where this server reads frames (400).
        HasBody = (400, "RFC 9110 §9.3.1", "upgrade_with_body", "a WebSocket upgrade has no body"),
        /// The `Upgrade` header does not hold the token `websocket` (400).
        MissingUpgrade = (400, "RFC 6455 §4.2.1", "missing_upgrade", "missing Upgrade: websocket"),
        /// The `Connection` header does not hold the token `upgrade` (400).
        MissingConnectionUpgrade = (400, "RFC 6455 §4.2.1", "missing_connection_upgrade", "missing Connection: upgrade"),
        /// No `Sec-WebSocket-Key`, or more than one (RFC 6455 §11.3.1) (400).
        MissingKey = (400, "RFC 6455 §4.2.1", "missing_key", "missing or repeated Sec-WebSocket-Key"),
        /// A `Sec-WebSocket-Key` that does not decode to exactly 16 bytes (400).
        InvalidKey = (400, "RFC 6455 §4.2.1", "invalid_key", "Sec-WebSocket-Key is not 16 bytes in base64"),
        /// No `Sec-WebSocket-Version` (426 with `Sec-WebSocket-Version: 13`, §4.4).
        MissingVersion = (426, "RFC 6455 §4.4", "missing_version", "missing Sec-WebSocket-Version"),
        /// A `Sec-WebSocket-Version` other than 13 (426 with `Sec-WebSocket-Version: 13`).
        UnsupportedVersion = (426, "RFC 6455 §4.4", "unsupported_version", "unsupported Sec-WebSocket-Version (13 is supported)"),
    }
}

rules! {
    /// A server's answer to a client's upgrade request that the client refuses (RFC 6455 §4.1,
    /// the steps after the request): found by
    /// [`crate::proto::handshake::ClientHandshake::check_response`]. Nothing is sent back
    /// ([`status`](Self::status) is 0): the client fails the connection.
    pub enum ResponseError {
        /// The server answered with a status other than 101 (the status it sent).
        UnexpectedStatus(u16) = (0, "RFC 6455 §4.1", "unexpected_status", "the server did not answer 101"),
        /// The response has no `Upgrade: websocket`.
        MissingUpgrade = (0, "RFC 6455 §4.1", "response_missing_upgrade", "response lacks Upgrade: websocket"),
        /// The response has no `Connection: upgrade`.
        MissingConnectionUpgrade = (0, "RFC 6455 §4.1", "response_missing_connection", "response lacks Connection: upgrade"),
        /// `Sec-WebSocket-Accept` is missing, repeated, or does not match the key sent.
        AcceptMismatch = (0, "RFC 6455 §4.1", "accept_mismatch", "Sec-WebSocket-Accept does not match the key"),
        /// The server chose a subprotocol the client did not offer.
        UnofferedProtocol = (0, "RFC 6455 §4.1", "unoffered_protocol", "the server chose a subprotocol that was not offered"),
        /// The server chose an extension the client did not offer.
        UnofferedExtension = (0, "RFC 6455 §4.1", "unoffered_extension", "the server chose an extension that was not offered"),
    }
}

/// Why an opening handshake failed, by cause, as rustls nests its errors: the HTTP head, the
/// request body, the server's check of an upgrade request, or the client's check of the
/// server's answer. Each cause keeps its rule's RFC section, HTTP status and reason, which the
/// methods here read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeError {
    /// HTTP/1.1 syntax and limits of a head (RFC 9112).
    Http(HttpError),
    /// A request body's framing or chunked coding (RFC 9112 §6, §7).
    Body(BodyError),
    /// A server's check of a client's upgrade request (RFC 6455 §4.2.1).
    Upgrade(UpgradeError),
    /// A client's check of the server's answer (RFC 6455 §4.1).
    Response(ResponseError),
}

impl HandshakeError {
    const fn rule(self) -> Rule {
        match self {
            Self::Http(e) => e.rule(),
            Self::Body(e) => e.rule(),
            Self::Upgrade(e) => e.rule(),
            Self::Response(e) => e.rule(),
        }
    }

    rule_methods!();
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => e.fmt(f),
            Self::Body(e) => e.fmt(f),
            Self::Upgrade(e) => e.fmt(f),
            Self::Response(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for HandshakeError {
    /// The cause, one of the nested types.
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Http(e) => Some(e),
            Self::Body(e) => Some(e),
            Self::Upgrade(e) => Some(e),
            Self::Response(e) => Some(e),
        }
    }
}

impl From<HttpError> for HandshakeError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

impl From<BodyError> for HandshakeError {
    fn from(e: BodyError) -> Self {
        Self::Body(e)
    }
}

impl From<UpgradeError> for HandshakeError {
    fn from(e: UpgradeError) -> Self {
        Self::Upgrade(e)
    }
}

impl From<ResponseError> for HandshakeError {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

impl core::error::Error for ProtocolError {}

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

impl core::error::Error for BufferTooSmall {}

/// Result of a parser that may need more input: "need more bytes" is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a whole item.
    Complete(T),
    /// The input ends before the item does; call again with more bytes.
    Partial,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn each_cause_keeps_its_rule_status_and_reason_when_nested() {
        let cases: [(HandshakeError, u16, &str, &str); 5] = [
            (HttpError::HeadTooLarge.into(), 431, "RFC 6585 §5", "head_too_large"),
            (BodyError::MalformedChunk.into(), 400, "RFC 9112 §7.1", "malformed_chunk"),
            (UpgradeError::UnsupportedVersion.into(), 426, "RFC 6455 §4.4", "unsupported_version"),
            (UpgradeError::MethodNotGet.into(), 405, "RFC 6455 §4.2.1", "method_not_get"),
            (ResponseError::AcceptMismatch.into(), 0, "RFC 6455 §4.1", "accept_mismatch"),
        ];
        for (e, status, rfc, name) in cases {
            assert_eq!((e.status(), e.rfc(), e.name()), (status, rfc, name), "{e:?}");
            assert_eq!(e.to_string(), e.reason());
        }
        // A carried value is shown, at either level.
        let refused = ResponseError::UnexpectedStatus(403);
        assert_eq!(refused.to_string(), "the server did not answer 101 (403)");
        assert_eq!(HandshakeError::from(refused).to_string(), refused.to_string());
    }
}
