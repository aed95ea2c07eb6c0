//! HTTP/1.1 request bodies (RFC 9112 §6, §7): how a request's body is framed, and an incremental
//! decoder for the chunked transfer coding that examines each byte once however the bytes are
//! split.

use alloc::vec::Vec;

use crate::proto::error::BodyError;
use crate::proto::http::{Request, is_field_byte, is_tchar};

/// How a request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The framing of a request's body.
///
/// # Errors
/// Both `Transfer-Encoding` and `Content-Length` (or differing lengths): 400, as RFC 9112 §6.3
/// allows, since a proxy in front may read them differently (request smuggling). A coding other
/// than `chunked`: 501. A length that is not digits: 400.
pub fn request_framing(req: &Request<'_, '_>) -> Result<Framing, BodyError> {
    let te = req.header_count("transfer-encoding") > 0;
    let cl = req.header_count("content-length") > 0;
    // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; a 1.0 request with one is faulty.
    if te && req.minor_version == 0 {
        return Err(BodyError::TransferEncodingHttp10);
    }
    if te && cl {
        return Err(BodyError::AmbiguousFraming);
    }
    if te {
        let mut codings = req.tokens("transfer-encoding");
        return match (codings.next(), codings.next()) {
            (Some(c), None) if c.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(BodyError::UnsupportedTransferCoding),
        };
    }
    if !cl {
        return Ok(Framing::None);
    }
    let mut len = None;
    for value in req.fields().all("content-length") {
        // A list of identical values is allowed (§6.3 item 5); anything else is refused.
        for part in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let n = parse_decimal(part).ok_or(BodyError::InvalidContentLength)?;
            if len.is_some_and(|l| l != n) {
                return Err(BodyError::AmbiguousFraming);
            }
            len = Some(n);
        }
    }
    Ok(len.map_or(Framing::None, Framing::Length))
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// The longest line the decoder accepts for a chunk size with its extensions, or a trailer.
pub const MAX_LINE: usize = 4096;

/// Where the chunked decoder is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hexadecimal chunk size.
    Size,
    /// After the size: an extension, skipped up to CR LF.
    Extension,
    /// Expecting the LF ending the size line.
    SizeLf,
    /// Copying chunk data.
    Data,
    /// Expecting the CR LF after chunk data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field's name, up to its colon.
    TrailerName,
    /// In a trailer field's value (checked, then skipped: trailers are not used).
    TrailerValue,
    /// Expecting the LF ending a trailer line, or the final one.
    TrailerLf,
    FinalLf,
    /// The body is complete.
    Done,
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, or the data left in the current chunk.
    remaining: u64,
    /// Digits or bytes seen on the current line, to bound it.
    line: usize,
    /// The last chunk (size 0) was read: what follows are trailers.
    last: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub const fn new() -> Self {
        Self { state: State::Size, remaining: 0, line: 0, last: false }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, appending data to `out`. Returns the bytes consumed; it stops at the
    /// end of the body (what follows is the next request).
    ///
    /// # Errors
    /// The body breaks the chunked grammar, or its data would make `out` longer than `max`.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, BodyError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Data => {
                    let n =
                        usize::try_from(self.remaining).unwrap_or(usize::MAX).min(input.len() - i);
                    if out.len().saturating_add(n) > max {
                        return Err(BodyError::TooLarge);
                    }
                    out.extend_from_slice(&input[i..i + n]);
                    self.remaining -= n as u64;
                    i += n;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size => match hex(b) {
                    Some(d) => {
                        self.line += 1;
                        if self.line > 16 {
                            return Err(BodyError::MalformedChunk);
                        }
                        self.remaining = (self.remaining << 4) | u64::from(d);
                    }
                    None if self.line == 0 => return Err(BodyError::MalformedChunk),
                    None if b == b'\r' => self.state = State::SizeLf,
                    None if b == b';' || b == b' ' || b == b'\t' => self.state = State::Extension,
                    None => return Err(BodyError::MalformedChunk),
                },
                State::Extension => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(BodyError::MalformedChunk);
                    }
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' || b < 0x20 && b != b'\t' {
                        return Err(BodyError::MalformedChunk);
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.line = 0;
                    if self.remaining == 0 {
                        self.last = true;
                        self.state = State::TrailerStart;
                    } else {
                        if (out.len() as u64).saturating_add(self.remaining) > max as u64 {
                            return Err(BodyError::TooLarge);
                        }
                        self.state = State::Data;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.state = State::Size;
                    self.line = 0;
                    self.remaining = 0;
                }
                // Trailer lines are field lines (RFC 9112 §7.1.2, §5), ended by CR LF only: a
                // bare LF (which §2.2 lets a recipient take for a line end) is refused, so that no
                // front end can see the body end where this decoder does not (§11.2). Nothing
                // but a field name may come before the colon (§5.1), nor start a line (obs-fold,
                // §5.2); a value holds no control byte but HTAB (RFC 9110 §5.5).
                State::TrailerStart => {
                    self.line = 1;
                    self.state = match b {
                        b'\r' => State::FinalLf,
                        _ if is_tchar(b) => State::TrailerName,
                        _ => return Err(BodyError::MalformedChunk),
                    };
                }
                State::TrailerName | State::TrailerValue => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.state = match (self.state, b) {
                        (State::TrailerName, b':') => State::TrailerValue,
                        (State::TrailerName, _) if is_tchar(b) => State::TrailerName,
                        (State::TrailerValue, b'\r') => State::TrailerLf,
                        (State::TrailerValue, _) if is_field_byte(b) => State::TrailerValue,
                        _ => return Err(BodyError::MalformedChunk),
                    };
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.state = State::TrailerStart;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(BodyError::MalformedChunk);
                    }
                    self.state = State::Done;
                }
                State::Done => break,
            }
            i += 1;
        }
        Ok(i)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::{Header, Limits, parse_request};

    fn framing(head: &str) -> Result<Framing, BodyError> {
        let mut slots = [Header::default(); 16];
        let req = parse_request(head.as_bytes(), &mut slots, &Limits::default()).unwrap();
        request_framing(&req)
    }

    #[test]
    fn framing_rules() {
        let h = |extra: &str| format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        assert_eq!(framing(&h("")), Ok(Framing::None));
        assert_eq!(framing(&h("Content-Length: 42\r\n")), Ok(Framing::Length(42)));
        assert_eq!(framing(&h("Content-Length: 7, 7\r\n")), Ok(Framing::Length(7)));
        assert_eq!(framing(&h("Transfer-Encoding: chunked\r\n")), Ok(Framing::Chunked));
        assert_eq!(framing(&h("Transfer-Encoding: CHUNKED\r\n")), Ok(Framing::Chunked));
        assert_eq!(
            framing(&h("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")),
            Err(BodyError::AmbiguousFraming)
        );
        assert_eq!(
            framing(&h("Content-Length: 3\r\nContent-Length: 4\r\n")),
            Err(BodyError::AmbiguousFraming)
        );
        assert_eq!(framing(&h("Content-Length: -1\r\n")), Err(BodyError::InvalidContentLength));
        assert_eq!(framing(&h("Content-Length: 1e3\r\n")), Err(BodyError::InvalidContentLength));
        assert_eq!(
            framing(&h("Content-Length: 99999999999999999999\r\n")),
            Err(BodyError::InvalidContentLength)
        );
        assert_eq!(
            framing(&h("Transfer-Encoding: gzip, chunked\r\n")),
            Err(BodyError::UnsupportedTransferCoding)
        );
        assert_eq!(
            framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(BodyError::TransferEncodingHttp10)
        );
        assert_eq!(BodyError::TooLarge.status(), 413);
        assert_eq!(BodyError::UnsupportedTransferCoding.status(), 501);
    }

    /// Decodes `input` whole and byte by byte; both must agree.
    fn decode(input: &[u8], max: usize) -> Result<(Vec<u8>, usize), BodyError> {
        let mut whole = Vec::new();
        let mut d = ChunkedDecoder::new();
        let r = d.feed(input, &mut whole, max).map(|n| (whole.clone(), n));
        let mut bytewise = Vec::new();
        let mut d2 = ChunkedDecoder::new();
        let mut used = 0;
        let mut err = None;
        for b in input {
            if d2.is_done() {
                break;
            }
            match d2.feed(core::slice::from_ref(b), &mut bytewise, max) {
                Ok(n) => used += n,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match (&r, err) {
            (Ok((data, n)), None) => {
                assert_eq!((data, n), (&bytewise, &used));
                assert_eq!(d.is_done(), d2.is_done());
            }
            (Err(e), Some(e2)) => assert_eq!(*e, e2),
            other => panic!("whole and byte-by-byte disagree: {other:?}"),
        }
        r
    }

    #[test]
    fn chunked_bodies() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (data, used) = decode(body, 1024).unwrap();
        assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&body[used..], b"NEXT");
        let (data, _) = decode(b"0\r\n\r\n", 10).unwrap();
        assert!(data.is_empty());
        // Incomplete input is not an error: the decoder waits.
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        assert_eq!(d.feed(b"5\r\nab", &mut out, 100), Ok(5));
        assert!(!d.is_done());
    }

    fn assert_malformed(cases: &[&[u8]]) {
        for bad in cases {
            assert_eq!(decode(bad, 1024), Err(BodyError::MalformedChunk), "{bad:?}");
        }
    }

    #[test]
    fn chunked_errors() {
        assert_malformed(&[
            b"x\r\n",
            b"\r\n",
            b"4\r\nWikiX\r\n",
            b"4\nWiki",
            b"11111111111111111\r\n",
            b"4\r\nWiki\r\n0\r\nT: x\rX",
        ]);
        assert_eq!(decode(b"10\r\n", 15), Err(BodyError::TooLarge));
        assert_eq!(decode(b"8\r\n12345678\r\n8\r\n1234", 12), Err(BodyError::TooLarge));
        let long_ext = [&b"1;"[..], &[b'a'; 5000], b"\r\n"].concat();
        assert_eq!(decode(&long_ext, 1024), Err(BodyError::MalformedChunk));
    }

    /// Trailer lines are field lines ending in CR LF (RFC 9112 §7.1.2, §5): anything looser
    /// would let a front end that ends lines differently see a different end of the body.
    #[test]
    fn trailers_are_field_lines() {
        let body = b"1\r\na\r\n0\r\nT: x\r\nU:\r\nV: y \tz\r\n\r\nNEXT";
        let (data, used) = decode(body, 10).unwrap();
        assert_eq!((&data[..], &body[used..]), (&b"a"[..], &b"NEXT"[..]));
        assert_malformed(&[
            // A bare LF ending the last line: a front end that takes it for the end of the body
            // sends the next request, which this decoder would have read as a trailer.
            b"0\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"0\r\nT: x\n\r\n",
            b"0\r\nT: x\r\n\n",
            b"0\r\nno-colon\r\n\r\n",
            b"0\r\n: no name\r\n\r\n",
            b"0\r\nT : space before the colon\r\n\r\n",
            b"0\r\n folded: x\r\n\r\n",
            b"0\r\nT: nul\0\r\n\r\n",
            b"0\r\nT: del\x7f\r\n\r\n",
            b"0\r\nT: cr\rx\r\n\r\n",
            b"0\r\n\rX",
        ]);
        let long_trailer = [&b"0\r\nT: "[..], &[b'a'; 5000], b"\r\n\r\n"].concat();
        assert_eq!(decode(&long_trailer, 1024), Err(BodyError::MalformedChunk));
    }
}
