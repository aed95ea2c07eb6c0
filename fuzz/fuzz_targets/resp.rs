//! `proto::resp::Parser` on any bytes, against a reference written in this file from the
//! grammar (recursive descent over the whole input, where the parser is a resumable state
//! machine), and against itself fed in reads.
//!
//! Byte 0 picks the read size (bits 0-5, plus one) and the limits (bits 6-7: the defaults, or
//! tiny, small or middling ones, so that every limit is reached). The rest is a stream of
//! replies. Checks:
//! - the stream parsed whole, reply after reply, gives what the reference gives: the same
//!   replies with the same lengths, then the same error or the same unfinished tail;
//! - fed in reads of the picked size (the caller's buffer grows, and loses each reply once it is
//!   complete), and one byte at a time, it gives the same.
//!
//! Replies are compared as text (`Reply`'s `Display`, which iterates every aggregate, so an
//! element that fails to decode shows), the reference writing the same notation as it parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Status;
use weir::proto::resp::{Limits, MAX_NUMBER_LINE, Parser, RespError};

/// What a stream gives: its replies and their lengths, then how it ends (`None`: unfinished).
type Run = (Vec<(String, usize)>, Option<RespError>);

/// The reference: one reply at the start of `buf`, by recursive descent.
struct Reference<'a> {
    buf: &'a [u8],
    limits: Limits,
}

/// `Ok(None)`: the input ends first.
type Step<X> = Result<Option<X>, RespError>;

impl Reference<'_> {
    fn element(&self, at: usize, depth: usize) -> Step<(String, usize)> {
        use RespError::*;
        let l = &self.limits;
        if depth > 0 && at + 3 > l.max_reply {
            return Err(ReplyTooLarge);
        }
        let Some(&kind) = self.buf.get(at) else { return Ok(None) };
        if !b"+-:$*_#,(!=%~>|".contains(&kind) {
            return Err(UnknownType);
        }
        let Some(cr) = self.line(at, kind)? else { return Ok(None) };
        let line = &self.buf[at + 1..cr];
        let next = cr + 2;
        let text = String::from_utf8_lossy(line);
        let value = |v: String| Ok(Some((v, next)));
        let quoted = |prefix: &str| format!("{prefix}\"{}\"", line.escape_ascii());
        match kind {
            b'+' => value(quoted("+")),
            b'-' => value(quoted("-")),
            b'(' if is_signed_digits(line) => value(format!("({text}")),
            b'(' => Err(BadBigNumber),
            b':' if !is_signed_digits(line) => Err(BadInteger),
            b':' => value(text.parse::<i64>().map_err(|_| IntegerRange)?.to_string()),
            b'_' if line.is_empty() => value("null".into()),
            b'_' => Err(BadNull),
            b'#' if line == b"t" => value("true".into()),
            b'#' if line == b"f" => value("false".into()),
            b'#' => Err(BadBoolean),
            b',' => value(format!(",{:?}", double(&text).ok_or(BadDouble)?)),
            b'$' | b'*' if line == b"-1" => value("null".into()),
            b'$' | b'!' | b'=' => self.string(kind, next, length(line)?),
            _ => self.aggregate(kind, next, length(line)?, depth),
        }
    }

    /// The CR of the line at `at`.
    fn line(&self, at: usize, kind: u8) -> Step<usize> {
        let l = &self.limits;
        let string = b"+-(".contains(&kind);
        let cap = if string { l.max_bulk } else { MAX_NUMBER_LINE };
        let last = (at + 1).saturating_add(cap).min(l.max_reply.saturating_sub(2));
        let mut i = at + 1;
        while i <= last {
            match self.buf.get(i) {
                None => return Ok(None),
                Some(b'\n') => return Err(RespError::LineEnd),
                Some(b'\r') => {
                    return match self.buf.get(i + 1) {
                        None => Ok(None),
                        Some(b'\n') => Ok(Some(i)),
                        Some(_) => Err(RespError::LineEnd),
                    };
                }
                Some(_) => i += 1,
            }
        }
        if self.buf.len() <= last {
            return Ok(None);
        }
        Err(if l.max_reply.saturating_sub(2) < (at + 1).saturating_add(cap) {
            RespError::ReplyTooLarge
        } else if string {
            RespError::StringTooLarge
        } else {
            RespError::LineTooLong
        })
    }

    fn string(&self, kind: u8, start: usize, len: u128) -> Step<(String, usize)> {
        use RespError::*;
        if len > self.limits.max_bulk as u128 {
            return Err(StringTooLarge);
        }
        let end = start + len as usize + 2;
        if end > self.limits.max_reply {
            return Err(ReplyTooLarge);
        }
        if kind == b'=' && len < 4 {
            return Err(BadVerbatim);
        }
        for (i, want) in [(end - 2, b'\r'), (end - 1, b'\n')] {
            match self.buf.get(i) {
                None => return Ok(None),
                Some(&b) if b != want => return Err(BulkEnd),
                Some(_) => {}
            }
        }
        let payload = &self.buf[start..end - 2];
        let t = match kind {
            b'$' => format!("\"{}\"", payload.escape_ascii()),
            b'!' => format!("!\"{}\"", payload.escape_ascii()),
            _ if payload[3] == b':' => {
                format!("={}:\"{}\"", payload[..3].escape_ascii(), payload[4..].escape_ascii())
            }
            _ => return Err(BadVerbatim),
        };
        Ok(Some((t, end)))
    }

    fn aggregate(
        &self,
        kind: u8,
        start: usize,
        count: u128,
        depth: usize,
    ) -> Step<(String, usize)> {
        let pairs = kind == b'%' || kind == b'|';
        let elements = if pairs { count.saturating_mul(2) } else { count };
        if elements > self.limits.max_elements as u128 {
            return Err(RespError::TooManyElements);
        }
        if depth >= self.limits.max_depth.min(weir::proto::resp::MAX_DEPTH) {
            return Err(RespError::TooDeep);
        }
        let n = elements as usize + usize::from(kind == b'|');
        let mut items = Vec::new();
        let mut at = start;
        for _ in 0..n {
            let Some((t, next)) = self.element(at, depth + 1)? else { return Ok(None) };
            items.push(t);
            at = next;
        }
        // Reply's Display: `[a, b]`, `~[..]`, `>[..]`, `{k: v}`, `|{k: v} reply`.
        let pairs_text = || {
            let pairs: Vec<String> = items
                .chunks(2)
                .filter(|p| p.len() == 2)
                .map(|p| format!("{}: {}", p[0], p[1]))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        };
        let t = match kind {
            b'*' => format!("[{}]", items.join(", ")),
            b'~' => format!("~[{}]", items.join(", ")),
            b'>' => format!(">[{}]", items.join(", ")),
            b'%' => pairs_text(),
            _ => format!("|{} {}", pairs_text(), items.last().map_or("", String::as_str)),
        };
        Ok(Some((t, at)))
    }
}

fn is_signed_digits(s: &[u8]) -> bool {
    let d = s.strip_prefix(b"+").or_else(|| s.strip_prefix(b"-")).unwrap_or(s);
    !d.is_empty() && d.iter().all(u8::is_ascii_digit)
}

/// A length: digits (saturating), a negative number, or neither.
fn length(line: &[u8]) -> Result<u128, RespError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadLength);
    }
    if digits.len() != line.len() {
        return Err(RespError::NegativeLength);
    }
    // 39 digits overflow u128: anything that long is past every limit anyway.
    Ok(std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok()).unwrap_or(u128::MAX))
}

/// RESP3's double: `[+|-]digits[.digits][(e|E)[+|-]digits]`, `inf`, `-inf`, `nan`.
fn double(s: &str) -> Option<f64> {
    match s {
        "inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !ok {
        return None;
    }
    s.parse().ok()
}

/// The reference over a whole stream.
fn reference(stream: &[u8], limits: Limits) -> Run {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let r = Reference { buf: &stream[at..], limits };
        match r.element(0, 0) {
            Ok(Some((t, n))) => {
                out.push((t, n));
                at += n;
            }
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The parser over a stream that arrives in reads of `chunk` bytes.
fn feed(stream: &[u8], limits: Limits, chunk: usize) -> Run {
    let mut p = Parser::new(limits);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for read in stream.chunks(chunk) {
        buf.extend_from_slice(read);
        loop {
            match p.parse(&buf) {
                Ok(Status::Complete((r, n))) => {
                    assert!(n > 0 && n <= buf.len(), "length {n} within the buffer");
                    out.push((r.to_string(), n));
                    buf.drain(..n);
                }
                Ok(Status::Partial) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(buf.len() <= limits.max_reply.saturating_add(chunk), "the tail is bounded");
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else { return };
    let chunk = usize::from(pick & 0x3F) + 1;
    let limits = match pick >> 6 {
        0 => Limits::default(),
        1 => Limits { max_bulk: 8, max_elements: 4, max_depth: 3, max_reply: 64 },
        2 => Limits { max_bulk: 64, max_elements: 16, max_depth: 8, max_reply: 1024 },
        _ => Limits { max_bulk: 1024, max_elements: 256, max_depth: 70, max_reply: 16 << 10 },
    };
    let want = reference(stream, limits);
    let whole = feed(stream, limits, stream.len().max(1));
    assert_eq!(whole, want, "whole stream against the reference");
    let split = feed(stream, limits, chunk);
    assert_eq!(split, want, "reads of {chunk} bytes");
    if stream.len() <= 4096 {
        assert_eq!(feed(stream, limits, 1), want, "one byte at a time");
    }
});
