//! `ChunkedDecoder` (RFC 9112 §7.1) against a reference decoder written here from the grammar,
//! and fed whole against fed in reads of a fuzzer-chosen size.
//!
//! Input layout (parsed by hand, no `arbitrary`):
//! - byte 0: the body limit, `b * 8` bytes (0 to 2040);
//! - byte 1: the read size of the split run (0 counts as 1);
//! - the rest is the body (and whatever follows it).
//!
//! The reference reads the whole input at once, element by element of the grammar, where the
//! decoder is a byte-at-a-time state machine: both must give the same data, the same end of the
//! body (or both want more), or the same error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::body::{ChunkedDecoder, MAX_LINE};
use weir::proto::error::BodyError;

const MALFORMED: BodyError = BodyError::MalformedChunk;

/// What a decoder made of a whole input.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body ended after `.1` bytes, with data `.0`.
    Done(Vec<u8>, usize),
    /// All of the input was used and the body is not over; the data so far.
    More(Vec<u8>),
    Failed(BodyError),
}

fuzz_target!(|data: &[u8]| {
    let [limit, read, body @ ..] = data else {
        return;
    };
    let max = usize::from(*limit) * 8;
    let read = usize::from(*read).max(1);

    let whole = incremental(body, max, body.len().max(1));
    assert_eq!(whole, reference(body, max), "decoder against the reference");
    assert_eq!(incremental(body, max, read), whole, "fed in reads of {read} against whole");
    if let Outcome::Done(data, used) = &whole {
        assert!(data.len() <= max && *used <= body.len());
    }
});

/// The decoder, fed `body` in reads of `read` bytes (each read resumes where the last stopped).
fn incremental(body: &[u8], max: usize, read: usize) -> Outcome {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos = 0;
    for piece in body.chunks(read) {
        match d.feed(piece, &mut out, max) {
            Err(e) => return Outcome::Failed(e),
            Ok(n) => {
                assert!(n <= piece.len());
                pos += n;
                if d.is_done() {
                    return Outcome::Done(out, pos);
                }
                assert_eq!(n, piece.len(), "stopped early without finishing the body");
            }
        }
    }
    Outcome::More(out)
}

/// The chunked grammar, read over the whole input:
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// trailer-section = *( field-line CRLF )     ; field-line = name ":" value (RFC 9112 §5)
/// ```
///
/// with weir's limits: at most 16 hex digits, a size line of at most `MAX_LINE` bytes before
/// its LF (digits, extension and CR; an extension is skipped up to CR but holds no LF and no
/// control byte other than HTAB), a trailer line of at most `MAX_LINE` bytes before its LF, and
/// at most `max` bytes of data, refused as soon as a size line declares more.
fn reference(input: &[u8], max: usize) -> Outcome {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // chunk-size
        let digits = input[i..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits > 16 {
            return Outcome::Failed(MALFORMED);
        }
        let size = input[i..i + digits]
            .iter()
            .fold(0u64, |n, &b| n << 4 | u64::from(char::from(b).to_digit(16).unwrap_or(0)));
        let line_start = i;
        i += digits;
        let Some(&next) = input.get(i) else { return Outcome::More(out) };
        if digits == 0 {
            return Outcome::Failed(MALFORMED);
        }
        // chunk-ext, skipped
        if matches!(next, b';' | b' ' | b'\t') {
            i += 1;
            loop {
                let Some(&b) = input.get(i) else { return Outcome::More(out) };
                // Every byte after the digits, the CR too, counts against the line.
                if i - line_start > MAX_LINE {
                    return Outcome::Failed(MALFORMED);
                }
                if b == b'\r' {
                    break;
                }
                if b == b'\n' || (b < 0x20 && b != b'\t') {
                    return Outcome::Failed(MALFORMED);
                }
                i += 1;
            }
        }
        match crlf(input, i) {
            Some(Ok(())) => i += 2,
            Some(Err(())) => return Outcome::Failed(MALFORMED),
            None => return Outcome::More(out),
        }
        if size == 0 {
            return trailers(input, i, out);
        }
        if (out.len() as u64).saturating_add(size) > max as u64 {
            return Outcome::Failed(BodyError::TooLarge);
        }
        // chunk-data CRLF
        let size = size as usize; // at most `max` here
        let Some(chunk) = input.get(i..i + size) else {
            out.extend_from_slice(&input[i..]);
            return Outcome::More(out);
        };
        out.extend_from_slice(chunk);
        i += size;
        match crlf(input, i) {
            Some(Ok(())) => i += 2,
            Some(Err(())) => return Outcome::Failed(MALFORMED),
            None => return Outcome::More(out),
        }
    }
}

/// The trailer section and the final CRLF, from `i`.
fn trailers(input: &[u8], mut i: usize, out: Vec<u8>) -> Outcome {
    loop {
        let Some(&first) = input.get(i) else { return Outcome::More(out) };
        if first == b'\r' {
            return match input.get(i + 1) {
                Some(b'\n') => Outcome::Done(out, i + 2),
                Some(_) => Outcome::Failed(MALFORMED),
                None => Outcome::More(out),
            };
        }
        // field-name ":" field-value CR LF, CR at most MAX_LINE bytes into the line
        let line = &input[i..];
        let name = line.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 || name >= MAX_LINE {
            return fail_or_more(line.len() > name.min(MAX_LINE), out);
        }
        match line.get(name) {
            None => return Outcome::More(out),
            Some(b':') => {}
            Some(_) => return Outcome::Failed(MALFORMED),
        }
        let value = line[name + 1..].iter().take_while(|&&b| is_field_byte(b)).count();
        let cr = name + 1 + value;
        if cr >= MAX_LINE {
            return fail_or_more(line.len() > MAX_LINE, out);
        }
        match line.get(cr) {
            None => return Outcome::More(out),
            Some(b'\r') => {}
            Some(_) => return Outcome::Failed(MALFORMED),
        }
        match line.get(cr + 1) {
            None => return Outcome::More(out),
            Some(b'\n') => i += cr + 2,
            Some(_) => return Outcome::Failed(MALFORMED),
        }
    }
}

/// A trailer line that is too long or malformed at byte `MAX_LINE` (0-based) fails once that
/// byte is there.
fn fail_or_more(byte_there: bool, out: Vec<u8>) -> Outcome {
    if byte_there { Outcome::Failed(MALFORMED) } else { Outcome::More(out) }
}

/// CR LF at `i`: `None` if the input ends first.
fn crlf(input: &[u8], i: usize) -> Option<Result<(), ()>> {
    match (input.get(i), input.get(i + 1)) {
        (None, _) => None,
        (Some(b'\r'), None) => None,
        (Some(b'\r'), Some(b'\n')) => Some(Ok(())),
        _ => Some(Err(())),
    }
}

/// RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5).
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}
