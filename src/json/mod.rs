//! A strict RFC 8259 JSON parser and a compact writer, for the messages of the pub/sub hub.
//!
//! - `parse` turns bytes into an owned `Value`; `find_raw` validates a document and returns
//!   the exact bytes of one member (such as `params.data`) so that it can be forwarded without
//!   being decoded and encoded again.
//! - `write_value`, `write_str`, `ObjectWriter` and `ArrayWriter` write compact JSON into
//!   a `String`.
//!
//! Nothing recurses on the nesting of a document: parsing, writing, comparing and dropping a
//! [`Value`] all use an explicit stack, and [`Limits`] bounds both the input length and the
//! depth. The module uses `core` and `alloc` only.
//!
//! # Strictness
//!
//! Everything RFC 8259 forbids is an [`Error`]: trailing commas, leading zeros, `+1`, `.5`,
//! `1.`, `NaN`, `Infinity`, invalid escapes, lone surrogates in `\u` escapes, unescaped control
//! characters in strings, invalid UTF-8, a byte order mark (§8.1 allows ignoring one; we refuse
//! it) and anything but whitespace after the value. Any value may be the top-level one (§2).
//!
//! Duplicate object keys are allowed (§4 says names SHOULD be unique). Every member is kept, in
//! order, and lookups ([`Value::get`], the path of [`find_raw`]) take the **first** one.
//!
//! # Example
//!
//! ```
//! use weir::json::{self, ObjectWriter};
//!
//! let frame = br#"{"id": "7", "method": "publish", "params": {"channel": "builds", "data": {"ok": true}}}"#;
//! let msg = json::parse(frame)?;
//! assert_eq!(msg.get("method").and_then(|m| m.as_str()), Some("publish"));
//! let data = json::find_raw(frame, &["params", "data"])?.unwrap_or("null");
//! assert_eq!(data, r#"{"ok": true}"#);
//!
//! let mut out = String::new();
//! let mut w = ObjectWriter::new(&mut out);
//! w.str("channel", "builds").raw("data", data);
//! w.finish();
//! assert_eq!(out, r#"{"channel":"builds","data":{"ok": true}}"#);
//! # Ok::<(), json::Error>(())
//! ```

#![forbid(unsafe_code)]

mod parse;
mod value;
mod write;

pub use parse::{Limits, find_raw, find_raw_with, parse, parse_and_find_raw, parse_with};
pub use value::{Number, Value};
pub use write::{ArrayWriter, ObjectWriter, object, write_str, write_value};

use alloc::string::{String, ToString};
use core::fmt;

/// Why a document was refused, and the byte offset in the input where that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    offset: usize,
}

/// The rule of RFC 8259 (or of [`Limits`]) that a document broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue the value here (§2, §4, §5).
    UnexpectedByte,
    /// A number outside the grammar of §6: a leading zero, no digit after `-`, `.` or the
    /// exponent.
    InvalidNumber,
    /// A backslash followed by anything but `"\/bfnrt` or `u` and four hex digits (§7).
    InvalidEscape,
    /// A `\u` escape of a high surrogate not followed by an escaped low surrogate, or of a low
    /// surrogate on its own (§7, §8.2).
    LoneSurrogate,
    /// A byte below 0x20 inside a string: it must be escaped (§7).
    ControlCharacter,
    /// The bytes of a string are not UTF-8 (§8.1).
    InvalidUtf8,
    /// More nested arrays and objects than [`Limits::max_depth`].
    TooDeep,
    /// The input is longer than [`Limits::max_len`]; nothing was parsed.
    TooLong,
    /// Something other than whitespace follows the value (§2).
    TrailingCharacters,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// The rule that was broken.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The offset in the input of the byte where the error was found (the input length if it
    /// ended too early; [`Limits::max_len`] for [`ErrorKind::TooLong`]).
    pub const fn offset(&self) -> usize {
        self.offset
    }
}

impl ErrorKind {
    /// A short description, fit for a log line or an error reply.
    pub const fn description(self) -> &'static str {
        match self {
            Self::UnexpectedEnd => "unexpected end of input",
            Self::UnexpectedByte => "unexpected byte",
            Self::InvalidNumber => "invalid number",
            Self::InvalidEscape => "invalid escape",
            Self::LoneSurrogate => "lone surrogate in \\u escape",
            Self::ControlCharacter => "unescaped control character in string",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::TooDeep => "nested too deeply",
            Self::TooLong => "document too long",
            Self::TrailingCharacters => "trailing characters after the value",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.kind.description())
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests;

/// The `id` of a JSON-RPC-style command (the hub's and the agents'), as the JSON text to
/// echo in its answer.
/// `None` when it has none.
///
/// # Errors
/// An `id` that is neither a string nor an integer.
pub fn command_id(command: &Value) -> Result<Option<String>, &'static str> {
    id_field(command, "id")
}

/// A command's field `key` read as an id (a string or an integer), as the JSON text to echo;
/// `None` when it has none. [`command_id`] reads `id`; other protocols name theirs otherwise
/// (`request_id`).
///
/// # Errors
/// A value that is neither a string nor an integer.
pub fn id_field(command: &Value, key: &str) -> Result<Option<String>, &'static str> {
    match command.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let mut out = String::new();
            write_str(&mut out, s);
            Ok(Some(out))
        }
        Some(Value::Number(n)) if n.is_integer() => Ok(Some(n.as_str().to_string())),
        Some(_) => Err("id must be a string or an integer"),
    }
}

/// `{"error": {"code": CODE, "message": MESSAGE}}`: the body of the HTTP API's errors.
pub fn error_object(code: &str, message: &str) -> String {
    let mut out = String::with_capacity(code.len() + message.len() + 36);
    let mut w = ObjectWriter::new(&mut out);
    let mut e = w.object("error");
    e.str("code", code).str("message", message);
    e.finish();
    w.finish();
    out
}
