//! Compact JSON output into a `String`: whole values, single strings, and objects and arrays
//! written member by member without building a [`Value`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::slice;

use super::value::{Number, Value};

/// Appends `value` as compact JSON (no whitespace), numbers as written and members in order.
///
/// The value is walked with an explicit stack, so any depth is fine.
///
/// # Examples
///
/// ```
/// let v = weir::json::parse(b" { \"a\" : [ 1.50 , null ] } ")?;
/// let mut out = String::new();
/// weir::json::write_value(&mut out, &v);
/// assert_eq!(out, r#"{"a":[1.50,null]}"#);
/// # Ok::<(), weir::json::Error>(())
/// ```
pub fn write_value(out: &mut String, value: &Value) {
    enum Frame<'a> {
        Array(slice::Iter<'a, Value>, bool),
        Object(slice::Iter<'a, (String, Value)>, bool),
    }
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut next = value;
    loop {
        match next {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(n.as_str()),
            Value::String(s) => write_str(out, s),
            Value::Array(items) => {
                out.push('[');
                stack.push(Frame::Array(items.iter(), true));
            }
            Value::Object(members) => {
                out.push('{');
                stack.push(Frame::Object(members.iter(), true));
            }
        }
        // Move on to the next element or member, closing the containers that are done.
        loop {
            let child = match stack.last_mut() {
                None => return,
                Some(Frame::Array(rest, first)) => rest.next().inspect(|_| {
                    if !*first {
                        out.push(',');
                    }
                    *first = false;
                }),
                Some(Frame::Object(rest, first)) => rest.next().map(|(k, v)| {
                    if !*first {
                        out.push(',');
                    }
                    *first = false;
                    write_str(out, k);
                    out.push(':');
                    v
                }),
            };
            if let Some(child) = child {
                next = child;
                break;
            }
            match stack.pop() {
                Some(Frame::Array(..)) => out.push(']'),
                Some(Frame::Object(..)) => out.push('}'),
                None => return,
            }
        }
    }
}

/// Appends `s` as a JSON string: quoted, with `"`, `\` and the control characters U+0000 to
/// U+001F escaped (the latter as `\u00XX`). Nothing else is escaped, `/` included.
///
/// # Examples
///
/// ```
/// let mut out = String::new();
/// weir::json::write_str(&mut out, "a\"b\\c/d\n");
/// assert_eq!(out, r#""a\"b\\c/d\u000a""#);
/// ```
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        // RFC 8259 §7: these must be escaped. Each is ASCII, so `i` is a char boundary.
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        out.push_str(s.get(run_start..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        run_start = i + 1;
    }
    out.push_str(s.get(run_start..).unwrap_or_default());
    out.push('"');
}

/// Writes a JSON object member by member, straight into a `String`.
///
/// Each method appends one member and returns the writer, so calls chain. The closing `}` is
/// written by [`ObjectWriter::finish`], or when the writer is dropped, so the output is always
/// balanced. Keys are not checked for duplicates.
///
/// # Examples
///
/// ```
/// use weir::json::ObjectWriter;
///
/// let mut out = String::new();
/// let mut reply = ObjectWriter::new(&mut out);
/// reply.str("id", "7").bool("ok", true);
/// let mut error = reply.object("error");
/// error.i64("code", -32600).null("data");
/// error.finish();
/// let mut ids = reply.array("ids");
/// ids.u64(1).u64(2);
/// ids.finish();
/// reply.finish();
/// assert_eq!(out, r#"{"id":"7","ok":true,"error":{"code":-32600,"data":null},"ids":[1,2]}"#);
/// ```
#[must_use = "write the members through it, then call `finish`"]
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

/// Writes a JSON array element by element, straight into a `String`.
///
/// The counterpart of [`ObjectWriter`]: the closing `]` is written by [`ArrayWriter::finish`]
/// or when the writer is dropped.
#[must_use = "write the elements through it, then call `finish`"]
pub struct ArrayWriter<'a> {
    out: &'a mut String,
    first: bool,
}

/// A JSON object as a new `String`, its members written by `members` (which hands the writer
/// back, so that one chain of calls is the whole object).
///
/// # Examples
///
/// ```
/// let reply = weir::json::object(|w| w.str("type", "ack").u64("id", 7));
/// assert_eq!(reply, r#"{"type":"ack","id":7}"#);
/// let nested = weir::json::object(|w| {
///     w.object("data").bool("ok", true);
///     w
/// });
/// assert_eq!(nested, r#"{"data":{"ok":true}}"#);
/// ```
pub fn object(
    members: impl for<'w, 'o> FnOnce(&'w mut ObjectWriter<'o>) -> &'w mut ObjectWriter<'o>,
) -> String {
    let mut out = String::new();
    members(&mut ObjectWriter::new(&mut out));
    out
}

impl<'a> ObjectWriter<'a> {
    /// Appends `{` to `out` and returns a writer for the members.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    /// A member whose value is the string `value`, escaped.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_str(self.out, value);
        self
    }

    /// A member whose value is the integer `n`.
    pub fn u64(&mut self, key: &str, n: u64) -> &mut Self {
        self.key(key);
        write_int(self.out, n);
        self
    }

    /// A member whose value is the integer `n`.
    pub fn i64(&mut self, key: &str, n: i64) -> &mut Self {
        self.key(key);
        write_int(self.out, n);
        self
    }

    /// A member whose value is `f` in its shortest form, or `null` if it is not finite.
    pub fn f64(&mut self, key: &str, f: f64) -> &mut Self {
        self.key(key);
        write_f64(self.out, f);
        self
    }

    /// A member whose value is `true` or `false`.
    pub fn bool(&mut self, key: &str, b: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    /// A member whose value is `null`.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// A member whose value is the number `n`, as written.
    pub fn number(&mut self, key: &str, n: &Number) -> &mut Self {
        self.key(key);
        self.out.push_str(n.as_str());
        self
    }

    /// A member whose value is `value`, written compactly.
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        self.key(key);
        write_value(self.out, value);
        self
    }

    /// A member whose value is `json`, copied as it is: the caller vouches that it is exactly
    /// one valid JSON value, such as the text [`find_raw`](super::find_raw) returns.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// A member whose value is an object, written through the returned writer (which must be
    /// finished or dropped before this one is used again).
    pub fn object(&mut self, key: &str) -> ObjectWriter<'_> {
        self.key(key);
        ObjectWriter::new(self.out)
    }

    /// A member whose value is an array, written through the returned writer (which must be
    /// finished or dropped before this one is used again).
    pub fn array(&mut self, key: &str) -> ArrayWriter<'_> {
        self.key(key);
        ArrayWriter::new(self.out)
    }

    /// Appends the closing `}`.
    pub fn finish(self) {
        // `Drop` writes it.
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(':');
    }
}

impl Drop for ObjectWriter<'_> {
    fn drop(&mut self) {
        self.out.push('}');
    }
}

impl<'a> ArrayWriter<'a> {
    /// Appends `[` to `out` and returns a writer for the elements.
    pub fn new(out: &'a mut String) -> Self {
        out.push('[');
        Self { out, first: true }
    }

    /// The string `value`, escaped.
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.comma();
        write_str(self.out, value);
        self
    }

    /// The integer `n`.
    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.comma();
        write_int(self.out, n);
        self
    }

    /// The integer `n`.
    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.comma();
        write_int(self.out, n);
        self
    }

    /// `f` in its shortest form, or `null` if it is not finite.
    pub fn f64(&mut self, f: f64) -> &mut Self {
        self.comma();
        write_f64(self.out, f);
        self
    }

    /// `true` or `false`.
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.comma();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.comma();
        self.out.push_str("null");
        self
    }

    /// The number `n`, as written.
    pub fn number(&mut self, n: &Number) -> &mut Self {
        self.comma();
        self.out.push_str(n.as_str());
        self
    }

    /// `value`, written compactly.
    pub fn value(&mut self, value: &Value) -> &mut Self {
        self.comma();
        write_value(self.out, value);
        self
    }

    /// `json`, copied as it is: the caller vouches that it is exactly one valid JSON value.
    pub fn raw(&mut self, json: &str) -> &mut Self {
        self.comma();
        self.out.push_str(json);
        self
    }

    /// An object, written through the returned writer (which must be finished or dropped
    /// before this one is used again).
    pub fn object(&mut self) -> ObjectWriter<'_> {
        self.comma();
        ObjectWriter::new(self.out)
    }

    /// An array, written through the returned writer (which must be finished or dropped
    /// before this one is used again).
    pub fn array(&mut self) -> ArrayWriter<'_> {
        self.comma();
        ArrayWriter::new(self.out)
    }

    /// Appends the closing `]`.
    pub fn finish(self) {
        // `Drop` writes it.
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }
}

impl Drop for ArrayWriter<'_> {
    fn drop(&mut self) {
        self.out.push(']');
    }
}

fn write_int(out: &mut String, n: impl core::fmt::Display) {
    let _ = write!(out, "{n}"); // Writing to a String cannot fail.
}

fn write_f64(out: &mut String, f: f64) {
    match Number::from_f64(f) {
        Some(n) => out.push_str(n.as_str()),
        None => out.push_str("null"),
    }
}
