//! A bounded, borrowing HTTP/1.1 head parser, for requests and responses (RFC 9112).
//!
//! Reading a head takes two steps. [`HeadReader`] finds where the head ends, in time linear in
//! the bytes received however the reads split them, and caps an unfinished head at
//! [`Limits::max_head_len`] (RFC 6585 §5: 431). Then [`parse_request`] or [`parse_response`]
//! parses the complete head once, borrowing every name and value from it, into header slots the
//! caller supplies. Nothing allocates.
//!
//! Rules implemented, by section:
//! - RFC 9112 §2.2: lines end in CRLF, and a bare LF is accepted as a line terminator. Empty
//!   lines before the start line are skipped (they count toward `max_head_len`). A bare CR is
//!   rejected.
//! - RFC 9112 §2.3: `HTTP/1.0` and `HTTP/1.1` are accepted; any other well-formed version is
//!   answered 505.
//! - RFC 9112 §3: `request-line = method SP request-target SP HTTP-version`, one SP each; the
//!   method is a token and the target visible ASCII, at most [`Limits::max_target_len`] bytes
//!   (RFC 9110 §15.5.15: 414), without a `#` (§3.2: a request-target has no fragment).
//! - RFC 9112 §4: `status-line = HTTP-version SP status-code SP [ reason-phrase ]` (the last SP
//!   may be missing when the reason is empty, as some servers send it).
//! - RFC 9112 §5.1: no whitespace between a field name and its colon. §5.2: obs-fold (a line
//!   that starts with SP or HTAB) is rejected.
//! - RFC 9110 §5.5: field values hold no CR, LF, NUL or other control byte except HTAB; the
//!   optional whitespace around a value is trimmed. §5.6.1: list fields are split on commas,
//!   with empty elements skipped. §5.6.2: names are tokens.
//! - RFC 6454 §7.3: a request carries at most one `Origin`.
//!
//! The body, or the WebSocket frames after an upgrade, follow the head in the caller's buffer
//! and are never touched here.

use crate::proto::error::{HttpError, Status};

/// Bounds on what a peer may make the head parser hold or scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a head may take, from the first byte through its final blank line. An
    /// unfinished head that grows past this is answered 431 (default 8192).
    pub max_head_len: usize,
    /// Most header lines a head may carry (431 beyond; default 64). The caller's slot count is
    /// a second bound: the smaller of the two applies.
    pub max_headers: usize,
    /// Most bytes a request-target may take (414 beyond; default 4096). It only means something
    /// below `max_head_len`; the default leaves half of the head for the headers.
    pub max_target_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_head_len: 8192, max_headers: 64, max_target_len: 4096 }
    }
}

/// Finds the end of a head in a buffer that grows read by read.
///
/// Each call to [`feed`](Self::feed) examines only the bytes not seen before, and remembers how
/// far it got and how much of the final blank line it has matched, so the total work is linear
/// in the bytes received however they are split (re-scanning from the start on every read makes
/// a slow peer cost quadratic time).
#[derive(Debug, Clone)]
pub struct HeadReader {
    max_head_len: usize,
    scanned: usize,
    state: Scan,
    head_len: Option<usize>,
}

/// Where the scan stands relative to line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// No start line yet; only empty lines (skipped, RFC 9112 §2.2) so far.
    Start,
    /// A CR at the start, before any start line.
    StartCr,
    /// Inside a line that has content.
    Line,
    /// Just after the LF that ended a line with content.
    LineEnd,
    /// A CR just after a line end: the next LF ends the head.
    LineEndCr,
}

impl HeadReader {
    /// A reader for one head, bounded by `limits.max_head_len`.
    pub fn new(limits: &Limits) -> Self {
        Self { max_head_len: limits.max_head_len, scanned: 0, state: Scan::Start, head_len: None }
    }

    /// Looks for the end of the head in `buf`, which holds every byte received for this head so
    /// far (each call's `buf` extends the previous one).
    ///
    /// Returns `Complete(head_len)` where `head_len` counts the bytes through the blank line
    /// that ends the head: `buf[..head_len]` is the head for [`parse_request`] or
    /// [`parse_response`], and `buf[head_len..]` belongs to the caller. Once complete, later
    /// calls return the same length.
    ///
    /// # Errors
    /// [`HttpError::HeadTooLarge`] once `buf` holds more than `max_head_len` bytes and the
    /// head has not ended within the first `max_head_len` of them.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Status<usize>, HttpError> {
        if let Some(len) = self.head_len {
            return Ok(Status::Complete(len));
        }
        let end = buf.len().min(self.max_head_len);
        let mut pos = self.scanned;
        while let Some(rest) = buf.get(pos..end) {
            if self.state == Scan::Line {
                // Most bytes are line content: jump to the next LF.
                match rest.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        pos += lf + 1;
                        self.state = Scan::LineEnd;
                        continue;
                    }
                    None => {
                        pos = end;
                        break;
                    }
                }
            }
            let Some(&byte) = rest.first() else { break };
            pos += 1;
            self.state = match (self.state, byte) {
                (Scan::Start | Scan::StartCr, b'\n') => Scan::Start,
                (Scan::Start, b'\r') => Scan::StartCr,
                (Scan::LineEnd | Scan::LineEndCr, b'\n') => {
                    self.scanned = pos;
                    self.head_len = Some(pos);
                    return Ok(Status::Complete(pos));
                }
                (Scan::LineEnd, b'\r') => Scan::LineEndCr,
                // A bare CR stays in the line; the parser rejects it.
                _ => Scan::Line,
            };
        }
        self.scanned = self.scanned.max(pos);
        if buf.len() > self.max_head_len {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(Status::Partial)
        }
    }

    /// How many bytes of the buffer have been examined so far.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    /// Forgets the head found so far, to read the next one (e.g. the next request on a
    /// keep-alive connection, in a buffer the caller has drained).
    pub fn reset(&mut self) {
        self.scanned = 0;
        self.state = Scan::Start;
        self.head_len = None;
    }
}

/// One header line: its name and its value with the surrounding optional whitespace trimmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name as sent (compare it case-insensitively, RFC 9110 §5.1).
    pub name: &'a str,
    /// The field value, without leading or trailing SP and HTAB.
    pub value: &'a [u8],
}

/// A read-only view of parsed header lines, with lookups by case-insensitive name.
///
/// [`Request`] and [`Response`] hand one out from `fields()`, and forward their own `header`,
/// `header_count` and `tokens` here.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a, 'h>(pub &'h [Header<'a>]);

impl<'a, 'h> Headers<'a, 'h> {
    /// The value of the first line named `name` (case-insensitive).
    pub fn get(self, name: &str) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    /// How many lines are named `name` (case-insensitive).
    pub fn count(self, name: &str) -> usize {
        self.all(name).count()
    }

    /// The values of every line named `name` (case-insensitive), in order.
    pub fn all<'n>(self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h, 'n> {
        self.0.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// The elements of the comma-separated lists in every line named `name`, trimmed, with
    /// empty elements skipped (RFC 9110 §5.6.1).
    ///
    /// Commas inside quoted strings are not special-cased: the lists read during the handshake
    /// (`Connection`, `Upgrade`, `Sec-WebSocket-Protocol`) hold tokens only.
    pub fn tokens<'n>(self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h, 'n> {
        self.all(name)
            .flat_map(|value| value.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|token| !token.is_empty())
    }

    /// Whether the lists named `name` hold `token`, both compared case-insensitively.
    pub fn has_token(self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }
}

/// A parsed request head, borrowing from the head bytes (`'a`) and the header slots (`'h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a, 'h> {
    /// The method token, case-sensitive (RFC 9110 §9.1).
    pub method: &'a str,
    /// The request-target, visible ASCII.
    pub target: &'a str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header lines, in order.
    pub headers: &'h [Header<'a>],
}

impl<'a, 'h> Request<'a, 'h> {
    /// The path of the target: up to its `?` in the usual origin-form (`/chat?room=1`); in the
    /// absolute-form (`http://host/chat?room=1`), which a server must accept too (RFC 9112
    /// §3.2.2), what follows the authority, `/` if nothing does. The asterisk form is returned
    /// as it is.
    pub fn path(&self) -> &'a str {
        let path = split_query(self.target).0;
        match absolute_form_rest(path) {
            Some("") => "/",
            Some(rest) => rest,
            None => path,
        }
    }

    /// The target after its first `?`, if it has one.
    pub fn query(&self) -> Option<&'a str> {
        split_query(self.target).1
    }

    /// The header lines, with lookups by name.
    pub fn fields(&self) -> Headers<'a, 'h> {
        Headers(self.headers)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.fields().get(name)
    }

    /// How many header lines are named `name` (case-insensitive).
    pub fn header_count(&self, name: &str) -> usize {
        self.fields().count(name)
    }

    /// The comma-separated elements of every header named `name`; see [`Headers::tokens`].
    pub fn tokens<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h, 'n> {
        self.fields().tokens(name)
    }
}

/// A parsed response head, borrowing from the head bytes (`'a`) and the header slots (`'h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a, 'h> {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase; empty when absent or not UTF-8 (RFC 9112 §4: a client should ignore
    /// it).
    pub reason: &'a str,
    /// The header lines, in order.
    pub headers: &'h [Header<'a>],
}

impl<'a, 'h> Response<'a, 'h> {
    /// The header lines, with lookups by name.
    pub fn fields(&self) -> Headers<'a, 'h> {
        Headers(self.headers)
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.fields().get(name)
    }

    /// How many header lines are named `name` (case-insensitive).
    pub fn header_count(&self, name: &str) -> usize {
        self.fields().count(name)
    }

    /// The comma-separated elements of every header named `name`; see [`Headers::tokens`].
    pub fn tokens<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h, 'n> {
        self.fields().tokens(name)
    }
}

/// Parses a complete request head, as found by [`HeadReader`].
///
/// Parsing stops at the blank line that ends the head, so `head` may run on past it. Each header
/// line fills one of `slots`.
///
/// # Errors
/// - [`HttpError::MalformedRequestLine`]: not `token SP target SP HTTP/d.d`, or a target
///   with bytes outside visible ASCII.
/// - [`HttpError::FragmentInTarget`]: a target with a `#`.
/// - [`HttpError::TargetTooLong`]: a target over `limits.max_target_len` bytes.
/// - [`HttpError::UnsupportedHttpVersion`]: a version other than 1.0 and 1.1.
/// - [`HttpError::MalformedHeader`]: a header line that is not `token ":" value`, a
///   forbidden byte in a value, obs-fold, or a head without its blank line.
/// - [`HttpError::TooManyHeaders`]: more header lines than `slots` or `limits.max_headers`.
/// - [`HttpError::RepeatedOrigin`]: more than one `Origin`.
pub fn parse_request<'a, 'h>(
    head: &'a [u8],
    slots: &'h mut [Header<'a>],
    limits: &Limits,
) -> Result<Request<'a, 'h>, HttpError> {
    let mut rest = skip_empty_lines(head);
    let line = next_line(&mut rest).ok_or(HttpError::MalformedRequestLine)?;
    let (method, target, minor_version) = parse_request_line(line, limits)?;
    let headers = parse_fields(rest, slots, limits)?;
    // RFC 6454 §7.3: Origin is single-valued. Refused here, so that every rule that reads it
    // (upgrade, HTTP API) sees the same one, as a repeated Host is (RFC 9112 §3.2).
    if Headers(headers).count("origin") > 1 {
        return Err(HttpError::RepeatedOrigin);
    }
    Ok(Request { method, target, minor_version, headers })
}

/// Parses a complete response head, as found by [`HeadReader`].
///
/// Parsing stops at the blank line that ends the head, so `head` may run on past it. Each header
/// line fills one of `slots`.
///
/// # Errors
/// - [`HttpError::MalformedStatusLine`]: not `HTTP/d.d SP 3DIGIT [SP reason]`.
/// - [`HttpError::UnsupportedHttpVersion`]: a version other than 1.0 and 1.1.
/// - [`HttpError::MalformedHeader`] and [`HttpError::TooManyHeaders`]: as for
///   [`parse_request`].
pub fn parse_response<'a, 'h>(
    head: &'a [u8],
    slots: &'h mut [Header<'a>],
    limits: &Limits,
) -> Result<Response<'a, 'h>, HttpError> {
    let mut rest = skip_empty_lines(head);
    let line = next_line(&mut rest).ok_or(HttpError::MalformedStatusLine)?;
    let (minor_version, status, reason) = parse_status_line(line)?;
    let headers = parse_fields(rest, slots, limits)?;
    Ok(Response { minor_version, status, reason, headers })
}

/// Whether `bytes` is a token: one or more tchar (RFC 9110 §5.6.2).
pub fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Whether `bytes` may be sent as a field value: HTAB, SP, VCHAR and obs-text only, so no CR,
/// LF or NUL that could end the line early (RFC 9110 §5.5).
pub fn is_field_value(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| is_field_byte(b))
}

pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Removes leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// For a target in the absolute-form, `scheme "://" authority path` (RFC 9112 §3.2.2, RFC 3986
/// §3), the path after the authority; `None` for any other form.
fn absolute_form_rest(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    let mut chars = scheme.bytes();
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    Some(rest.find('/').map_or("", |i| &rest[i..]))
}

/// The `Host` of a request, checked (RFC 9112 §3.2): exactly one in HTTP/1.1 (`None` only for
/// an HTTP/1.0 request without one), and its value `uri-host [":" port]` (RFC 3986 §3.2.2):
/// unreserved, percent-encoded and sub-delimiter characters, or an IP literal in brackets.
///
/// # Errors
/// [`HttpError::MissingHost`] (none in HTTP/1.1, or several), [`HttpError::InvalidHost`].
pub fn host<'a>(req: &Request<'a, '_>) -> Result<Option<&'a [u8]>, HttpError> {
    let fields = req.fields();
    let host = match (fields.count("host"), req.minor_version) {
        (0, 0) => return Ok(None),
        (1, _) => fields.get("host").ok_or(HttpError::MissingHost)?,
        _ => return Err(HttpError::MissingHost),
    };
    let ok = host.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            )
    });
    if ok { Ok(Some(host)) } else { Err(HttpError::InvalidHost) }
}

fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Skips the empty lines a recipient may ignore before the start line (RFC 9112 §2.2).
fn skip_empty_lines(mut head: &[u8]) -> &[u8] {
    loop {
        head = match head {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
            _ => return head,
        }
    }
}

/// Takes the next line off `rest`, without its LF or CRLF; `None` if no LF is left.
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let lf = rest.iter().position(|&b| b == b'\n')?;
    let (line, after) = rest.split_at_checked(lf)?;
    *rest = after.get(1..)?;
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Parses HTTP-version (RFC 9112 §2.3) into its minor version.
fn parse_version(version: &[u8], malformed: HttpError) -> Result<u8, HttpError> {
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(0),
                (b'1', b'1') => Ok(1),
                _ => Err(HttpError::UnsupportedHttpVersion),
            }
        }
        _ => Err(malformed),
    }
}

fn parse_request_line<'a>(
    line: &'a [u8],
    limits: &Limits,
) -> Result<(&'a str, &'a str, u8), HttpError> {
    const MALFORMED: HttpError = HttpError::MalformedRequestLine;
    let (method, rest) = split_at_sp(line).ok_or(MALFORMED)?;
    let (target, version) = split_at_sp(rest).ok_or(MALFORMED)?;
    if !is_token(method) {
        return Err(MALFORMED);
    }
    if target.len() > limits.max_target_len {
        return Err(HttpError::TargetTooLong);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(MALFORMED);
    }
    // RFC 9112 §3.2: no form of request-target has a fragment (RFC 3986 §3.5: it is the
    // client's own). One that came through would reach an upstream, which may read the path
    // as ending at it (`/app/..#` is `/app/..` to a WHATWG URL parser: outside the route).
    if target.contains(&b'#') {
        return Err(HttpError::FragmentInTarget);
    }
    let minor_version = parse_version(version, MALFORMED)?;
    let method = core::str::from_utf8(method).map_err(|_| MALFORMED)?;
    let target = core::str::from_utf8(target).map_err(|_| MALFORMED)?;
    Ok((method, target, minor_version))
}

/// Splits `line` at its first SP, dropping the SP.
fn split_at_sp(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let (before, after) = line.split_at_checked(sp)?;
    Some((before, after.get(1..)?))
}

fn parse_status_line(line: &[u8]) -> Result<(u8, u16, &str), HttpError> {
    const MALFORMED: HttpError = HttpError::MalformedStatusLine;
    let (version, rest) = split_at_sp(line).ok_or(MALFORMED)?;
    let minor_version = parse_version(version, MALFORMED)?;
    let (code, reason) = match rest {
        [a, b, c] => ([*a, *b, *c], &[][..]),
        [a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(MALFORMED),
    };
    let mut status: u16 = 0;
    for digit in code {
        if !digit.is_ascii_digit() {
            return Err(MALFORMED);
        }
        // Three digits: at most 999, no overflow.
        status = status * 10 + u16::from(digit - b'0');
    }
    if status < 100 {
        return Err(MALFORMED);
    }
    // reason-phrase = *( HTAB / SP / VCHAR / obs-text )
    if !is_field_value(reason) {
        return Err(MALFORMED);
    }
    let reason = core::str::from_utf8(reason).unwrap_or("");
    Ok((minor_version, status, reason))
}

/// A byte allowed in a field value or reason phrase: HTAB, SP, VCHAR or obs-text (RFC 9110
/// §5.5). CR, LF, NUL and the other controls are not.
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
}

/// Parses header lines up to the blank line into `slots`.
fn parse_fields<'a, 'h>(
    mut rest: &'a [u8],
    slots: &'h mut [Header<'a>],
    limits: &Limits,
) -> Result<&'h [Header<'a>], HttpError> {
    let mut count = 0;
    loop {
        // A head that stops before its blank line was not found by `HeadReader`.
        let line = next_line(&mut rest).ok_or(HttpError::MalformedHeader)?;
        if line.is_empty() {
            break;
        }
        if count >= limits.max_headers {
            return Err(HttpError::TooManyHeaders);
        }
        let slot = slots.get_mut(count).ok_or(HttpError::TooManyHeaders)?;
        *slot = parse_field(line)?;
        count += 1;
    }
    let slots: &'h [Header<'a>] = slots;
    Ok(slots.get(..count).unwrap_or_default())
}

/// Parses `field-name ":" OWS field-value OWS` (RFC 9112 §5).
fn parse_field(line: &[u8]) -> Result<Header<'_>, HttpError> {
    const MALFORMED: HttpError = HttpError::MalformedHeader;
    // The name runs to the first non-tchar, which must be the colon: this rejects whitespace
    // before the colon (§5.1) and obs-fold, whose line starts with SP or HTAB (§5.2).
    let end = line.iter().position(|&b| !is_tchar(b)).ok_or(MALFORMED)?;
    let (name, rest) = line.split_at_checked(end).ok_or(MALFORMED)?;
    let [b':', value @ ..] = rest else {
        return Err(MALFORMED);
    };
    if name.is_empty() || !is_field_value(value) {
        return Err(MALFORMED);
    }
    let name = core::str::from_utf8(name).map_err(|_| MALFORMED)?;
    Ok(Header { name, value: trim_ows(value) })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Finds the head in `input` fed whole and fed one byte at a time, and checks both agree.
    pub(crate) fn find_head(input: &[u8], limits: &Limits) -> Result<Status<usize>, HttpError> {
        let whole = HeadReader::new(limits).feed(input);
        let mut reader = HeadReader::new(limits);
        let mut bytewise = Ok(Status::Partial);
        for end in 1..=input.len() {
            bytewise = reader.feed(&input[..end]);
            if bytewise != Ok(Status::Partial) {
                break;
            }
        }
        assert_eq!(whole, bytewise, "whole vs byte by byte: {:?}", input.escape_ascii());
        // Any other split: two halves.
        for mid in 0..=input.len() {
            let mut reader = HeadReader::new(limits);
            let first = reader.feed(&input[..mid]);
            let second = if first == Ok(Status::Partial) { reader.feed(input) } else { first };
            assert_eq!(whole, second, "split at {mid}: {:?}", input.escape_ascii());
        }
        whole
    }

    /// Finds the head (whole and byte by byte), then parses it as a request.
    fn request<R>(
        input: &[u8],
        limits: &Limits,
        check: impl for<'a, 'h> FnOnce(Result<Request<'a, 'h>, HttpError>) -> R,
    ) -> R {
        let mut slots = [Header::default(); 8];
        match find_head(input, limits) {
            Ok(Status::Complete(len)) => check(parse_request(&input[..len], &mut slots, limits)),
            Ok(Status::Partial) => panic!("incomplete head: {:?}", input.escape_ascii()),
            Err(e) => check(Err(e)),
        }
    }

    fn response<R>(
        input: &[u8],
        check: impl for<'a, 'h> FnOnce(Result<Response<'a, 'h>, HttpError>) -> R,
    ) -> R {
        let limits = Limits::default();
        let mut slots = [Header::default(); 8];
        match find_head(input, &limits) {
            Ok(Status::Complete(len)) => check(parse_response(&input[..len], &mut slots, &limits)),
            Ok(Status::Partial) => panic!("incomplete head: {:?}", input.escape_ascii()),
            Err(e) => check(Err(e)),
        }
    }

    /// `path()` and `host()` of a request head.
    fn path_and_host(head: &str) -> (String, Result<Option<Vec<u8>>, HttpError>) {
        let mut slots = [Header::default(); 8];
        let req = parse_request(head.as_bytes(), &mut slots, &Limits::default()).unwrap();
        (req.path().into(), host(&req).map(|h| h.map(<[u8]>::to_vec)))
    }

    #[test]
    fn absolute_form_paths() {
        for (target, path) in [
            ("/a/b?q", "/a/b"),
            ("http://example.com/a/b?q=1", "/a/b"),
            ("HTTPS://example.com:8443/a", "/a"),
            ("ws://example.com", "/"),
            ("http://example.com?q", "/"),
            ("*", "*"),
            ("/x://y", "/x://y"),
            ("1http://example.com/a", "1http://example.com/a"),
        ] {
            let head = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(path_and_host(&head).0, path, "{target}");
        }
    }

    #[test]
    fn host_rules() {
        let h = |fields: &str, v: u8| path_and_host(&format!("GET / HTTP/1.{v}\r\n{fields}\r\n")).1;
        assert_eq!(h("Host: example.com:80\r\n", 1), Ok(Some(b"example.com:80".to_vec())));
        assert_eq!(h("Host: [::1]:8080\r\n", 1), Ok(Some(b"[::1]:8080".to_vec())));
        assert_eq!(h("Host:\r\n", 1), Ok(Some(Vec::new())));
        assert_eq!(h("", 0), Ok(None));
        assert_eq!(h("", 1), Err(HttpError::MissingHost));
        assert_eq!(h("Host: a\r\nHost: a\r\n", 1), Err(HttpError::MissingHost));
        assert_eq!(h("Host: a\r\nHost: b\r\n", 0), Err(HttpError::MissingHost));
        for bad in ["a b", "a/b", "user@a", "a?b", "a#b", "a\"b"] {
            assert_eq!(h(&format!("Host: {bad}\r\n"), 1), Err(HttpError::InvalidHost), "{bad}");
        }
    }

    #[test]
    fn head_end_is_found_however_the_bytes_arrive() {
        let limits = Limits::default();
        let cases: &[(&[u8], Status<usize>)] = &[
            (b"", Status::Partial),
            (b"GET / HTTP/1.1\r\n", Status::Partial),
            (b"GET / HTTP/1.1\r\n\r", Status::Partial),
            (b"GET / HTTP/1.1\r\n\r\n", Status::Complete(18)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Status::Complete(27)),
            (b"GET / HTTP/1.1\nHost: a\n\n", Status::Complete(24)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", Status::Complete(26)),
            // Bytes after the head (frames) are not part of it.
            (b"GET / HTTP/1.1\r\n\r\n\x81\x85abcd", Status::Complete(18)),
            (b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", Status::Complete(18)),
            // Leading empty lines are part of the head, not its end.
            (b"\r\n\r\n\n", Status::Partial),
            (b"\r\n\nGET / HTTP/1.1\r\n\r\n", Status::Complete(21)),
            // A bare CR is line content, not a line end.
            (b"GET / HTTP/1.1\r\r\n\r\n", Status::Complete(19)),
            (b"GET / HTTP/1.1\r\n\r\r\n", Status::Partial),
        ];
        for &(input, expected) in cases {
            assert_eq!(find_head(input, &limits), Ok(expected), "{:?}", input.escape_ascii());
        }
    }

    #[test]
    fn head_too_large_at_exactly_the_limit_plus_one() {
        let head = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
        let limits = Limits { max_head_len: head.len(), ..Limits::default() };
        // A head of exactly the limit is fine, even with more bytes behind it.
        assert_eq!(find_head(head, &limits), Ok(Status::Complete(head.len())));
        let mut more = head.to_vec();
        more.extend_from_slice(b"trailing frame bytes");
        assert_eq!(find_head(&more, &limits), Ok(Status::Complete(head.len())));
        // One byte longer and it is refused as soon as limit + 1 bytes are in.
        let long = b"GET / HTTP/1.1\r\nHost: example1\r\n\r\n";
        assert_eq!(find_head(&long[..head.len()], &limits), Ok(Status::Partial));
        assert_eq!(find_head(&long[..=head.len()], &limits), Err(HttpError::HeadTooLarge));
        assert_eq!(find_head(long, &limits), Err(HttpError::HeadTooLarge));
        // Endless empty lines are bounded the same way.
        let blank = b"\r\n".repeat(limits.max_head_len);
        assert_eq!(find_head(&blank, &limits), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn reader_is_linear_and_resettable() {
        let limits = Limits::default();
        let mut reader = HeadReader::new(&limits);
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(reader.feed(&input[..10]), Ok(Status::Partial));
        assert_eq!(reader.scanned(), 10);
        assert_eq!(reader.feed(input), Ok(Status::Complete(input.len())));
        assert_eq!(reader.feed(input), Ok(Status::Complete(input.len())));
        reader.reset();
        assert_eq!(reader.feed(b"HTTP/1.1 200 OK\n\n"), Ok(Status::Complete(17)));
    }

    #[test]
    fn parses_a_request() {
        let input = b"\r\nGET /chat?room=1&x=y HTTP/1.1\r\nHost: example.com:80 \r\n\
            upgrade:websocket\r\nConnection: keep-alive, Upgrade\r\nX-Empty:\r\n\
            CONNECTION: ,, \t\r\n\r\n\x81\x80";
        request(input, &Limits::default(), |req| {
            let req = req.unwrap();
            assert_eq!(req.method, "GET");
            assert_eq!(req.target, "/chat?room=1&x=y");
            assert_eq!(req.path(), "/chat");
            assert_eq!(req.query(), Some("room=1&x=y"));
            assert_eq!(req.minor_version, 1);
            assert_eq!(req.headers.len(), 5);
            assert_eq!(req.header("HOST"), Some(&b"example.com:80"[..]));
            assert_eq!(req.header("Upgrade"), Some(&b"websocket"[..]));
            assert_eq!(req.header("x-empty"), Some(&b""[..]));
            assert_eq!(req.header("missing"), None);
            assert_eq!(req.header_count("connection"), 2);
            let tokens: Vec<&[u8]> = req.tokens("Connection").collect();
            assert_eq!(tokens, [&b"keep-alive"[..], b"Upgrade"]);
            assert!(req.fields().has_token("connection", "UPGRADE"));
            assert!(!req.fields().has_token("connection", "close"));
        });
        request(b"OPTIONS * HTTP/1.0\r\n\r\n", &Limits::default(), |req| {
            let req = req.unwrap();
            assert_eq!((req.method, req.path(), req.query()), ("OPTIONS", "*", None));
            assert_eq!(req.minor_version, 0);
            assert!(req.headers.is_empty());
        });
    }

    #[test]
    fn rejects_malformed_requests() {
        use HttpError::*;
        let limits = Limits { max_target_len: 10, ..Limits::default() };
        let cases: &[(&[u8], HttpError)] = &[
            (b"GET / HTTP/1.1 \r\n\r\n", MalformedRequestLine),
            (b"GET  / HTTP/1.1\r\n\r\n", MalformedRequestLine),
            (b"GET /\r\n\r\n", MalformedRequestLine),
            (b"GET\r\n\r\n", MalformedRequestLine),
            (b"G(T / HTTP/1.1\r\n\r\n", MalformedRequestLine),
            (b" GET / HTTP/1.1\r\n\r\n", MalformedRequestLine),
            (b"GET /a\x7f HTTP/1.1\r\n\r\n", MalformedRequestLine),
            (b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", MalformedRequestLine),
            (b"GET / HTTP/1.1\r\r\n\r\n", MalformedRequestLine),
            (b"GET / http/1.1\r\n\r\n", MalformedRequestLine),
            (b"GET / HTTP/1.10\r\n\r\n", MalformedRequestLine),
            (b"GET / HTTP/1\r\n\r\n", MalformedRequestLine),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedHttpVersion),
            (b"GET / HTTP/1.2\r\n\r\n", UnsupportedHttpVersion),
            (b"GET / HTTP/0.9\r\n\r\n", UnsupportedHttpVersion),
            (b"GET /0123456789 HTTP/1.1\r\n\r\n", TargetTooLong),
            // A fragment is the client's own (RFC 9112 §3.2, RFC 3986 §3.5): a `#` that gets
            // this far would reach an upstream, which may cut the path there.
            (b"GET /a/..# HTTP/1.1\r\n\r\n", FragmentInTarget),
            (b"GET /a#b HTTP/1.1\r\n\r\n", FragmentInTarget),
            (b"GET /?q=1# HTTP/1.1\r\n\r\n", FragmentInTarget),
            (b"GET # HTTP/1.1\r\n\r\n", FragmentInTarget),
            (b"GET ws://h/#x HTTP/1.1\r\n\r\n", FragmentInTarget),
            // Whitespace before the colon (RFC 9112 §5.1).
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", MalformedHeader),
            // obs-fold (RFC 9112 §5.2).
            (b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\n: a\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A a\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX(A: a\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A: a\x1bb\r\n\r\n", MalformedHeader),
            (b"GET / HTTP/1.1\r\nX-A: a\r\r\n\r\n", MalformedHeader),
            // Origin is single-valued (RFC 6454 §7.3): which one would count?
            (b"GET / HTTP/1.1\r\nOrigin: http://a\r\nOrigin: http://b\r\n\r\n", RepeatedOrigin),
            (
                b"GET / HTTP/1.1\r\norigin: http://a\r\nX: y\r\nORIGIN: http://a\r\n\r\n",
                RepeatedOrigin,
            ),
        ];
        for &(input, expected) in cases {
            let got = request(input, &limits, |req| req.map(|_| ()));
            assert_eq!(got, Err(expected), "{:?}", input.escape_ascii());
            assert!(matches!(expected.status(), 400 | 414 | 505));
        }
        // A target of exactly the limit is fine.
        request(b"GET /123456789 HTTP/1.1\r\n\r\n", &limits, |req| assert!(req.is_ok()));
        // An encoded `#` is a path character like any other.
        request(b"GET /a%23b HTTP/1.1\r\n\r\n", &limits, |req| {
            assert_eq!(req.map(|r| r.path()), Ok("/a%23b"));
        });
        // Header values may carry obs-text and HTAB.
        request(b"GET / HTTP/1.1\r\nX-A: \tcaf\xc3\xa9\tb \r\n\r\n", &limits, |req| {
            assert_eq!(req.unwrap().header("x-a"), Some(&b"caf\xc3\xa9\tb"[..]));
        });
    }

    #[test]
    fn too_many_headers() {
        let input = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let limits = Limits::default();
        assert_eq!(find_head(input, &limits), Ok(Status::Complete(input.len())));
        let mut three = [Header::default(); 3];
        let mut two = [Header::default(); 2];
        assert_eq!(parse_request(input, &mut three, &limits).map(|r| r.headers.len()), Ok(3));
        assert_eq!(parse_request(input, &mut two, &limits), Err(HttpError::TooManyHeaders));
        let two_max = Limits { max_headers: 2, ..limits };
        assert_eq!(parse_request(input, &mut three, &two_max), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooManyHeaders.status(), 431);
        let mut none: [Header<'_>; 0] = [];
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\n\r\n", &mut none, &limits).map(|r| r.headers.len()),
            Ok(0)
        );
    }

    #[test]
    fn a_head_without_its_blank_line_is_rejected() {
        let limits = Limits::default();
        let mut slots = [Header::default(); 4];
        let cases: &[(&[u8], HttpError)] = &[
            (b"", HttpError::MalformedRequestLine),
            (b"GET / HTTP/1.1", HttpError::MalformedRequestLine),
            (b"GET / HTTP/1.1\r\n", HttpError::MalformedHeader),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", HttpError::MalformedHeader),
        ];
        for &(input, expected) in cases {
            // The reader would wait for more; a caller that parses anyway gets an error.
            assert_eq!(find_head(input, &limits), Ok(Status::Partial));
            assert_eq!(parse_request(input, &mut slots, &limits).map(|_| ()), Err(expected));
        }
    }

    #[test]
    fn parses_responses() {
        type Parsed = Result<(u8, u16, &'static str, usize), HttpError>;
        let cases: &[(&[u8], Parsed)] = &[
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                Ok((1, 101, "Switching Protocols", 1)),
            ),
            (b"HTTP/1.0 404 Not Found\r\n\r\n", Ok((0, 404, "Not Found", 0))),
            (b"HTTP/1.1 200 \r\n\r\n", Ok((1, 200, "", 0))),
            (b"HTTP/1.1 200\r\n\r\n", Ok((1, 200, "", 0))),
            (b"HTTP/1.1 200 caf\xff\r\n\r\n", Ok((1, 200, "", 0))),
            (b"HTTP/1.1 200 OK\nA: b\n\n", Ok((1, 200, "OK", 1))),
            (b"HTTP/1.1 20 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1 099 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1 1x1 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1 200 O\x01K\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1  200 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/1.1\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"ICY 200 OK\r\n\r\n", Err(HttpError::MalformedStatusLine)),
            (b"HTTP/2.0 200 OK\r\n\r\n", Err(HttpError::UnsupportedHttpVersion)),
            (b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", Err(HttpError::MalformedHeader)),
        ];
        for (input, expected) in cases {
            response(input, |resp| {
                let got = resp.map(|r| (r.minor_version, r.status, r.reason, r.headers.len()));
                assert_eq!(got, *expected, "{:?}", input.escape_ascii());
            });
        }
        response(b"HTTP/1.1 101 x\r\nupgrade: WebSocket\r\nUpgrade: h2c\r\n\r\n", |resp| {
            let resp = resp.unwrap();
            assert_eq!(resp.header("UPGRADE"), Some(&b"WebSocket"[..]));
            assert_eq!(resp.header_count("upgrade"), 2);
            assert_eq!(resp.tokens("upgrade").count(), 2);
            assert!(resp.fields().has_token("Upgrade", "websocket"));
        });
    }

    #[test]
    fn tokens_follow_list_syntax() {
        let headers = [
            Header { name: "A", value: b" x ,\ty,, ,z" },
            Header { name: "b", value: b"q" },
            Header { name: "a", value: b"" },
            Header { name: "a", value: b"w" },
        ];
        let tokens: Vec<&[u8]> = Headers(&headers).tokens("a").collect();
        assert_eq!(tokens, [&b"x"[..], b"y", b"z", b"w"]);
        assert_eq!(trim_ows(b" \t "), b"");
        assert!(is_token(b"chat.v1+json"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a,b"));
    }
}
