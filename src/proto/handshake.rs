//! The opening handshake (RFC 6455 §4), for both roles.
//!
//! - Server: [`classify`] tells a WebSocket upgrade attempt from a plain HTTP request and
//!   validates the attempt (§4.2.1); [`write_accept`] writes the 101 answer (§4.2.2, with the
//!   accept key of §1.3 and §4.2.2 step 5.4); [`write_reject`] and [`write_error`] write the
//!   refusals (§4.2.2: 400, 426 with `Sec-WebSocket-Version: 13` per §4.4; RFC 9110 §15.5.6:
//!   405 with `Allow`).
//! - Client: [`ClientHandshake`] writes the request (§4.1) from a nonce the driver supplies, and
//!   checks the server's answer (§4.1, the five "the client MUST" steps after the request).
//!
//! Every writer fills a caller's `&mut [u8]` and, when it is too short, reports the size it
//! needed ([`BufferTooSmall`]); nothing allocates. The only extension is permessage-deflate
//! (RFC 7692, [`crate::proto::extension`]), checked here in a client's answer when it was offered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::proto::error::{BufferTooSmall, HandshakeError, HttpError, ResponseError, UpgradeError};
use crate::proto::extension::{self, Agreed, Policy};
use crate::proto::http::{self, Header, Headers, Request, Response, is_field_value, is_token};

/// The GUID appended to the key before hashing it into the accept value (§1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version spoken: `Sec-WebSocket-Version: 13` (§4.1, §11.6).
pub const VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key
/// followed by [`GUID`] (§1.3, §4.2.2).
///
/// # Examples
/// ```
/// use weir::proto::handshake::accept_key;
/// assert_eq!(&accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    let mut accept = [0; 28];
    // 20 bytes always encode to exactly 28 characters, so this cannot fail.
    let _ = STANDARD.encode_slice(sha1.digest().bytes(), &mut accept);
    accept
}

// ---------------------------------------------------------------------------------------------
// Server side

/// What a server does with a request: upgrade it, or serve it as plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified<'a, 'h> {
    /// A valid WebSocket upgrade request.
    Upgrade(UpgradeRequest<'a, 'h>),
    /// Not an upgrade attempt (e.g. `GET /healthz`): answer it as HTTP.
    Plain,
}

/// A validated WebSocket upgrade request, borrowing from the request head (`'a`) and its
/// header slots (`'h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest<'a, 'h> {
    /// The request-target (`/chat?room=1`).
    pub target: &'a str,
    /// The target up to its `?`.
    pub path: &'a str,
    /// The target after its `?`, if any.
    pub query: Option<&'a str>,
    /// The `Host` header's value.
    pub host: &'a [u8],
    /// The `Sec-WebSocket-Key` value (24 base64 characters), for [`write_accept`].
    pub key: &'a [u8],
    /// The `Origin` header's value, which a server checks against the origins it serves
    /// (§4.2.2, §10.2). There is one at most: [`http::parse_request`] refuses a repeated one.
    pub origin: Option<&'a [u8]>,
    /// Every header line, for `Authorization`, `Cookie`, `X-Forwarded-For` and the like.
    pub headers: &'h [Header<'a>],
}

impl<'a, 'h> UpgradeRequest<'a, 'h> {
    /// The header lines, with lookups by name.
    pub fn fields(&self) -> Headers<'a, 'h> {
        Headers(self.headers)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.fields().get(name)
    }

    /// The subprotocols the client offers, in its order of preference, from every
    /// `Sec-WebSocket-Protocol` line (§4.1, §11.3.4). Elements that are not tokens cannot be
    /// chosen and are skipped.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + use<'a, 'h> {
        offered_protocols(self.fields())
    }

    /// The first of `supported` (the server's order of preference) that the client offers,
    /// compared exactly, to pass to [`write_accept`].
    pub fn select_protocol<'s>(&self, supported: &[&'s str]) -> Option<&'s str> {
        supported.iter().copied().find(|s| self.protocols().any(|p| p == *s))
    }

    /// The extension offers, one per element of every `Sec-WebSocket-Extensions` line, each
    /// with its parameters unparsed (`permessage-deflate; client_max_window_bits`, §9.1).
    /// weir accepts none, so [`write_accept`] never answers them.
    pub fn extensions(&self) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h> {
        self.fields().tokens("sec-websocket-extensions")
    }
}

/// The subprotocols offered in every `Sec-WebSocket-Protocol` line of `fields`, in order
/// (§4.1, §11.3.4); elements that are not tokens cannot be chosen and are skipped.
pub fn offered_protocols<'a, 'h>(
    fields: Headers<'a, 'h>,
) -> impl Iterator<Item = &'a str> + use<'a, 'h> {
    fields
        .tokens("sec-websocket-protocol")
        .filter(|p| is_token(p))
        .filter_map(|p| core::str::from_utf8(p).ok())
}

/// Tells a WebSocket upgrade attempt from a plain request, and validates an attempt (§4.2.1).
///
/// A request is an attempt when its `Upgrade` list holds `websocket`, or it carries a
/// `Sec-WebSocket-Key` or `Sec-WebSocket-Version`: such a request cannot be served as plain HTTP,
/// so it is validated and refused with the rule it breaks. Anything else is
/// [`Classified::Plain`].
///
/// # Errors
/// For an attempt, the first rule broken, checked in this order: [`MethodNotGet`],
/// [`NotHttp11`], [`MissingHost`] or [`InvalidHost`] (none or several, or not a host: a
/// [`HandshakeError::Http`] cause), [`HasBody`], [`MissingUpgrade`],
/// [`MissingConnectionUpgrade`], [`MissingKey`] (none or several), [`InvalidKey`] (not 16 bytes
/// in base64), [`MissingVersion`], [`UnsupportedVersion`] (not exactly one `13`); all but the
/// `Host` rules are a [`HandshakeError::Upgrade`] cause. Answer it with [`write_error`].
///
/// [`MethodNotGet`]: UpgradeError::MethodNotGet
/// [`NotHttp11`]: UpgradeError::NotHttp11
/// [`MissingHost`]: HttpError::MissingHost
/// [`InvalidHost`]: HttpError::InvalidHost
/// [`HasBody`]: UpgradeError::HasBody
/// [`MissingUpgrade`]: UpgradeError::MissingUpgrade
/// [`MissingConnectionUpgrade`]: UpgradeError::MissingConnectionUpgrade
/// [`MissingKey`]: UpgradeError::MissingKey
/// [`InvalidKey`]: UpgradeError::InvalidKey
/// [`MissingVersion`]: UpgradeError::MissingVersion
/// [`UnsupportedVersion`]: UpgradeError::UnsupportedVersion
pub fn classify<'a, 'h>(req: &Request<'a, 'h>) -> Result<Classified<'a, 'h>, HandshakeError> {
    let fields = req.fields();
    let attempt = fields.has_token("upgrade", "websocket")
        || fields.get("sec-websocket-key").is_some()
        || fields.get("sec-websocket-version").is_some();
    if !attempt {
        return Ok(Classified::Plain);
    }
    // §4.1 item 2: the method is GET (methods are case-sensitive, RFC 9110 §9.1).
    if req.method != "GET" {
        return Err(UpgradeError::MethodNotGet.into());
    }
    // §4.1 item 2: HTTP/1.1 or higher.
    if req.minor_version < 1 {
        return Err(UpgradeError::NotHttp11.into());
    }
    // §4.1 item 4; RFC 9112 §3.2: exactly one Host.
    let host = http::host(req)?.ok_or(HttpError::MissingHost)?;
    // RFC 9110 §9.3.1: a GET's content has no defined meaning, and what follows an upgrade's
    // head is frames: a body would be read as frames here and as a body by a front end that
    // does not see the upgrade through (request smuggling), so an upgrade carries none.
    if fields.count("transfer-encoding") > 0
        || fields.all("content-length").any(|v| v.trim_ascii() != b"0")
    {
        return Err(UpgradeError::HasBody.into());
    }
    // §4.2.1 items 3 and 4.
    if !fields.has_token("upgrade", "websocket") {
        return Err(UpgradeError::MissingUpgrade.into());
    }
    if !fields.has_token("connection", "upgrade") {
        return Err(UpgradeError::MissingConnectionUpgrade.into());
    }
    // §4.2.1 item 5: a nonce of 16 bytes in base64; §11.3.1: the header appears once.
    let key = match fields.count("sec-websocket-key") {
        1 => fields.get("sec-websocket-key").ok_or(UpgradeError::MissingKey)?,
        _ => return Err(UpgradeError::MissingKey.into()),
    };
    if !is_valid_key(key) {
        return Err(UpgradeError::InvalidKey.into());
    }
    // §4.2.1 item 6, §4.4: version 13, else 426 naming the versions spoken.
    match fields.count("sec-websocket-version") {
        0 => return Err(UpgradeError::MissingVersion.into()),
        1 if fields.get("sec-websocket-version") == Some(VERSION.as_bytes()) => {}
        _ => return Err(UpgradeError::UnsupportedVersion.into()),
    }
    Ok(Classified::Upgrade(UpgradeRequest {
        target: req.target,
        path: req.path(),
        query: req.query(),
        host,
        key,
        origin: fields.get("origin"),
        headers: req.headers,
    }))
}

/// Whether `key` is 16 bytes in padded base64: always 24 characters.
fn is_valid_key(key: &[u8]) -> bool {
    let mut nonce = [0; 18];
    key.len() == 24 && STANDARD.decode_slice(key, &mut nonce) == Ok(16)
}

/// Writes the 101 answer that completes a server's handshake (§4.2.2) into `out` and returns
/// its length.
///
/// `key` is [`UpgradeRequest::key`]; `protocol` the subprotocol chosen (e.g. by
/// [`UpgradeRequest::select_protocol`]), written only if it is a token. Each of
/// `extra_headers` whose name is not a token or whose value holds CR, LF or another control
/// byte is left out, so that no input can split the response.
///
/// # Errors
/// `out` is too short; the error holds the length needed, and `out` holds garbage.
pub fn write_accept(
    out: &mut [u8],
    key: &[u8],
    protocol: Option<&str>,
    extra_headers: &[(&str, &[u8])],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer::new(out);
    w.put(b"HTTP/1.1 101 Switching Protocols\r\n");
    w.put(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    w.header("Sec-WebSocket-Accept", &accept_key(key));
    if let Some(protocol) = protocol.filter(|p| is_token(p.as_bytes())) {
        w.header("Sec-WebSocket-Protocol", protocol.as_bytes());
    }
    w.extra(extra_headers, &[]);
    w.put(b"\r\n");
    w.finish()
}

/// Writes a complete response that refuses the request (or answers a plain one) and closes the
/// connection, into `out`, and returns its length.
///
/// The status line carries [`reason_phrase`] (a status outside 100-599 is written as 500).
/// The writer adds `Connection: close` and `Content-Length`, and when `body` is not empty
/// `Content-Type: text/plain; charset=utf-8` unless `extra_headers` names a `Content-Type`.
/// For 1xx, 204 and 304, which have no body (RFC 9110 §6.4.1, §8.6), `body` and
/// `Content-Length` are left out. `Content-Length`, `Transfer-Encoding` and `Connection` in
/// `extra_headers` are ignored, as are fields that are not a token and a clean value (see
/// [`write_accept`]).
///
/// # Errors
/// `out` is too short; the error holds the length needed, and `out` holds garbage.
pub fn write_reject(
    out: &mut [u8],
    status: u16,
    extra_headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<usize, BufferTooSmall> {
    write_response(out, status, extra_headers, &[body], After::Close)
}

/// Writes the refusal for a handshake or HTTP error of any cause (see [`write_reject`]): status
/// [`HandshakeError::status`], body [`HandshakeError::reason`] and a newline, with
/// `Sec-WebSocket-Version: 13` for 426 (§4.4) and `Allow: GET` for 405 (RFC 9110 §15.5.6).
///
/// A client-side error (status 0) is not answered: nothing is written and the length is 0.
///
/// # Errors
/// `out` is too short; the error holds the length needed, and `out` holds garbage.
pub fn write_error(
    out: &mut [u8],
    err: impl Into<HandshakeError>,
) -> Result<usize, BufferTooSmall> {
    let err = err.into();
    let status = err.status();
    let extra: &[(&str, &[u8])] = match status {
        0 => return Ok(0),
        405 => &[("Allow", b"GET")],
        426 => &[("Sec-WebSocket-Version", VERSION.as_bytes())],
        _ => &[],
    };
    write_response(out, status, extra, &[err.reason().as_bytes(), b"\n"], After::Close)
}

/// The standard reason phrase for `status` (RFC 9110 §15), or its class's name for a code
/// without one.
pub const fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "",
        },
    }
}

/// What happens to the connection after a plain HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// `Connection: close`: the server closes after the body.
    Close,
    /// The connection stays open for the next request (HTTP/1.1 persistence, RFC 9112 §9.3).
    KeepAlive,
    /// The body has no length: it streams until the server closes (server-sent events). Only the
    /// head is written.
    Stream,
    /// The body streams after the head, as long as the `Content-Length` the caller gives, and
    /// the connection stays open for the next request after it. Only the head is written.
    Sized,
}

/// Writes a plain HTTP response (not an upgrade) with `Content-Length` (unless it streams) and
/// the `Connection` handling `after` says, and returns its length. As [`write_reject`] for the
/// rest.
///
/// # Errors
/// `out` is too short; the error holds the length needed.
pub fn write_http_response(
    out: &mut [u8],
    status: u16,
    extra_headers: &[(&str, &[u8])],
    body: &[u8],
    after: After,
) -> Result<usize, BufferTooSmall> {
    write_response(out, status, extra_headers, &[body], after)
}

fn write_response(
    out: &mut [u8],
    status: u16,
    extra_headers: &[(&str, &[u8])],
    body: &[&[u8]],
    after: After,
) -> Result<usize, BufferTooSmall> {
    let status = if matches!(status, 100..=599) { status } else { 500 };
    let has_body =
        !matches!(status, 100..=199 | 204 | 304) && !matches!(after, After::Stream | After::Sized);
    let body_len = body.iter().fold(0usize, |sum, part| sum.saturating_add(part.len()));
    let mut w = Writer::new(out);
    w.put(b"HTTP/1.1 ");
    w.decimal(usize::from(status));
    w.put(b" ");
    w.put(reason_phrase(status).as_bytes());
    w.put(b"\r\n");
    if matches!(after, After::Close | After::Stream) {
        w.put(b"Connection: close\r\n");
    }
    if has_body {
        let typed = extra_headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if body_len > 0 && !typed {
            w.put(b"Content-Type: text/plain; charset=utf-8\r\n");
        }
        w.put(b"Content-Length: ");
        w.decimal(body_len);
        w.put(b"\r\n");
    }
    // A streamed response's body is written later: a length its handler knows (given as
    // `Content-Length`) is kept; without one the body ends when the connection does.
    let reserved: &[&str] = if matches!(after, After::Stream | After::Sized) {
        &["transfer-encoding", "connection"]
    } else {
        &["content-length", "transfer-encoding", "connection"]
    };
    w.extra(extra_headers, reserved);
    w.put(b"\r\n");
    if has_body {
        for part in body {
            w.put(part);
        }
    }
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Client side

/// A client's side of one opening handshake (§4.1): the key it sent and the accept value it
/// expects back.
///
/// The driver supplies the 16 random bytes of the nonce (from the OS's random source), so the
/// core stays deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    /// `Sec-WebSocket-Key`: the nonce in base64.
    key: [u8; 24],
    /// The `Sec-WebSocket-Accept` the server must answer with.
    accept: [u8; 28],
}

impl ClientHandshake {
    /// A handshake keyed with `nonce`, which must be freshly random for each connection
    /// (§4.1 item 7, §10.3).
    pub fn new(nonce: [u8; 16]) -> Self {
        let mut key = [0; 24];
        // 16 bytes always encode to exactly 24 characters, so this cannot fail.
        let _ = STANDARD.encode_slice(nonce, &mut key);
        Self { key, accept: accept_key(&key) }
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` expected.
    pub fn expected_accept(&self) -> &[u8] {
        &self.accept
    }

    /// Writes the upgrade request (§4.1) into `out` and returns its length.
    ///
    /// `host` is the `Host` value (with the port when it is not the scheme's default), `target`
    /// the resource name (`/chat?room=1`; empty means `/`). Bytes of either outside visible
    /// ASCII are percent-encoded (RFC 3986 §2.1), so neither can break the request line.
    /// `protocols` are offered in one `Sec-WebSocket-Protocol` line, skipping any that is not a
    /// token; `extra_headers` are filtered as in [`write_accept`].
    ///
    /// # Errors
    /// `out` is too short; the error holds the length needed, and `out` holds garbage.
    pub fn write_request(
        &self,
        out: &mut [u8],
        host: &str,
        target: &str,
        protocols: &[&str],
        extra_headers: &[(&str, &[u8])],
    ) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out);
        w.put(b"GET ");
        w.percent_encoded(if target.is_empty() { "/" } else { target });
        w.put(b" HTTP/1.1\r\nHost: ");
        w.percent_encoded(host);
        w.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        w.header("Sec-WebSocket-Key", &self.key);
        w.header("Sec-WebSocket-Version", VERSION.as_bytes());
        let mut offered = protocols.iter().filter(|p| is_token(p.as_bytes()));
        if let Some(first) = offered.next() {
            w.put(b"Sec-WebSocket-Protocol: ");
            w.put(first.as_bytes());
            for protocol in offered {
                w.put(b", ");
                w.put(protocol.as_bytes());
            }
            w.put(b"\r\n");
        }
        w.extra(extra_headers, &[]);
        w.put(b"\r\n");
        w.finish()
    }

    /// Checks the server's answer (§4.1) and returns the subprotocol it chose, if any.
    ///
    /// `offered_protocols` are the ones passed to [`write_request`](Self::write_request).
    ///
    /// # Errors
    /// In the order checked: [`UnexpectedStatus`] (not 101), [`MissingUpgrade`],
    /// [`MissingConnectionUpgrade`], [`AcceptMismatch`] (missing, repeated or wrong),
    /// [`UnofferedProtocol`] (not exactly one of those offered, or any when none was), and
    /// [`UnofferedExtension`] (any `Sec-WebSocket-Extensions`: none is offered).
    ///
    /// [`UnexpectedStatus`]: ResponseError::UnexpectedStatus
    /// [`MissingUpgrade`]: ResponseError::MissingUpgrade
    /// [`MissingConnectionUpgrade`]: ResponseError::MissingConnectionUpgrade
    /// [`AcceptMismatch`]: ResponseError::AcceptMismatch
    /// [`UnofferedProtocol`]: ResponseError::UnofferedProtocol
    /// [`UnofferedExtension`]: ResponseError::UnofferedExtension
    pub fn check_response<'a>(
        &self,
        resp: &Response<'a, '_>,
        offered_protocols: &[&str],
    ) -> Result<Option<&'a str>, ResponseError> {
        self.check_response_offering(resp, offered_protocols, None).map(|(p, _)| p)
    }

    /// As [`check_response`](Self::check_response), for a request that also offered
    /// permessage-deflate as `deflate` wrote it ([`Policy::write_offer`]): returns what the
    /// server agreed, `None` if it declined. An answer that is not one the offer allows (RFC
    /// 7692 §7.1: a bad, repeated or unoffered parameter, or another extension) is
    /// [`UnofferedExtension`](ResponseError::UnofferedExtension): the client fails the
    /// connection.
    ///
    /// [`Policy::write_offer`]: crate::proto::extension::Policy::write_offer
    ///
    /// # Errors
    /// As `check_response`.
    pub fn check_response_offering<'a>(
        &self,
        resp: &Response<'a, '_>,
        offered_protocols: &[&str],
        deflate: Option<&Policy>,
    ) -> Result<(Option<&'a str>, Option<Agreed>), ResponseError> {
        let fields = resp.fields();
        if resp.status != 101 {
            return Err(ResponseError::UnexpectedStatus(resp.status));
        }
        if !fields.has_token("upgrade", "websocket") {
            return Err(ResponseError::MissingUpgrade);
        }
        if !fields.has_token("connection", "upgrade") {
            return Err(ResponseError::MissingConnectionUpgrade);
        }
        let accept = match fields.count("sec-websocket-accept") {
            1 => fields.get("sec-websocket-accept"),
            _ => None,
        };
        if accept != Some(&self.accept[..]) {
            return Err(ResponseError::AcceptMismatch);
        }
        let protocol = match fields.count("sec-websocket-protocol") {
            0 => None,
            1 => {
                let chosen = fields.get("sec-websocket-protocol").unwrap_or_default();
                if !offered_protocols.iter().any(|p| p.as_bytes() == chosen) {
                    return Err(ResponseError::UnofferedProtocol);
                }
                Some(core::str::from_utf8(chosen).map_err(|_| ResponseError::UnofferedProtocol)?)
            }
            _ => return Err(ResponseError::UnofferedProtocol),
        };
        let agreed = match deflate {
            None if fields.count("sec-websocket-extensions") > 0 => {
                return Err(ResponseError::UnofferedExtension);
            }
            None => None,
            Some(policy) => {
                extension::check_response(fields.all("sec-websocket-extensions"), policy)
                    .map_err(|_| ResponseError::UnofferedExtension)?
            }
        };
        Ok((protocol, agreed))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing heads

/// Writes into a fixed buffer while counting every byte asked for, so one pass both writes and
/// learns the size needed.
struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl<'o> Writer<'o> {
    fn new(out: &'o mut [u8]) -> Self {
        Self { out, len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn header(&mut self, name: &str, value: &[u8]) {
        self.put(name.as_bytes());
        self.put(b": ");
        self.put(value);
        self.put(b"\r\n");
    }

    /// Writes the caller's fields, leaving out malformed ones and those named in `reserved`.
    fn extra(&mut self, headers: &[(&str, &[u8])], reserved: &[&str]) {
        for &(name, value) in headers {
            let clean = is_token(name.as_bytes()) && is_field_value(value);
            if clean && !reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                self.header(name, value);
            }
        }
    }

    fn decimal(&mut self, mut n: usize) {
        let mut digits = [0; 20]; // u64::MAX has 20 digits
        let mut start = digits.len();
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            start -= 1;
            if n == 0 {
                break;
            }
        }
        self.put(digits.get(start..).unwrap_or_default());
    }

    fn percent_encoded(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &b in s.as_bytes() {
            if b.is_ascii_graphic() {
                self.put(&[b]);
            } else {
                self.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
            }
        }
    }

    fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.len <= self.out.len() {
            Ok(self.len)
        } else {
            Err(BufferTooSmall { needed: self.len })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::error::Status;
    use crate::proto::http::tests::find_head;
    use crate::proto::http::{HeadReader, Limits, parse_request, parse_response};
    use alloc::string::String;
    use alloc::vec::Vec;

    /// Header edits for [`build`].
    type Changes<'c> = &'c [(&'c str, Option<&'c str>)];
    /// A writer under test.
    type WriteFn<'f> = &'f dyn Fn(&mut [u8]) -> Result<usize, BufferTooSmall>;
    /// What `check_response` should return.
    type Outcome = Result<Option<&'static str>, ResponseError>;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    /// The head length in `input`, found whole and byte by byte (which must agree).
    fn head_len(input: &[u8]) -> usize {
        match find_head(input, &Limits::default()) {
            Ok(Status::Complete(len)) => len,
            other => panic!("no head in {:?}: {other:?}", input.escape_ascii()),
        }
    }

    /// Parses `input` as a request and classifies it; `Ok(None)` means plain.
    fn classify_bytes(input: &[u8]) -> Result<Option<String>, HandshakeError> {
        let mut slots = [Header::default(); 16];
        let len = head_len(input);
        let req = parse_request(&input[..len], &mut slots, &Limits::default())?;
        Ok(match classify(&req)? {
            Classified::Plain => None,
            Classified::Upgrade(up) => Some(String::from(up.path)),
        })
    }

    /// A request head: the request line, then the standard upgrade headers with `changes`
    /// applied: `(name, Some(v))` replaces (or appends when new), `(name, None)` removes, and a
    /// name starting with `+` appends a second line.
    fn build(request_line: &str, changes: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut headers: Vec<(&str, &str)> = [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ]
        .to_vec();
        for &(name, value) in changes {
            if let Some(name) = name.strip_prefix('+') {
                headers.push((name, value.unwrap_or("")));
            } else if let Some(i) = headers.iter().position(|h| h.0 == name) {
                match value {
                    Some(v) => headers[i].1 = v,
                    None => drop(headers.remove(i)),
                }
            } else if let Some(v) = value {
                headers.push((name, v));
            }
        }
        let mut out = Vec::from(request_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            out.extend_from_slice(alloc::format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(&accept_key(KEY.as_bytes()), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let client = ClientHandshake::new(*b"the sample nonce");
        assert_eq!(client.key(), KEY.as_bytes());
        assert_eq!(client.expected_accept(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn upgrade_requests_are_accepted() {
        let get = "GET /chat?x=1 HTTP/1.1";
        let cases: &[Changes<'_>] = &[
            &[],
            &[("Connection", Some("keep-alive, Upgrade"))],
            &[("Connection", Some("UPGRADE"))],
            &[("Connection", Some("keep-alive")), ("+Connection", Some("upgrade"))],
            &[("Upgrade", Some("WebSocket"))],
            &[("Upgrade", Some("h2c, websocket"))],
            &[("Host", None), ("host", Some("example.com"))],
            &[("Sec-WebSocket-Key", None), ("SEC-WEBSOCKET-KEY", Some(KEY))],
            &[("Sec-WebSocket-Version", None), ("sec-websocket-version", Some(" 13 "))],
            &[("Origin", Some("https://example.com"))],
        ];
        for changes in cases {
            let input = build(get, changes);
            assert_eq!(classify_bytes(&input), Ok(Some("/chat".into())), "{changes:?}");
        }
    }

    #[test]
    fn plain_requests_are_not_upgrades() {
        let cases: &[&[u8]] = &[
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /publish HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket2\r\n\r\n",
        ];
        for input in cases {
            assert_eq!(classify_bytes(input), Ok(None), "{:?}", input.escape_ascii());
        }
    }

    #[test]
    fn every_rejection_has_its_status() {
        use HttpError::*;
        use UpgradeError::*;
        let get = "GET / HTTP/1.1";
        let cases: &[(&str, Changes<'_>, HandshakeError, u16)] = &[
            ("POST / HTTP/1.1", &[], MethodNotGet.into(), 405),
            ("get / HTTP/1.1", &[], MethodNotGet.into(), 405),
            // The order of the checks: the method first.
            (
                "PUT / HTTP/1.0",
                &[("Host", None), ("Sec-WebSocket-Key", None)],
                MethodNotGet.into(),
                405,
            ),
            ("GET / HTTP/1.0", &[], NotHttp11.into(), 400),
            (get, &[("Host", None)], MissingHost.into(), 400),
            (get, &[("+Host", Some("other.example"))], MissingHost.into(), 400),
            (get, &[("+Content-Length", Some("4"))], HasBody.into(), 400),
            (get, &[("+Transfer-Encoding", Some("chunked"))], HasBody.into(), 400),
            (get, &[("Upgrade", None)], MissingUpgrade.into(), 400),
            (get, &[("Upgrade", Some("h2c"))], MissingUpgrade.into(), 400),
            (get, &[("Upgrade", None), ("Sec-WebSocket-Key", None)], MissingUpgrade.into(), 400),
            (get, &[("Connection", None)], MissingConnectionUpgrade.into(), 400),
            (get, &[("Connection", Some("keep-alive"))], MissingConnectionUpgrade.into(), 400),
            (get, &[("Connection", Some("upgrades"))], MissingConnectionUpgrade.into(), 400),
            (get, &[("Sec-WebSocket-Key", None)], MissingKey.into(), 400),
            (get, &[("+Sec-WebSocket-Key", Some(KEY))], MissingKey.into(), 400),
            (get, &[("Sec-WebSocket-Key", Some(""))], InvalidKey.into(), 400),
            (get, &[("Sec-WebSocket-Key", Some("abc"))], InvalidKey.into(), 400),
            (get, &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZQ"))], InvalidKey.into(), 400),
            (
                get,
                &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZSE="))],
                InvalidKey.into(),
                400,
            ),
            (
                get,
                &[("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25jZR=="))],
                InvalidKey.into(),
                400,
            ),
            (
                get,
                &[("Sec-WebSocket-Key", Some("!GhlIHNhbXBsZSBub25jZQ=="))],
                InvalidKey.into(),
                400,
            ),
            (get, &[("Sec-WebSocket-Version", None)], MissingVersion.into(), 426),
            (get, &[("Sec-WebSocket-Version", Some("8"))], UnsupportedVersion.into(), 426),
            (get, &[("Sec-WebSocket-Version", Some("13, 8"))], UnsupportedVersion.into(), 426),
            (get, &[("+Sec-WebSocket-Version", Some("13"))], UnsupportedVersion.into(), 426),
        ];
        for &(line, changes, expected, status) in cases {
            let input = build(line, changes);
            assert_eq!(classify_bytes(&input), Err(expected), "{line} {changes:?}");
            assert_eq!(expected.status(), status, "{expected:?}");
        }
        // HTTP-level rejections on the way in.
        let http: &[(&[u8], HandshakeError, u16)] = &[
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", MalformedHeader.into(), 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", MalformedHeader.into(), 400),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedHttpVersion.into(), 505),
            (b"GET /\r\n\r\n", MalformedRequestLine.into(), 400),
        ];
        for &(input, expected, status) in http {
            assert_eq!(classify_bytes(input), Err(expected), "{:?}", input.escape_ascii());
            assert_eq!(expected.status(), status);
        }
    }

    #[test]
    fn upgrade_request_exposes_its_fields() {
        let input = build(
            "GET /chat?room=1 HTTP/1.1",
            &[
                ("Origin", Some("https://example.com")),
                ("Sec-WebSocket-Protocol", Some("chat.v2, chat.v1")),
                ("+Sec-WebSocket-Protocol", Some("bad proto, json")),
                ("Sec-WebSocket-Extensions", Some("permessage-deflate; client_max_window_bits, x")),
                ("Cookie", Some("a=b")),
            ],
        );
        let mut slots = [Header::default(); 16];
        assert_eq!(head_len(&input), input.len());
        let req = parse_request(&input, &mut slots, &Limits::default()).unwrap();
        let Ok(Classified::Upgrade(up)) = classify(&req) else { panic!("not an upgrade") };
        assert_eq!((up.target, up.path, up.query), ("/chat?room=1", "/chat", Some("room=1")));
        assert_eq!(up.host, b"example.com");
        assert_eq!(up.key, KEY.as_bytes());
        assert_eq!(up.origin, Some(&b"https://example.com"[..]));
        assert_eq!(up.protocols().collect::<Vec<_>>(), ["chat.v2", "chat.v1", "json"]);
        assert_eq!(up.select_protocol(&["json", "chat.v1"]), Some("json"));
        assert_eq!(up.select_protocol(&["CHAT.V1"]), None);
        assert_eq!(up.select_protocol(&[]), None);
        let extensions: Vec<&[u8]> = up.extensions().collect();
        assert_eq!(extensions, [&b"permessage-deflate; client_max_window_bits"[..], b"x"]);
        assert_eq!(up.header("cookie"), Some(&b"a=b"[..]));
        assert_eq!(up.headers.len(), 10);
    }

    #[test]
    fn client_and_server_cores_complete_a_handshake() {
        let client = ClientHandshake::new([7; 16]);
        let offered = ["chat.v2", "chat.v1"];
        let mut request = [0; 512];
        let n = client
            .write_request(
                &mut request,
                "example.com:8080",
                "/chat?x=1",
                &offered,
                &[("Authorization", b"Bearer t")],
            )
            .unwrap();
        // The request, followed by the client's first frame in the same read.
        let mut wire = request[..n].to_vec();
        wire.extend_from_slice(b"\x81\x82abcd\x00\x00");
        let len = head_len(&wire);
        assert_eq!(len, n);

        let mut slots = [Header::default(); 16];
        let req = parse_request(&wire[..len], &mut slots, &Limits::default()).unwrap();
        let Ok(Classified::Upgrade(up)) = classify(&req) else { panic!("not an upgrade") };
        assert_eq!(up.host, b"example.com:8080");
        assert_eq!(up.query, Some("x=1"));
        assert_eq!(up.header("authorization"), Some(&b"Bearer t"[..]));
        let chosen = up.select_protocol(&["chat.v1"]);
        assert_eq!(chosen, Some("chat.v1"));

        let mut response = [0; 256];
        let m = write_accept(&mut response, up.key, chosen, &[("X-Served-By", b"weir")]).unwrap();
        let mut wire = response[..m].to_vec();
        wire.extend_from_slice(b"\x81\x02hi");
        let len = head_len(&wire);
        assert_eq!(len, m);
        assert_eq!(&wire[len..], b"\x81\x02hi");
        let mut slots = [Header::default(); 16];
        let resp = parse_response(&wire[..len], &mut slots, &Limits::default()).unwrap();
        assert_eq!(resp.header("x-served-by"), Some(&b"weir"[..]));
        assert_eq!(client.check_response(&resp, &offered), Ok(Some("chat.v1")));
        // A different client (nonce) does not accept this answer.
        let other = ClientHandshake::new([8; 16]);
        assert_eq!(other.check_response(&resp, &offered), Err(ResponseError::AcceptMismatch));
    }

    #[test]
    fn write_accept_bytes() {
        let mut out = [0; 256];
        let n = write_accept(&mut out, KEY.as_bytes(), None, &[]).unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        // A protocol that is not a token, and unclean extra fields, are left out.
        let extra: &[(&str, &[u8])] =
            &[("X-A", b"1\r\nX-Injected: 1"), ("X B", b"1"), ("X-C", b"ok")];
        let m = write_accept(&mut out, KEY.as_bytes(), Some("a b"), extra).unwrap();
        assert_eq!(m, n + b"X-C: ok\r\n".len());
        assert!(!out[..m].windows(8).any(|w| w == b"Injected"));
    }

    #[test]
    fn writers_report_the_size_they_need() {
        let client = ClientHandshake::new([1; 16]);
        let writers: [WriteFn<'_>; 5] = [
            &|out| write_accept(out, KEY.as_bytes(), Some("p"), &[("X", b"y")]),
            &|out| write_reject(out, 404, &[], b"not found\n"),
            &|out| write_error(out, UpgradeError::UnsupportedVersion),
            &|out| write_error(out, UpgradeError::MethodNotGet),
            &|out| client.write_request(out, "h", "/", &["p"], &[]),
        ];
        for write in writers {
            let mut big = [0; 512];
            let n = write(&mut big).unwrap();
            for short in 0..n {
                let mut out = alloc::vec![0; short];
                assert_eq!(write(&mut out), Err(BufferTooSmall { needed: n }));
            }
            let mut exact = alloc::vec![0; n];
            assert_eq!(write(&mut exact), Ok(n));
            assert_eq!(exact, big[..n]);
        }
    }

    #[test]
    fn rejections_parse_back() {
        use HttpError::*;
        use UpgradeError::*;
        type Field = (&'static str, &'static [u8]);
        let cases: &[(HandshakeError, u16, Option<Field>)] = &[
            (MethodNotGet.into(), 405, Some(("Allow", b"GET"))),
            (MissingVersion.into(), 426, Some(("Sec-WebSocket-Version", b"13"))),
            (UnsupportedVersion.into(), 426, Some(("Sec-WebSocket-Version", b"13"))),
            (HeadTooLarge.into(), 431, None),
            (TooManyHeaders.into(), 431, None),
            (TargetTooLong.into(), 414, None),
            (UnsupportedHttpVersion.into(), 505, None),
            (InvalidKey.into(), 400, None),
            (MalformedHeader.into(), 400, None),
        ];
        for &(err, status, header) in cases {
            let mut out = [0; 512];
            let n = write_error(&mut out, err).unwrap();
            let len = head_len(&out[..n]);
            let mut slots = [Header::default(); 8];
            let resp = parse_response(&out[..len], &mut slots, &Limits::default()).unwrap();
            assert_eq!(resp.status, status);
            assert_eq!(resp.reason, reason_phrase(status));
            assert_eq!(resp.header("connection"), Some(&b"close"[..]));
            let body = &out[len..n];
            assert_eq!(body, alloc::format!("{}\n", err.reason()).as_bytes());
            let content_length = alloc::format!("{}", body.len());
            assert_eq!(resp.header("content-length"), Some(content_length.as_bytes()));
            assert_eq!(resp.header("content-type"), Some(&b"text/plain; charset=utf-8"[..]));
            if let Some((name, value)) = header {
                assert_eq!(resp.header(name), Some(value), "{err:?}");
            }
        }
        // Client-side errors are never answered.
        assert_eq!(write_error(&mut [], ResponseError::AcceptMismatch), Ok(0));
    }

    #[test]
    fn write_reject_bytes() {
        let mut out = [0; 256];
        let n = write_reject(&mut out, 503, &[("Retry-After", b"5")], b"busy").unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
              Content-Type: text/plain; charset=utf-8\r\nContent-Length: 4\r\nRetry-After: 5\r\n\r\nbusy"
        );
        let extra: &[(&str, &[u8])] = &[
            ("Content-Type", b"application/json"),
            ("content-length", b"99"),
            ("Connection", b"keep-alive"),
        ];
        let n = write_reject(&mut out, 200, extra, b"{}").unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\
              Content-Type: application/json\r\n\r\n{}"
        );
        let n = write_reject(&mut out, 204, &[], b"dropped").unwrap();
        assert_eq!(&out[..n], b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let n = write_reject(&mut out, 1000, &[], b"").unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        for status in
            [200, 204, 400, 401, 403, 404, 405, 413, 414, 426, 429, 431, 500, 502, 503, 504, 505]
        {
            let reason = reason_phrase(status);
            assert!(!matches!(reason, "Success" | "Client Error" | "Server Error"), "{status}");
        }
        assert_eq!(reason_phrase(418), "Client Error");
    }

    #[test]
    fn client_request_bytes() {
        let client = ClientHandshake::new(*b"the sample nonce");
        let mut out = [0; 512];
        let n = client.write_request(&mut out, "server.example.com", "/chat", &[], &[]).unwrap();
        assert_eq!(
            &out[..n],
            b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        );
        // Bytes that would break the request line are percent-encoded; bad protocols skipped.
        let n = client
            .write_request(&mut out, "h\r\nX: 1", "/a b\u{e9}", &["a b", "x", "y"], &[])
            .unwrap();
        let head = &out[..n];
        assert!(head.starts_with(b"GET /a%20b%C3%A9 HTTP/1.1\r\nHost: h%0D%0AX:%201\r\n"));
        assert!(head.ends_with(b"Sec-WebSocket-Protocol: x, y\r\n\r\n"));
        let mut slots = [Header::default(); 8];
        assert_eq!(head_len(head), head.len());
        let req = parse_request(head, &mut slots, &Limits::default()).unwrap();
        assert_eq!(req.headers.len(), 6);
        let n = client.write_request(&mut out, "h", "", &[], &[]).unwrap();
        assert!(out[..n].starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn client_rejects_bad_responses() {
        use ResponseError::*;
        let client = ClientHandshake::new(*b"the sample nonce");
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let ok = alloc::format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n"
        );
        let cases: &[(String, &[&str], Outcome)] = &[
            (ok.clone(), &[], Ok(None)),
            (ok.clone(), &["chat"], Ok(None)),
            (ok.clone() + "Sec-WebSocket-Protocol: chat\r\n", &["x", "chat"], Ok(Some("chat"))),
            (ok.replace("Upgrade: websocket", "UPGRADE: WebSocket"), &[], Ok(None)),
            (ok.replace("Connection: Upgrade", "connection: keep-alive, upgrade"), &[], Ok(None)),
            (
                ok.replace("HTTP/1.1 101 Switching Protocols", "HTTP/1.1 200 OK"),
                &[],
                Err(UnexpectedStatus(200)),
            ),
            (
                ok.replace("HTTP/1.1 101 Switching Protocols", "HTTP/1.1 403 Forbidden"),
                &[],
                Err(UnexpectedStatus(403)),
            ),
            (ok.replace("Upgrade: websocket", "Upgrade: h2c"), &[], Err(MissingUpgrade)),
            (ok.replace("Upgrade: websocket\r\n", ""), &[], Err(MissingUpgrade)),
            (
                ok.replace("Connection: Upgrade", "Connection: close"),
                &[],
                Err(MissingConnectionUpgrade),
            ),
            (ok.replace(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo"), &[], Err(AcceptMismatch)),
            (ok.replace(accept, "S3PPLMBITXAQ9KYGZZHZRBK+XOO="), &[], Err(AcceptMismatch)),
            (
                ok.replace(&alloc::format!("Sec-WebSocket-Accept: {accept}\r\n"), ""),
                &[],
                Err(AcceptMismatch),
            ),
            (ok.clone() + "Sec-WebSocket-Accept: " + accept + "\r\n", &[], Err(AcceptMismatch)),
            (ok.clone() + "Sec-WebSocket-Protocol: chat\r\n", &[], Err(UnofferedProtocol)),
            (ok.clone() + "Sec-WebSocket-Protocol: chat\r\n", &["Chat"], Err(UnofferedProtocol)),
            (ok.clone() + "Sec-WebSocket-Protocol: a, b\r\n", &["a", "b"], Err(UnofferedProtocol)),
            (
                ok.clone() + "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: a\r\n",
                &["a"],
                Err(UnofferedProtocol),
            ),
            (
                ok.clone() + "Sec-WebSocket-Extensions: permessage-deflate\r\n",
                &[],
                Err(UnofferedExtension),
            ),
        ];
        for (head, offered, expected) in cases {
            let input = head.clone() + "\r\n";
            let len = head_len(input.as_bytes());
            let mut slots = [Header::default(); 8];
            let resp =
                parse_response(&input.as_bytes()[..len], &mut slots, &Limits::default()).unwrap();
            assert_eq!(client.check_response(&resp, offered), *expected, "{head}");
        }
    }

    #[test]
    fn head_reader_hands_back_the_bytes_after_the_head() {
        let mut reader = HeadReader::new(&Limits::default());
        let mut buf = Vec::new();
        let input = build("GET / HTTP/1.1", &[]);
        let mut found = None;
        for chunk in input.chunks(7).chain([&b"\x88\x80"[..]]) {
            buf.extend_from_slice(chunk);
            if let Status::Complete(len) = reader.feed(&buf).unwrap() {
                found = Some(len);
                break;
            }
        }
        assert_eq!(found, Some(input.len()));
    }
}
