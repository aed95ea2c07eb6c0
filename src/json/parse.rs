//! The RFC 8259 parser: one loop over an explicit stack of open containers, driving either a
//! [`Value`] builder or nothing at all (when only validating and locating a member).

use alloc::string::String;
use alloc::vec::Vec;
use core::mem;
use core::ops::Range;

use super::value::{Number, Value};
use super::{Error, ErrorKind};

/// Bounds on the documents the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The most arrays and objects that may be open at once (`[[1]]` has a depth of 2; a
    /// scalar, 0). Default 64.
    pub max_depth: usize,
    /// The longest input accepted, in bytes; a longer one is refused before any of it is read.
    /// Default 1 MiB.
    pub max_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: 64, max_len: 1 << 20 }
    }
}

/// Parses one JSON document with the default [`Limits`].
///
/// # Errors
///
/// The first violation of RFC 8259 or of the limits, with its offset.
///
/// # Examples
///
/// ```
/// let v = weir::json::parse(br#"{"n": [1, 2.5, "x"]}"#)?;
/// assert_eq!(v.get("n").and_then(|n| n.as_array()).map(|a| a.len()), Some(3));
/// assert!(weir::json::parse(b"[1,]").is_err());
/// # Ok::<(), weir::json::Error>(())
/// ```
pub fn parse(input: &[u8]) -> Result<Value, Error> {
    parse_with(input, &Limits::default())
}

/// Parses one JSON document within `limits`.
///
/// # Errors
///
/// The first violation of RFC 8259 or of the limits, with its offset.
pub fn parse_with(input: &[u8], limits: &Limits) -> Result<Value, Error> {
    let mut builder = Builder::default();
    run(input, limits, &[], &mut builder)?;
    Ok(builder.root.unwrap_or_default())
}

/// Validates a whole document with the default [`Limits`] and returns the exact text of the
/// value at `path`, a list of object keys from the top.
///
/// The text is a slice of `input`, whitespace inside it included, so it can be forwarded as it
/// is. At each level the **first** member with the key is followed, as [`Value::get`] does; the
/// result is `None` if a key is missing or a value on the way is not an object. An empty path
/// gives the top-level value.
///
/// # Errors
///
/// As [`parse`]: the document is checked to its end even after the value is found.
///
/// # Examples
///
/// ```
/// let frame = br#"{"method": "publish", "params": {"data": [1, {"big": 123456789012345678901234567890}]}}"#;
/// let data = weir::json::find_raw(frame, &["params", "data"])?;
/// assert_eq!(data, Some(r#"[1, {"big": 123456789012345678901234567890}]"#));
/// assert_eq!(weir::json::find_raw(frame, &["params", "nope"])?, None);
/// # Ok::<(), weir::json::Error>(())
/// ```
pub fn find_raw<'a>(input: &'a [u8], path: &[&str]) -> Result<Option<&'a str>, Error> {
    find_raw_with(input, path, &Limits::default())
}

/// [`find_raw`] within `limits`.
///
/// # Errors
///
/// As [`parse_with`].
pub fn find_raw_with<'a>(
    input: &'a [u8],
    path: &[&str],
    limits: &Limits,
) -> Result<Option<&'a str>, Error> {
    match run(input, limits, path, &mut Validator)? {
        Some(span) => raw_text(input, span).map(Some),
        None => Ok(None),
    }
}

/// Parses a document within `limits` and, in the same pass, finds the text of the value at
/// `path` as [`find_raw`] does: for a message whose fields are read and whose payload is
/// forwarded as it is.
///
/// # Errors
///
/// As [`parse_with`].
pub fn parse_and_find_raw<'a>(
    input: &'a [u8],
    path: &[&str],
    limits: &Limits,
) -> Result<(Value, Option<&'a str>), Error> {
    let mut builder = Builder::default();
    let raw = match run(input, limits, path, &mut builder)? {
        Some(span) => Some(raw_text(input, span)?),
        None => None,
    };
    Ok((builder.root.unwrap_or_default(), raw))
}

/// Reads a number per RFC 8259 §6 starting at `start` and returns where it ends. Whatever
/// follows the number is left to the caller.
pub(super) fn number_end(input: &[u8], start: usize) -> Result<usize, Error> {
    let mut i = start;
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    match input.get(i) {
        Some(b'0') => {
            i += 1;
            if input.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(Error::new(ErrorKind::InvalidNumber, i));
            }
        }
        Some(b'1'..=b'9') => i = digits_end(input, i),
        Some(_) => return Err(Error::new(ErrorKind::InvalidNumber, i)),
        None => return Err(Error::new(ErrorKind::UnexpectedEnd, i)),
    }
    if input.get(i) == Some(&b'.') {
        i = at_least_one_digit(input, i + 1)?;
    }
    if matches!(input.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(input.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = at_least_one_digit(input, i)?;
    }
    Ok(i)
}

fn at_least_one_digit(input: &[u8], i: usize) -> Result<usize, Error> {
    match input.get(i) {
        Some(b) if b.is_ascii_digit() => Ok(digits_end(input, i)),
        Some(_) => Err(Error::new(ErrorKind::InvalidNumber, i)),
        None => Err(Error::new(ErrorKind::UnexpectedEnd, i)),
    }
}

fn digits_end(input: &[u8], mut i: usize) -> usize {
    while input.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

fn raw_text(input: &[u8], span: Range<usize>) -> Result<&str, Error> {
    let start = span.start;
    let bytes = input.get(span).unwrap_or_default();
    // Already validated; without `unsafe` the check is done again, over this slice only.
    core::str::from_utf8(bytes)
        .map_err(|e| Error::new(ErrorKind::InvalidUtf8, start + e.valid_up_to()))
}

/// What the parse loop reports, in document order.
trait Sink {
    /// Whether string values are decoded and handed to [`Sink::string`] (keys are decoded when
    /// this is set or when they are compared with the path).
    const DECODE: bool;
    fn literal(&mut self, value: Value);
    fn number(&mut self, text: &[u8]);
    fn string(&mut self, text: &mut String);
    fn open(&mut self, object: bool);
    fn key(&mut self, key: &mut String);
    fn close(&mut self);
}

/// Builds a [`Value`]; its stack mirrors the parser's.
#[derive(Default)]
struct Builder {
    stack: Vec<Partial>,
    root: Option<Value>,
}

enum Partial {
    Array(Vec<Value>),
    /// The members so far and the key of the member being read.
    Object(Vec<(String, Value)>, String),
}

impl Builder {
    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Partial::Array(items)) => items.push(value),
            Some(Partial::Object(members, key)) => members.push((mem::take(key), value)),
        }
    }
}

impl Sink for Builder {
    const DECODE: bool = true;

    fn literal(&mut self, value: Value) {
        self.push(value);
    }

    fn number(&mut self, text: &[u8]) {
        // The parser checked the grammar, so these are ASCII bytes.
        let text = text.iter().copied().map(char::from).collect();
        self.push(Value::Number(Number::from_checked(text)));
    }

    fn string(&mut self, text: &mut String) {
        self.push(Value::String(mem::take(text)));
    }

    fn open(&mut self, object: bool) {
        self.stack.push(if object {
            Partial::Object(Vec::new(), String::new())
        } else {
            Partial::Array(Vec::new())
        });
    }

    fn key(&mut self, key: &mut String) {
        if let Some(Partial::Object(_, pending)) = self.stack.last_mut() {
            *pending = mem::take(key);
        }
    }

    fn close(&mut self) {
        let value = match self.stack.pop() {
            Some(Partial::Array(items)) => Value::Array(items),
            Some(Partial::Object(members, _)) => Value::Object(members),
            None => return,
        };
        self.push(value);
    }
}

/// Checks the document and keeps nothing.
struct Validator;

impl Sink for Validator {
    const DECODE: bool = false;
    fn literal(&mut self, _: Value) {}
    fn number(&mut self, _: &[u8]) {}
    fn string(&mut self, _: &mut String) {}
    fn open(&mut self, _: bool) {}
    fn key(&mut self, _: &mut String) {}
    fn close(&mut self) {}
}

/// An open array or object.
struct Frame {
    object: bool,
    /// This object is the first-match value at `path[..depth]`, and no member named
    /// `path[depth]` has been read yet.
    on_path: bool,
}

/// Parses `input`, reporting to `sink`, and returns the span of the value at `path`.
fn run<S: Sink>(
    input: &[u8],
    limits: &Limits,
    path: &[&str],
    sink: &mut S,
) -> Result<Option<Range<usize>>, Error> {
    if input.len() > limits.max_len {
        return Err(Error::new(ErrorKind::TooLong, limits.max_len));
    }
    let mut p = Cursor { input, pos: 0 };
    let mut stack: Vec<Frame> = Vec::new();
    let mut scratch = String::new();
    let mut found = None;
    // Whether the next value is the one at `path[..stack.len()]`.
    let mut next_on_path = true;
    // While the target is being read: where it started and the depth it is complete at.
    let mut target: Option<(usize, usize)> = None;
    loop {
        p.skip_ws();
        let start = p.pos;
        if next_on_path && stack.len() == path.len() {
            target = Some((start, stack.len()));
        }
        match p.peek() {
            None => return Err(Error::new(ErrorKind::UnexpectedEnd, start)),
            Some(open @ (b'[' | b'{')) => {
                if stack.len() >= limits.max_depth {
                    return Err(Error::new(ErrorKind::TooDeep, start));
                }
                p.pos += 1;
                let object = open == b'{';
                let on_path = next_on_path && object && stack.len() < path.len();
                stack.push(Frame { object, on_path });
                sink.open(object);
                p.skip_ws();
                let close = if object { b'}' } else { b']' };
                if p.peek() == Some(close) {
                    p.pos += 1;
                    stack.pop();
                    sink.close();
                } else {
                    next_on_path = object && p.key(&mut stack, path, &mut scratch, sink)?;
                    continue;
                }
            }
            Some(b'"') => {
                scratch.clear();
                p.string(S::DECODE.then_some(&mut scratch))?;
                sink.string(&mut scratch);
            }
            Some(b'-' | b'0'..=b'9') => {
                p.pos = number_end(input, start)?;
                sink.number(input.get(start..p.pos).unwrap_or_default());
            }
            Some(b't') => {
                p.literal(b"true")?;
                sink.literal(Value::Bool(true));
            }
            Some(b'f') => {
                p.literal(b"false")?;
                sink.literal(Value::Bool(false));
            }
            Some(b'n') => {
                p.literal(b"null")?;
                sink.literal(Value::Null);
            }
            Some(_) => return Err(Error::new(ErrorKind::UnexpectedByte, start)),
        }
        // A value is complete: close the containers it completes, up to the next member.
        loop {
            if let Some((begin, depth)) = target {
                if depth == stack.len() {
                    found = Some(begin..p.pos);
                    target = None;
                }
            }
            p.skip_ws();
            let Some(top) = stack.last() else {
                if p.pos < input.len() {
                    return Err(Error::new(ErrorKind::TrailingCharacters, p.pos));
                }
                return Ok(found);
            };
            let object = top.object;
            match p.peek() {
                Some(b',') => {
                    p.pos += 1;
                    next_on_path = object && p.key(&mut stack, path, &mut scratch, sink)?;
                    break;
                }
                Some(b']') if !object => {}
                Some(b'}') if object => {}
                Some(_) => return Err(Error::new(ErrorKind::UnexpectedByte, p.pos)),
                None => return Err(Error::new(ErrorKind::UnexpectedEnd, p.pos)),
            }
            p.pos += 1;
            stack.pop();
            sink.close();
        }
    }
}

/// The input and the offset of the next byte to read.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        // RFC 8259 §2: space, horizontal tab, line feed, carriage return; nothing else.
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Error> {
        for &expected in word {
            match self.peek() {
                Some(b) if b == expected => self.pos += 1,
                Some(_) => return Err(Error::new(ErrorKind::UnexpectedByte, self.pos)),
                None => return Err(Error::new(ErrorKind::UnexpectedEnd, self.pos)),
            }
        }
        Ok(())
    }

    /// Reads a member's key and the colon after it (whitespace first), and says whether its
    /// value is the next one on the path. The key goes to the sink.
    fn key<S: Sink>(
        &mut self,
        stack: &mut [Frame],
        path: &[&str],
        scratch: &mut String,
        sink: &mut S,
    ) -> Result<bool, Error> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return Err(Error::new(ErrorKind::UnexpectedByte, self.pos)),
            None => return Err(Error::new(ErrorKind::UnexpectedEnd, self.pos)),
        }
        let depth = stack.len().saturating_sub(1);
        let frame = stack.last_mut();
        let on_path = frame.as_ref().is_some_and(|f| f.on_path);
        scratch.clear();
        self.string((S::DECODE || on_path).then_some(&mut *scratch))?;
        let matched = on_path && path.get(depth).is_some_and(|k| *k == scratch.as_str());
        if matched {
            if let Some(frame) = frame {
                // Only the first member with the key is followed, as `Value::get` does.
                frame.on_path = false;
            }
        }
        sink.key(scratch);
        self.skip_ws();
        match self.peek() {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(Error::new(ErrorKind::UnexpectedByte, self.pos)),
            None => return Err(Error::new(ErrorKind::UnexpectedEnd, self.pos)),
        }
        Ok(matched)
    }

    /// Reads the string whose opening quote is at `pos`, appending its text to `out` if given.
    fn string(&mut self, mut out: Option<&mut String>) -> Result<(), Error> {
        let input = self.input;
        self.pos += 1;
        loop {
            // The bytes up to a quote, a backslash or a control character go in as they are.
            // No byte of a multi-byte UTF-8 sequence is below 0x80, so a run never splits one.
            let run_start = self.pos;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.pos += 1;
            }
            let run = input.get(run_start..self.pos).unwrap_or_default();
            let text = core::str::from_utf8(run)
                .map_err(|e| Error::new(ErrorKind::InvalidUtf8, run_start + e.valid_up_to()))?;
            if let Some(out) = out.as_deref_mut() {
                out.push_str(text);
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push(c);
                    }
                }
                // RFC 8259 §7: U+0000 to U+001F must be escaped.
                Some(_) => return Err(Error::new(ErrorKind::ControlCharacter, self.pos)),
                None => return Err(Error::new(ErrorKind::UnexpectedEnd, self.pos)),
            }
        }
    }

    /// Reads the escape whose backslash is at `pos`.
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos;
        let c = match self.input.get(at + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => return self.unicode_escape(),
            Some(_) => return Err(Error::new(ErrorKind::InvalidEscape, at)),
            None => return Err(Error::new(ErrorKind::UnexpectedEnd, at + 1)),
        };
        self.pos = at + 2;
        Ok(c)
    }

    /// Reads `\uXXXX` at `pos`, or a surrogate pair of two (RFC 8259 §7).
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let at = self.pos;
        let lone = Error::new(ErrorKind::LoneSurrogate, at);
        let unit = self.hex4(at + 2)?;
        self.pos = at + 6;
        let code = match unit {
            0xD800..=0xDBFF => {
                if self.input.get(at + 6..at + 8) != Some(b"\\u") {
                    return Err(lone);
                }
                let low = self.hex4(at + 8)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(lone);
                }
                self.pos = at + 12;
                0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone),
            _ => unit,
        };
        char::from_u32(code).ok_or(lone)
    }

    fn hex4(&self, start: usize) -> Result<u32, Error> {
        let mut unit = 0;
        for i in start..start + 4 {
            let digit = match self.input.get(i) {
                Some(b) => char::from(*b).to_digit(16),
                None => return Err(Error::new(ErrorKind::UnexpectedEnd, i)),
            };
            let Some(digit) = digit else {
                return Err(Error::new(ErrorKind::InvalidEscape, i));
            };
            unit = unit << 4 | digit;
        }
        Ok(unit)
    }
}
