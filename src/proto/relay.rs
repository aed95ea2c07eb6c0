//! One plain HTTP/1.1 exchange relayed to an upstream, sans-IO: bytes from the client and from
//! the upstream go in, bytes for the other side come out, and the exchange says when each
//! message is whole. It names no socket, so the same exchange runs over a TCP connection
//! (`--route`, `src/proxy/plain.rs`) or a tunnel stream.
//!
//! - The request head is written anew for the upstream: the route's `Host`, the client's
//!   end-to-end fields and `X-Forwarded-*` (`src/proxy/headers.rs`), the body's framing as the client
//!   sent it, and `Connection: close` (one upstream connection per exchange, so a body that
//!   runs until the upstream closes is delimited).
//! - Bodies pass through as they are framed (RFC 9112 §6.3), never gathered: the exchange only
//!   counts a `Content-Length` body down, or follows a chunked one to its end (a request's is
//!   chunked anew, without its chunk extensions and trailer fields).
//! - The response head is gathered (bounded by the head limit: 502 past it), rewritten without
//!   its hop-by-hop fields (RFC 9110 §7.6.1), with `Connection: close` when the client's
//!   connection ends after it; interim 1xx responses are passed on and the final one awaited.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::proto::body::{ChunkedDecoder, Framing};
use crate::proto::error::Status;
use crate::proto::http::{self, HeadReader, Header, Limits};

/// Response fields that are for one hop (RFC 9110 §7.6.1); the framing fields stay, since the
/// body is passed on as it is framed.
const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/// What broke an exchange; the status the client gets if its response has not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// The client's chunked body broke the grammar (400).
    BadRequestBody,
    /// The upstream's response head was malformed or too large, or it switched protocols (502).
    BadResponse,
    /// The upstream closed before its response was whole (502, or the client's connection is
    /// cut when the response has started).
    UpstreamClosed,
}

impl RelayError {
    /// The status for a client whose response has not started.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequestBody => 400,
            Self::BadResponse | Self::UpstreamClosed => 502,
        }
    }
}

impl core::fmt::Display for RelayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadRequestBody => "malformed chunked request body",
            Self::BadResponse => "malformed upstream response head",
            Self::UpstreamClosed => "the upstream closed before its response was whole",
        })
    }
}

/// Where a body passing through is (also the tunnel agent's, which writes a plain stream's
/// `DATA` to its service only up to the end of the request's body).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// So many bytes left.
    Length(u64),
    /// A chunked body, followed to its end.
    Chunked(ChunkedDecoder),
    /// Until the sender closes (a response with neither length nor chunked coding).
    UntilClose,
    /// Whole.
    Done,
}

impl Body {
    pub(crate) fn new(framing: Framing) -> Self {
        match framing {
            Framing::None | Framing::Length(0) => Self::Done,
            Framing::Length(n) => Self::Length(n),
            Framing::Chunked => Self::Chunked(ChunkedDecoder::new()),
        }
    }

    /// How many bytes at the start of `input` belong to the body (the rest follows it).
    pub(crate) fn take(&mut self, input: &[u8], scratch: &mut Vec<u8>) -> Result<usize, ()> {
        let n = match self {
            Self::Done => 0,
            Self::UntilClose => input.len(),
            Self::Length(left) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                *left -= n as u64;
                n
            }
            Self::Chunked(d) => {
                // Decoded to find the end; the data stays in `scratch` (one read's worth) for a
                // caller that passes it on decoded.
                scratch.clear();
                d.feed(input, scratch, usize::MAX).map_err(|_| ())?
            }
        };
        if matches!(self, Self::Length(0)) || matches!(self, Self::Chunked(d) if d.is_done()) {
            *self = Self::Done;
        }
        Ok(n)
    }
}

/// The upstream's side of the exchange.
#[derive(Debug)]
enum Upstream {
    /// Gathering a response head.
    Head {
        buf: Vec<u8>,
        reader: HeadReader,
    },
    Body(Body),
}

/// What an exchange needs to know of the client's request beyond its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHead {
    /// How the request's body is framed (RFC 9112 §6.3).
    pub framing: Framing,
    /// The client's connection may serve another request after this one (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The request is HTTP/1.0: its response is not chunked (RFC 9112 §7: a chunked body
    /// from the upstream is passed on decoded, and the connection closes after it) and no
    /// interim 1xx goes before it (RFC 9110 §15.2).
    pub http10: bool,
}

/// One exchange: the request's body going up, the response coming down.
#[derive(Debug)]
pub struct Exchange {
    request: Body,
    upstream: Upstream,
    /// The request is `HEAD`: its response has no body whatever its fields say.
    head_method: bool,
    /// The client's connection ends after this exchange.
    close: bool,
    /// The response head has been passed on.
    started: bool,
    /// The client speaks HTTP/1.0 ([`ClientHead::http10`]).
    http10: bool,
    /// A chunked response body is passed on decoded (to an HTTP/1.0 client).
    dechunk: bool,
    limits: Limits,
    scratch: Vec<u8>,
}

impl Exchange {
    /// An exchange for a request (`method`, `target` for the upstream, the fields to forward,
    /// what else is known of the `client`'s head), and the request head to send upstream.
    pub fn new(
        method: &str,
        target: &str,
        host: &str,
        fields: &[(String, Vec<u8>)],
        client: ClientHead,
        limits: Limits,
    ) -> (Self, Vec<u8>) {
        let framing = client.framing;
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(
            format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n").as_bytes(),
        );
        // RFC 9110 §10.1.1: the runtime answered `Expect: 100-continue` itself.
        for (name, value) in fields.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("expect")) {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        match framing {
            Framing::None => {}
            Framing::Length(n) => {
                head.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes())
            }
            Framing::Chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        head.extend_from_slice(b"Connection: close\r\n\r\n");
        let exchange = Self {
            request: Body::new(framing),
            upstream: Upstream::Head { buf: Vec::new(), reader: HeadReader::new(&limits) },
            head_method: method == "HEAD",
            close: !client.keep_alive,
            started: false,
            http10: client.http10,
            dechunk: false,
            limits,
            scratch: Vec::new(),
        };
        (exchange, head)
    }

    /// Bytes from the client: returns how many belong to the request's body, and appends what
    /// goes upstream for them to `up` (those bytes, or a chunked body's data chunked anew).
    /// Bytes after the body are a request pipelined behind this one, which is not relayed: the
    /// client's connection then closes after this exchange.
    ///
    /// # Errors
    /// [`RelayError::BadRequestBody`].
    pub fn client_bytes(&mut self, input: &[u8], up: &mut Vec<u8>) -> Result<usize, RelayError> {
        let chunked = matches!(self.request, Body::Chunked(_));
        let n =
            self.request.take(input, &mut self.scratch).map_err(|()| RelayError::BadRequestBody)?;
        if chunked {
            // RFC 9112 §7.1: chunked anew from the decoded data, so the upstream reads the
            // framing weir read; extensions (§7.1.1) and trailers (§7.1.2, which a recipient
            // that removes the coding may discard) stay behind.
            if !self.scratch.is_empty() {
                up.extend_from_slice(format!("{:x}\r\n", self.scratch.len()).as_bytes());
                up.extend_from_slice(&self.scratch);
                up.extend_from_slice(b"\r\n");
            }
            if self.request_done() {
                up.extend_from_slice(b"0\r\n\r\n");
            }
        } else {
            up.extend_from_slice(&input[..n]);
        }
        if n < input.len() {
            self.close = true;
        }
        Ok(n)
    }

    /// Bytes from the upstream: what to pass to the client is appended to `out`.
    ///
    /// # Errors
    /// [`RelayError::BadResponse`].
    pub fn upstream_bytes(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RelayError> {
        while !input.is_empty() {
            match &mut self.upstream {
                Upstream::Body(b) => {
                    let n =
                        b.take(input, &mut self.scratch).map_err(|()| RelayError::BadResponse)?;
                    let passed = if self.dechunk { &self.scratch[..] } else { &input[..n] };
                    out.extend_from_slice(passed);
                    // What follows a whole response on a connection it closes is nothing.
                    return Ok(());
                }
                Upstream::Head { buf, reader } => {
                    let room = self.limits.max_head_len.saturating_sub(buf.len()).max(1);
                    let take = input.len().min(room);
                    buf.extend_from_slice(&input[..take]);
                    let len = match reader.feed(buf) {
                        Ok(Status::Partial) if take < input.len() => {
                            return Err(RelayError::BadResponse);
                        }
                        Ok(Status::Partial) => return Ok(()),
                        Ok(Status::Complete(len)) => len,
                        Err(_) => return Err(RelayError::BadResponse),
                    };
                    // What came after the head in `buf`, then the rest of `input`.
                    let after = buf.len() - len;
                    let head = core::mem::take(buf);
                    let body = self.response_head(&head[..len], out)?;
                    input = &input[take - after..];
                    self.upstream = match body {
                        Some(b) => Upstream::Body(b),
                        None => Upstream::Head {
                            buf: Vec::new(),
                            reader: HeadReader::new(&self.limits),
                        },
                    };
                }
            }
        }
        Ok(())
    }

    /// A whole response head, rewritten into `out`: the body that follows, or `None` after an
    /// interim (1xx) response, which another head follows.
    fn response_head(
        &mut self,
        head: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Body>, RelayError> {
        let mut slots = vec![Header::default(); self.limits.max_headers];
        let resp = http::parse_response(head, &mut slots, &self.limits)
            .map_err(|_| RelayError::BadResponse)?;
        // A plain request is not upgraded (101 answers an upgrade, which goes the WebSocket way).
        if resp.status == 101 {
            return Err(RelayError::BadResponse);
        }
        let interim = (100..200).contains(&resp.status);
        // RFC 9112 §6.3: the response's body, by the request's method and the status first.
        let chunked = resp
            .tokens("transfer-encoding")
            .last()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        let body = if interim || self.head_method || resp.status == 204 || resp.status == 304 {
            Body::Done
        } else if resp.header_count("transfer-encoding") > 0 {
            if chunked { Body::Chunked(ChunkedDecoder::new()) } else { Body::UntilClose }
        } else if resp.header_count("content-length") > 0 {
            Body::new(Framing::Length(content_length(&resp)?))
        } else {
            Body::UntilClose
        };
        if interim && self.http10 {
            // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
            return Ok(None);
        }
        self.dechunk = self.http10 && matches!(body, Body::Chunked(_));
        // A final response before the request's body is whole: the rest of the body cannot be
        // told from a next request unless it is read to its end, which weir does not wait for
        // (RFC 9112 §9.6: the close is announced, then made in stages).
        let early = !interim && !matches!(self.request, Body::Done);
        if matches!(body, Body::UntilClose) || resp.minor_version == 0 || self.dechunk || early {
            self.close = true;
        }
        // The framing fields are weir's to keep or drop below, whatever Connection names: the
        // body goes on framed by them.
        let named: Vec<&[u8]> = resp
            .tokens("connection")
            .filter(|t| {
                !t.eq_ignore_ascii_case(b"content-length")
                    && !t.eq_ignore_ascii_case(b"transfer-encoding")
            })
            .collect();
        // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which a proxy removes.
        let te = resp.header_count("transfer-encoding") > 0;
        // RFC 9112 §6.1, RFC 9110 §8.6: a 1xx or 204 carries neither (a client could read them
        // as the framing of a body that is not there). A 304's describe the representation and
        // a HEAD's what a GET would get (§8.6), so they stay.
        let no_body = interim || resp.status == 204;
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", resp.status, resp.reason).as_bytes());
        for h in resp.headers {
            let hop = HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n))
                || named.iter().any(|t| t.eq_ignore_ascii_case(h.name.as_bytes()))
                || ((te || no_body) && h.name.eq_ignore_ascii_case("content-length"))
                || (no_body && h.name.eq_ignore_ascii_case("transfer-encoding"))
                || (self.dechunk && h.name.eq_ignore_ascii_case("transfer-encoding"));
            if !hop {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.close && !interim {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if interim {
            return Ok(None);
        }
        self.started = true;
        Ok(Some(body))
    }

    /// The upstream finished sending.
    ///
    /// # Errors
    /// [`RelayError::UpstreamClosed`] if its response was not whole.
    pub fn upstream_eof(&mut self) -> Result<(), RelayError> {
        match &self.upstream {
            Upstream::Body(Body::UntilClose) => {
                self.upstream = Upstream::Body(Body::Done);
                Ok(())
            }
            Upstream::Body(Body::Done) => Ok(()),
            _ => Err(RelayError::UpstreamClosed),
        }
    }

    /// The request's body has gone up whole.
    pub fn request_done(&self) -> bool {
        matches!(self.request, Body::Done)
    }

    /// The response has come down whole.
    pub fn response_done(&self) -> bool {
        matches!(self.upstream, Upstream::Body(Body::Done))
    }

    /// The response head has been passed on (a failure now cuts the client's connection).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The client's connection is to close after this exchange (weir is shutting down): a
    /// response head not yet passed on says so.
    pub fn close_after(&mut self) {
        self.close = true;
    }

    /// Whether the client's connection serves another request after this exchange.
    pub fn keep_alive(&self) -> bool {
        !self.close
    }
}

/// A response's `Content-Length`: every value (a list too) the same number, else the response
/// is refused (RFC 9112 §6.3 item 5: a proxy answers 502).
fn content_length(resp: &http::Response<'_, '_>) -> Result<u64, RelayError> {
    let mut len = None;
    for part in resp.fields().all("content-length").flat_map(|v| v.split(|&b| b == b',')) {
        let digits = part.trim_ascii();
        let n = (!digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit))
            .then(|| digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
            .ok_or(RelayError::BadResponse)?;
        if len.is_some_and(|l| l != n) {
            return Err(RelayError::BadResponse);
        }
        len = Some(n);
    }
    len.ok_or(RelayError::BadResponse)
}

/// The seconds weir's 503s ask a client to wait before it comes back (`Retry-After`, RFC 9110
/// §10.2.3): the relays' here, the runtime's at shutdown and past its connection limit.
pub const RETRY_AFTER: &str = "5";

/// A whole response of weir's own, for a client whose exchange failed before its response
/// started; the connection closes after it.
pub fn error_response(status: u16, text: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    // RFC 9110 §10.2.3: a 503 says when to come back, as the runtime's own 503s do.
    let retry = if status == 503 { RETRY_AFTER } else { "" };
    let retry_line =
        if retry.is_empty() { String::new() } else { format!("Retry-After: {retry}\r\n") };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{retry_line}Connection: close\r\n\r\n{text}\n",
        text.len() + 1
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(method: &str, framing: Framing) -> Exchange {
        let client = ClientHead { framing, keep_alive: true, http10: false };
        Exchange::new(method, "/x", "up", &[], client, Limits::default()).0
    }

    /// The same response, whole and byte by byte, gives the same output.
    fn down(method: &str, response: &[u8]) -> (Vec<u8>, bool, bool) {
        let mut whole = exchange(method, Framing::None);
        let mut out = Vec::new();
        whole.upstream_bytes(response, &mut out).unwrap();
        let mut split = exchange(method, Framing::None);
        let mut out2 = Vec::new();
        for b in response {
            split.upstream_bytes(core::slice::from_ref(b), &mut out2).unwrap();
        }
        assert_eq!(out, out2);
        assert_eq!(whole.response_done(), split.response_done());
        (out, whole.response_done(), whole.keep_alive())
    }

    #[test]
    fn the_request_head_is_written_anew_with_its_framing() {
        let fields =
            [("Accept".to_string(), b"*/*".to_vec()), ("Expect".into(), b"100-continue".to_vec())];
        let client = ClientHead { framing: Framing::Chunked, keep_alive: true, http10: false };
        let (_, head) = Exchange::new("POST", "/a?b", "up:1", &fields, client, Limits::default());
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /a?b HTTP/1.1\r\nHost: up:1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_chunked_request_body_goes_up_chunked_anew_without_extensions_or_trailers() {
        // RFC 9112 §7.1.2: trailer fields may be discarded by a recipient that removes the
        // chunked coding; they would carry the fields weir does not forward in the head
        // (X-Forwarded-For, Host, framing) past it to an upstream that merges them.
        let body = b"3;a=\"x\"\r\nabc\r\n2 ; b\r\nde\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nHost: evil\r\n\r\n";
        for read in [body.len(), 1, 5] {
            let mut e = exchange("POST", Framing::Chunked);
            let (mut up, mut used) = (Vec::new(), 0);
            for piece in body.chunks(read) {
                used += e.client_bytes(piece, &mut up).unwrap();
            }
            assert_eq!(used, body.len());
            assert!(e.request_done());
            let mut data = Vec::new();
            let mut d = ChunkedDecoder::new();
            assert_eq!(d.feed(&up, &mut data, usize::MAX), Ok(up.len()), "reads of {read}");
            assert!(d.is_done() && data == b"abcde", "reads of {read}");
            let text = String::from_utf8(up).unwrap();
            assert!(text.ends_with("\r\n0\r\n\r\n") && !text.contains(';'), "{text}");
        }
    }

    #[test]
    fn request_bodies_end_where_their_framing_says() {
        let mut e = exchange("POST", Framing::Length(5));
        assert_eq!(e.client_bytes(b"abc", &mut Vec::new()).unwrap(), 3);
        assert!(!e.request_done());
        assert_eq!(e.client_bytes(b"deGET", &mut Vec::new()).unwrap(), 2);
        assert!(e.request_done() && !e.keep_alive(), "a pipelined request closes after");
        let mut e = exchange("POST", Framing::Chunked);
        assert_eq!(e.client_bytes(b"3\r\nabc\r\n0\r\n\r\n", &mut Vec::new()).unwrap(), 13);
        assert!(e.request_done() && e.keep_alive());
        let mut e = exchange("POST", Framing::Chunked);
        assert_eq!(e.client_bytes(b"zz\r\n", &mut Vec::new()), Err(RelayError::BadRequestBody));
    }

    /// Method, upstream's response, what the client gets, response whole, kept alive.
    type Row = (&'static str, &'static [u8], &'static [u8], bool, bool);

    const PASSED_ON: &[Row] = &[
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            true,
            true,
        ),
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            true,
            true,
        ),
        (
            "GET",
            b"HTTP/1.1 200 OK\r\n\r\nuntil close",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
            false,
            false,
        ),
        (
            "HEAD",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            true,
            true,
        ),
        (
            "GET",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            true,
            true,
        ),
        // RFC 9112 §6.3 item 3: Transfer-Encoding wins, Content-Length is removed.
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            true,
            true,
        ),
        // Item 5: a list of the same length is that length.
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
            true,
            true,
        ),
    ];

    #[test]
    fn responses_are_passed_on_as_framed_without_hop_by_hop_fields() {
        for &(method, response, expected, done, keep) in PASSED_ON {
            let got = down(method, response);
            let text = String::from_utf8_lossy(response);
            assert_eq!((&got.0[..], got.1, got.2), (expected, done, keep), "{text}");
        }
    }

    #[test]
    fn no_body_statuses_lose_their_framing_fields() {
        // RFC 9112 §6.1 and RFC 9110 §8.6: no Transfer-Encoding in a 1xx or 204, and no
        // Content-Length either: a client that reads them as framing waits for a body that
        // never comes, or takes the next response for it.
        let got = down(
            "GET",
            b"HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX: y\r\n\r\n0\r\n\r\n",
        );
        assert_eq!(
            String::from_utf8(got.0).unwrap(),
            "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 204 No Content\r\nX: y\r\n\r\n"
        );
        assert!(got.1 && got.2);
    }

    #[test]
    fn framing_fields_named_in_connection_still_frame_the_body_passed_on() {
        // The body is passed on as framed, so its framing field goes with it whatever
        // Connection names (RFC 9110 §7.6.1 is for hop-by-hop fields, and the framing here is
        // weir's own for this hop): else the client reads to the close of a kept-alive
        // connection, or the next response as this one's body.
        for response in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Content-Length\r\n\r\nhi"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        ] {
            let (out, done, keep) = down("GET", response);
            let text = String::from_utf8(out).unwrap();
            assert!(done && keep, "{text}");
            let framed = text.contains("Content-Length: 2\r\n")
                || text.contains("Transfer-Encoding: chunked\r\n");
            assert!(framed, "{text}");
        }
    }

    #[test]
    fn an_http10_client_gets_a_chunked_body_decoded_and_no_interim_response() {
        let client = ClientHead { framing: Framing::None, keep_alive: false, http10: true };
        let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n2\r\nhi\r\n4\r\n you\r\n0\r\n\r\n";
        for read in [response.len(), 1, 7] {
            let (mut e, _) = Exchange::new("GET", "/", "up", &[], client, Limits::default());
            let mut out = Vec::new();
            for piece in response.chunks(read) {
                e.upstream_bytes(piece, &mut out).unwrap();
            }
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\nhi you",
                "reads of {read}"
            );
            assert!(e.response_done() && !e.keep_alive());
        }
    }

    #[test]
    fn a_response_with_conflicting_or_malformed_lengths_is_refused() {
        // RFC 9112 §6.3 item 5.
        for bad in [
            &b"Content-Length: 1\r\nContent-Length: 2"[..],
            b"Content-Length: -1",
            b"Content-Length: 1x",
        ] {
            let mut e = exchange("GET", Framing::None);
            let resp = [&b"HTTP/1.1 200 OK\r\n"[..], bad, b"\r\n\r\nx"].concat();
            assert_eq!(e.upstream_bytes(&resp, &mut Vec::new()), Err(RelayError::BadResponse));
        }
    }

    #[test]
    fn a_bad_or_endless_head_or_an_early_close_is_an_error() {
        let mut e = exchange("GET", Framing::None);
        assert_eq!(
            e.upstream_bytes(b"NOT HTTP\r\n\r\n", &mut Vec::new()),
            Err(RelayError::BadResponse)
        );
        let mut e = exchange("GET", Framing::None);
        let long = vec![b'a'; 9000];
        assert_eq!(e.upstream_bytes(&long, &mut Vec::new()), Err(RelayError::BadResponse));
        let mut e = exchange("GET", Framing::None);
        e.upstream_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", &mut Vec::new())
            .unwrap();
        assert!(e.started());
        assert_eq!(e.upstream_eof(), Err(RelayError::UpstreamClosed));
        let mut e = exchange("GET", Framing::None);
        e.upstream_bytes(b"HTTP/1.1 200 OK\r\n\r\nab", &mut Vec::new()).unwrap();
        assert_eq!(e.upstream_eof(), Ok(()));
        assert!(e.response_done());
    }
}
