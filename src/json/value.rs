//! The owned document model: [`Value`] and [`Number`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::mem;
use core::slice;
use core::str::FromStr;

use super::parse::number_end;
use super::write::write_value;
use super::{Error, ErrorKind};

/// A JSON value, owned.
///
/// Objects are a `Vec` of members in document order: duplicate keys are all kept, and lookups
/// ([`Value::get`]) are linear and take the first match, which suits the small objects of the
/// hub's messages.
///
/// No operation on a `Value` recurses on its nesting: [`Drop`], [`Clone`], [`PartialEq`],
/// [`Debug`](fmt::Debug) and [`Display`](fmt::Display) all walk it with an explicit stack, so a
/// value built by hand deeper than any [`Limits::max_depth`](super::Limits::max_depth) is safe
/// to keep, compare and drop. Because `Value` implements `Drop`, its variants cannot be
/// destructured by move: use [`Value::into_string`], [`Value::into_array`],
/// [`Value::into_object`] or [`core::mem::take`] instead.
///
/// `Debug` and `Display` both print the compact JSON text (see [`write_value`]).
#[derive(Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(Number),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: its members in document order, duplicates included.
    Object(Vec<(String, Value)>),
}

/// A JSON number, kept as the text of the document so that big integers and exact decimals
/// survive a round trip.
///
/// The text always matches the grammar of RFC 8259 §6 (`-? int frac? exp?`). Equality compares
/// the text: `1`, `1.0` and `1e0` are three different numbers here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    text: String,
}

impl Value {
    /// The value of the first member named `key`, if this is an object that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub const fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is `true` or `false`.
    pub const fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub const fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an `i64`: see [`Number::as_i64`].
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    /// The number as a `u64`: see [`Number::as_u64`].
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    /// The number as an `f64`: see [`Number::as_f64`].
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members in document order, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The string, moved out, if this is one.
    pub fn into_string(mut self) -> Option<String> {
        match &mut self {
            Value::String(s) => Some(mem::take(s)),
            _ => None,
        }
    }

    /// The elements, moved out, if this is an array.
    pub fn into_array(mut self) -> Option<Vec<Value>> {
        match &mut self {
            Value::Array(items) => Some(mem::take(items)),
            _ => None,
        }
    }

    /// The members, moved out, if this is an object.
    pub fn into_object(mut self) -> Option<Vec<(String, Value)>> {
        match &mut self {
            Value::Object(members) => Some(mem::take(members)),
            _ => None,
        }
    }

    /// A copy of a scalar, or an empty container of the same kind.
    fn clone_shallow(&self) -> Value {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) => Value::Number(n.clone()),
            Value::String(s) => Value::String(s.clone()),
            Value::Array(_) => Value::Array(Vec::new()),
            Value::Object(_) => Value::Object(Vec::new()),
        }
    }

    const fn is_container(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Object(_))
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        // Dropping the children in place would recurse once per level. Move every descendant
        // into a flat list instead; each is dropped with its own children already moved out.
        let mut pending = match self {
            Value::Array(items) if items.iter().any(Value::is_container) => mem::take(items),
            Value::Object(members) if members.iter().any(|(_, v)| v.is_container()) => {
                mem::take(members).into_iter().map(|(_, v)| v).collect()
            }
            _ => return,
        };
        while let Some(mut value) = pending.pop() {
            match &mut value {
                Value::Array(items) => pending.append(items),
                Value::Object(members) => pending.extend(members.drain(..).map(|(_, v)| v)),
                _ => {}
            }
        }
    }
}

/// A container being copied by [`Value::clone`]: what is left of the original and the copy so
/// far.
enum CloneFrame<'a> {
    Array(slice::Iter<'a, Value>, Vec<Value>),
    Object(slice::Iter<'a, (String, Value)>, Vec<(String, Value)>, String),
}

impl Clone for Value {
    fn clone(&self) -> Self {
        let mut stack: Vec<CloneFrame<'_>> = Vec::new();
        let mut next = self;
        loop {
            // Start copying `next`: a scalar is done at once, a container opens a frame.
            let mut done = match next {
                Value::Array(items) => {
                    stack.push(CloneFrame::Array(items.iter(), Vec::with_capacity(items.len())));
                    None
                }
                Value::Object(members) => {
                    let frame = CloneFrame::Object(
                        members.iter(),
                        Vec::with_capacity(members.len()),
                        String::new(),
                    );
                    stack.push(frame);
                    None
                }
                scalar => Some(scalar.clone_shallow()),
            };
            // Hand finished copies to their parents until a parent has another child to copy.
            loop {
                let Some(top) = stack.last_mut() else {
                    return done.unwrap_or_default();
                };
                let child = match top {
                    CloneFrame::Array(rest, copy) => {
                        copy.extend(done.take());
                        rest.next()
                    }
                    CloneFrame::Object(rest, copy, key) => {
                        if let Some(value) = done.take() {
                            copy.push((mem::take(key), value));
                        }
                        rest.next().map(|(k, v)| {
                            key.clone_from(k);
                            v
                        })
                    }
                };
                if let Some(child) = child {
                    next = child;
                    break;
                }
                done = match stack.pop() {
                    Some(CloneFrame::Array(_, copy)) => Some(Value::Array(copy)),
                    Some(CloneFrame::Object(_, copy, _)) => Some(Value::Object(copy)),
                    None => None,
                };
            }
        }
    }
}

impl PartialEq for Value {
    /// Structural equality: objects are equal when they have the same members in the same
    /// order, numbers when their text is the same.
    fn eq(&self, other: &Self) -> bool {
        let mut pending: Vec<(&Value, &Value)> = Vec::new();
        let (mut a, mut b) = (self, other);
        loop {
            let same = match (a, b) {
                (Value::Null, Value::Null) => true,
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Number(x), Value::Number(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                (Value::Array(x), Value::Array(y)) => {
                    pending.extend(x.iter().zip(y));
                    x.len() == y.len()
                }
                (Value::Object(x), Value::Object(y)) => {
                    pending.extend(x.iter().zip(y).map(|((_, v), (_, w))| (v, w)));
                    x.len() == y.len() && x.iter().zip(y).all(|((k, _), (l, _))| k == l)
                }
                _ => false,
            };
            if !same {
                return false;
            }
            match pending.pop() {
                Some((x, y)) => (a, b) = (x, y),
                None => return true,
            }
        }
    }
}

impl Eq for Value {}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_value(&mut out, self);
        f.write_str(&out)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.into())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::Array(items)
    }
}

impl From<Vec<(String, Value)>> for Value {
    fn from(members: Vec<(String, Value)>) -> Self {
        Value::Object(members)
    }
}

impl Number {
    /// Wraps text the parser has already checked against the grammar of §6.
    pub(super) const fn from_checked(text: String) -> Self {
        Self { text }
    }

    /// The number as written (`-0`, `1.50`, `1E+2` stay as they are).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the number is written without a fraction or an exponent.
    pub fn is_integer(&self) -> bool {
        !self.text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
    }

    /// The value as an `i64`, if the number [is written as an integer](Self::is_integer) in
    /// range. `1.0` and `1e2` are not integers here, even though their values are whole.
    pub fn as_i64(&self) -> Option<i64> {
        if !self.is_integer() {
            return None;
        }
        self.text.parse().ok()
    }

    /// The value as a `u64`, if the number [is written as an integer](Self::is_integer) in
    /// range (`-0` is 0).
    pub fn as_u64(&self) -> Option<u64> {
        if !self.is_integer() {
            return None;
        }
        if self.text == "-0" {
            return Some(0);
        }
        self.text.parse().ok()
    }

    /// The nearest `f64`, or `None` if the number is too large for one (`1e400`). Numbers too
    /// small for one round to zero (`1e-400` is `0.0`).
    pub fn as_f64(&self) -> Option<f64> {
        // Rust's float grammar is a superset of JSON's, and it rounds correctly.
        let f: f64 = self.text.parse().ok()?;
        f.is_finite().then_some(f)
    }

    /// The shortest text that reads back as `f`, or `None` for NaN and the infinities, which
    /// JSON cannot represent.
    pub fn from_f64(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        // `Debug` prints the shortest round-trip form with an exponent for very large or small
        // magnitudes (`1e300`, not 301 digits). Check it against the grammar all the same.
        let mut text = String::new();
        let _ = write!(text, "{f:?}"); // Writing to a String cannot fail.
        text.parse().ok()
    }
}

impl FromStr for Number {
    type Err = Error;

    /// Reads a number that matches the grammar of §6 exactly, with no whitespace around it.
    fn from_str(s: &str) -> Result<Self, Error> {
        let end = number_end(s.as_bytes(), 0)?;
        if end != s.len() {
            return Err(Error::new(ErrorKind::TrailingCharacters, end));
        }
        Ok(Self { text: s.into() })
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

macro_rules! number_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(n: $t) -> Self {
                let mut text = String::new();
                let _ = write!(text, "{n}"); // Writing to a String cannot fail.
                Self { text }
            }
        }
    )*};
}

number_from_int!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);
