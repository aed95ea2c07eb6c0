//! RESP, the Redis serialization protocol (RESP2, and the RESP3 types Redis 7 sends after
//! `HELLO 3`), sans-IO: commands are encoded into a caller's buffer, replies are parsed in place
//! from the caller's buffer, however its bytes were split by the reads.
//!
//! # Grammar
//!
//! From the protocol specification (<https://redis.io/docs/latest/develop/reference/protocol-spec/>)
//! and RESP3's (`redis-specifications`, `protocol/RESP3.md`). Every reply starts with a type byte;
//! every line ends in CR LF. Line types (the line is the value):
//!
//! | byte | type | line |
//! |---|---|---|
//! | `+` | simple string | any bytes but CR and LF |
//! | `-` | simple error | the same |
//! | `:` | integer | `[+\|-]digits`, a signed 64-bit number |
//! | `_` | null (RESP3) | empty |
//! | `#` | boolean (RESP3) | `t` or `f` |
//! | `,` | double (RESP3) | `[+\|-]digits[.digits][(e\|E)[+\|-]digits]`, `inf`, `-inf` or `nan` |
//! | `(` | big number (RESP3) | `[+\|-]digits`, any length |
//!
//! Length types (the line is a decimal length, then that many bytes or elements):
//!
//! | byte | type | after the line |
//! |---|---|---|
//! | `$` | bulk string | `len` bytes and CR LF; `$-1` is the RESP2 null |
//! | `!` | bulk error (RESP3) | `len` bytes and CR LF |
//! | `=` | verbatim string (RESP3) | `len` bytes (a 3-byte format, `:`, the text) and CR LF |
//! | `*` | array | `len` replies; `*-1` is the RESP2 null |
//! | `~` | set (RESP3) | `len` replies |
//! | `>` | push (RESP3) | `len` replies (out of band: pub/sub messages, invalidations) |
//! | `%` | map (RESP3) | `len` pairs: `2 * len` replies |
//! | `\|` | attribute (RESP3) | `len` pairs, then the reply they annotate |
//!
//! Both RESP2 nulls and `_` are [`Reply::Null`], as RESP3 maps them. Lengths are digits only: a
//! sign, a space or nothing is [`RespError::BadLength`], and a negative length other than the two
//! RESP2 nulls is [`RespError::NegativeLength`]. RESP3's streamed strings and aggregates (`$?`,
//! `*?`), which Redis does not send, are refused as `BadLength`. A line ended by a bare LF, or with
//! a CR not followed by LF, is [`RespError::LineEnd`]; a bulk payload not followed by CR LF is
//! [`RespError::BulkEnd`]; any other type byte is [`RespError::UnknownType`].
//!
//! # Parsing
//!
//! [`Parser::parse`] takes the caller's buffer, which starts at the first byte of a reply, and
//! answers [`Status::Partial`] until the whole reply is there, then the reply and its length;
//! nothing is consumed before a reply is whole. The caller keeps the buffer between calls and
//! only appends to it (the runtime's read buffer does just that); after a complete reply it
//! drops the consumed bytes (or passes what follows them) and calls again, since one read may
//! hold many pipelined replies. The parser remembers how far it has checked (the position of the
//! next element, how far the current line was searched, what the open aggregates still await,
//! where the current bulk string ends), so while a reply arrives each byte is checked once
//! however the bytes are split: a 16 MiB bulk string read 4 KiB at a time costs one length line
//! and one CR LF check, not 4,096 re-scans. (The lines are read once more when the reply is
//! decoded; a bulk payload never is.)
//!
//! A reply borrows from the buffer ([`Reply<'a>`]): a bulk string is a slice of it, never a copy,
//! and an aggregate is the validated bytes of its elements, decoded as they are iterated
//! ([`Aggregate::iter`]). Parsing allocates nothing, so the only memory a reply costs is the
//! caller's buffer, which the limits bound. The hub gets a pub/sub message (`>3` or `*3`,
//! `message`, the channel, the payload) as three slices into its read buffer, and copies the
//! payload once, into the shared WebSocket frame it sends to every subscriber. Iterating an
//! aggregate walks each element once to find the next; walking every level of a reply costs its
//! size times its depth (at most [`MAX_DEPTH`]).
//!
//! # Limits
//!
//! [`Limits`] are checked as soon as the bytes that break them arrive, before the caller is
//! asked to buffer more: a bulk length over `max_bulk`, or one whose payload would end past
//! `max_reply`, is refused at its length line; an aggregate over `max_elements` or deeper than
//! `max_depth` at its header; a simple string, error or big number over `max_bulk` bytes, or any
//! other line over [`MAX_NUMBER_LINE`], as soon as that many bytes came without a CR. A caller that
//! keeps at most `max_reply` bytes of an unfinished reply is never asked for more.
//!
//! # Encoding
//!
//! A command is an array of bulk strings (`*N\r\n$len\r\narg\r\n...`), the only form Redis takes
//! from clients besides inline commands. [`write_command`] appends one to a `Vec<u8>`, so many
//! can be pipelined into one buffer and sent with one write; [`encode_command`] writes into a
//! slice and reports the size it needed. [`write_array_header`] and [`write_bulk`] build a command
//! argument by argument (a variable number of keys, numbers with [`write_bulk_int`]).
//!
//! # What the client on top needs to do (not here)
//!
//! Match replies to commands in order (Redis answers in order; a push, [`Reply::Push`], is not an
//! answer, and in RESP2 a subscribed connection gets messages as arrays); treat a
//! [`Reply::Error`] or [`Reply::BulkError`] as the answer to one command, not a broken connection;
//! close the connection on any [`RespError`] (the stream cannot be resynchronised); bound its own
//! read buffer at `max_reply` plus one read; and send `HELLO 3` (and `AUTH`, `SELECT`) first.

use alloc::vec::Vec;
use core::fmt;

use crate::proto::error::Status;

/// The deepest nesting a parser supports: [`Limits::max_depth`] is capped here, so the state
/// of open aggregates is a fixed array.
pub const MAX_DEPTH: usize = 64;

/// The longest line of a number, a length, a boolean or a null, without its type byte and CR LF.
/// An `i64` takes 20 bytes and a double as Redis writes it (`%.17g`) 24.
pub const MAX_NUMBER_LINE: usize = 64;

/// Bounds on what a reply may make the caller buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes in one string: a bulk string, bulk error or verbatim string's payload, or a
    /// simple string, error or big number's line (default 16 MiB; Redis allows 512 MB).
    pub max_bulk: usize,
    /// Most elements in one aggregate; a map or attribute of N pairs has 2N (default 1 Mi).
    pub max_elements: usize,
    /// Most aggregates nested in one another; a top-level array is depth 1 (default 32, at most
    /// [`MAX_DEPTH`]).
    pub max_depth: usize,
    /// Most bytes in one reply, from its type byte through its last CR LF (default 64 MiB).
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bulk: 16 << 20, max_elements: 1 << 20, max_depth: 32, max_reply: 64 << 20 }
    }
}

/// Why a reply was refused. The connection cannot be read further: close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RespError {
    /// A type byte that no RESP2 or RESP3 type uses.
    UnknownType,
    /// A line ended by a bare LF, or with a CR not followed by LF (every line ends in CR LF).
    LineEnd,
    /// A bulk string, bulk error or verbatim string whose payload is not followed by CR LF.
    BulkEnd,
    /// A length that is not decimal digits (empty, signed, with spaces, or streamed `?`).
    BadLength,
    /// A negative length other than `$-1` and `*-1`, the RESP2 nulls.
    NegativeLength,
    /// An integer that is not `[+|-]digits`.
    BadInteger,
    /// An integer outside the signed 64-bit range.
    IntegerRange,
    /// A double that is neither a decimal number nor `inf`, `-inf` or `nan`.
    BadDouble,
    /// A boolean other than `t` and `f`.
    BadBoolean,
    /// A null (`_`) with something on its line.
    BadNull,
    /// A big number that is not `[+|-]digits`.
    BadBigNumber,
    /// A verbatim string shorter than 4 bytes or without `:` after its 3-byte format.
    BadVerbatim,
    /// A number, length, boolean or null line over [`MAX_NUMBER_LINE`] bytes.
    LineTooLong,
    /// A string over [`Limits::max_bulk`].
    StringTooLarge,
    /// An aggregate over [`Limits::max_elements`].
    TooManyElements,
    /// Aggregates nested deeper than [`Limits::max_depth`].
    TooDeep,
    /// A reply over [`Limits::max_reply`].
    ReplyTooLarge,
}

impl RespError {
    /// Every variant, for tables of counters.
    pub const ALL: [RespError; 17] = [
        Self::UnknownType,
        Self::LineEnd,
        Self::BulkEnd,
        Self::BadLength,
        Self::NegativeLength,
        Self::BadInteger,
        Self::IntegerRange,
        Self::BadDouble,
        Self::BadBoolean,
        Self::BadNull,
        Self::BadBigNumber,
        Self::BadVerbatim,
        Self::LineTooLong,
        Self::StringTooLarge,
        Self::TooManyElements,
        Self::TooDeep,
        Self::ReplyTooLarge,
    ];

    /// A stable snake_case name, for counters and structured logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UnknownType => "unknown_type",
            Self::LineEnd => "line_end",
            Self::BulkEnd => "bulk_end",
            Self::BadLength => "bad_length",
            Self::NegativeLength => "negative_length",
            Self::BadInteger => "bad_integer",
            Self::IntegerRange => "integer_range",
            Self::BadDouble => "bad_double",
            Self::BadBoolean => "bad_boolean",
            Self::BadNull => "bad_null",
            Self::BadBigNumber => "bad_big_number",
            Self::BadVerbatim => "bad_verbatim",
            Self::LineTooLong => "line_too_long",
            Self::StringTooLarge => "string_too_large",
            Self::TooManyElements => "too_many_elements",
            Self::TooDeep => "too_deep",
            Self::ReplyTooLarge => "reply_too_large",
        }
    }
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownType => "unknown RESP type byte",
            Self::LineEnd => "line not ended by CR LF",
            Self::BulkEnd => "bulk payload not followed by CR LF",
            Self::BadLength => "length is not decimal digits",
            Self::NegativeLength => "negative length",
            Self::BadInteger => "integer is not [+|-]digits",
            Self::IntegerRange => "integer outside 64 bits",
            Self::BadDouble => "invalid double",
            Self::BadBoolean => "boolean is not t or f",
            Self::BadNull => "null with a value",
            Self::BadBigNumber => "big number is not [+|-]digits",
            Self::BadVerbatim => "verbatim string without a format",
            Self::LineTooLong => "number line too long",
            Self::StringTooLarge => "string over the size limit",
            Self::TooManyElements => "aggregate over the element limit",
            Self::TooDeep => "aggregates nested too deep",
            Self::ReplyTooLarge => "reply over the size limit",
        })
    }
}

/// One reply, borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply<'a> {
    /// `+`: a status such as `OK`.
    Simple(&'a [u8]),
    /// `-`: an error, its first word the error code (`ERR`, `WRONGTYPE`, `NOSCRIPT`).
    Error(&'a [u8]),
    /// `:`
    Integer(i64),
    /// `$`
    Bulk(&'a [u8]),
    /// `$-1`, `*-1` or `_`.
    Null,
    /// `#`
    Boolean(bool),
    /// `,`
    Double(f64),
    /// `(`: the digits, with their sign if one was sent.
    BigNumber(&'a [u8]),
    /// `!`: an error, like [`Reply::Error`], that may hold any byte.
    BulkError(&'a [u8]),
    /// `=`: text with its 3-byte format (`txt`, `mkd`).
    Verbatim {
        /// The format, before the `:`.
        format: &'a [u8],
        /// The text, after it.
        text: &'a [u8],
    },
    /// `*`
    Array(Aggregate<'a>),
    /// `%`: keys and values alternate.
    Map(Aggregate<'a>),
    /// `~`
    Set(Aggregate<'a>),
    /// `>`: out-of-band data, not the answer to a command.
    Push(Aggregate<'a>),
    /// `|`: keys and values alternate, and the last element is the reply they annotate.
    Attribute(Aggregate<'a>),
}

/// The reply as text, one notation per type so that none is taken for another: `+"OK"`,
/// `-"ERR x"`, `42`, `"bulk"`, `null`, `true`, `,2.5` (`,inf`, `,NaN`), `(123`, `!"bulk error"`,
/// `=txt:"text"`, `[array]`, `{key: value}`, `~[set]`, `>[push]`, `|{key: value} reply`. Bytes
/// are escaped as in Rust's `escape_ascii`. The whole reply is written: cut it before logging.
impl fmt::Display for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Simple(s) => write!(f, "+\"{}\"", s.escape_ascii()),
            Self::Error(s) => write!(f, "-\"{}\"", s.escape_ascii()),
            Self::Integer(n) => write!(f, "{n}"),
            Self::Bulk(s) => write!(f, "\"{}\"", s.escape_ascii()),
            Self::Null => f.write_str("null"),
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Double(d) => write!(f, ",{d:?}"),
            Self::BigNumber(s) => write!(f, "({}", s.escape_ascii()),
            Self::BulkError(s) => write!(f, "!\"{}\"", s.escape_ascii()),
            Self::Verbatim { format, text } => {
                write!(f, "={}:\"{}\"", format.escape_ascii(), text.escape_ascii())
            }
            Self::Array(a) => write_list(f, "[", &mut a.iter()),
            Self::Set(a) => write_list(f, "~[", &mut a.iter()),
            Self::Push(a) => write_list(f, ">[", &mut a.iter()),
            Self::Map(a) => write_pairs(f, &mut a.iter(), a.len() / 2),
            Self::Attribute(a) => {
                let mut items = a.iter();
                f.write_str("|")?;
                write_pairs(f, &mut items, a.len() / 2)?;
                items.try_for_each(|reply| write!(f, " {reply}"))
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, open: &str, items: &mut Elements<'_>) -> fmt::Result {
    f.write_str(open)?;
    for (i, reply) in items.enumerate() {
        write!(f, "{}{reply}", if i == 0 { "" } else { ", " })?;
    }
    f.write_str("]")
}

fn write_pairs(f: &mut fmt::Formatter<'_>, items: &mut Elements<'_>, pairs: usize) -> fmt::Result {
    f.write_str("{")?;
    for i in 0..pairs {
        let (Some(key), Some(value)) = (items.next(), items.next()) else { break };
        write!(f, "{}{key}: {value}", if i == 0 { "" } else { ", " })?;
    }
    f.write_str("}")
}

/// The elements of an array, map, set, push or attribute: their validated bytes, decoded as
/// they are iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate<'a> {
    len: usize,
    bytes: &'a [u8],
}

impl<'a> Aggregate<'a> {
    /// How many elements [`iter`](Self::iter) yields (a map's keys and values both count).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements' bytes as they came, from the first element's type byte to the last one's
    /// final CR LF.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The elements, in order.
    pub fn iter(&self) -> Elements<'a> {
        Elements { left: self.len, rest: self.bytes }
    }
}

impl<'a> IntoIterator for Aggregate<'a> {
    type Item = Reply<'a>;
    type IntoIter = Elements<'a>;

    fn into_iter(self) -> Elements<'a> {
        self.iter()
    }
}

/// An iterator over an [`Aggregate`]'s elements.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    left: usize,
    rest: &'a [u8],
}

impl<'a> Iterator for Elements<'a> {
    type Item = Reply<'a>;

    fn next(&mut self) -> Option<Reply<'a>> {
        if self.left == 0 {
            return None;
        }
        // The bytes were validated by the parser, so this decodes; a failure would end the
        // iteration early rather than panic.
        let (reply, used) = decode(self.rest)?;
        self.rest = self.rest.get(used..)?;
        self.left -= 1;
        Some(reply)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Finds whole replies in a buffer that grows read by read.
///
/// Call [`parse`](Self::parse) with the buffer from the first byte of the reply each time bytes
/// are appended. See the [module docs](self) for the calling contract.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    /// Where the next element starts, or where the pending bulk payload starts.
    pos: usize,
    /// How far the line at `pos` has been searched for its CR.
    searched: usize,
    /// A bulk payload whose length line was read: where it ends (past its CR LF), and its type.
    bulk: Option<(usize, u8)>,
    /// Elements still awaited by each open aggregate, outermost first.
    open: [usize; MAX_DEPTH],
    depth: usize,
    /// Where the top-level reply's first line has its CR.
    first_cr: usize,
    /// The buffer length at the last call, to notice a caller that did not keep its bytes.
    seen: usize,
}

impl Parser {
    /// A parser at the start of a reply.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits { max_depth: limits.max_depth.min(MAX_DEPTH), ..limits };
        Self {
            limits,
            pos: 0,
            searched: 0,
            bulk: None,
            open: [0; MAX_DEPTH],
            depth: 0,
            first_cr: 0,
            seen: 0,
        }
    }

    /// The limits in force (`max_depth` capped at [`MAX_DEPTH`]).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Looks for a whole reply at the start of `buf`.
    ///
    /// Returns `Partial` while the reply is unfinished (call again with the same bytes and more
    /// after them), or the reply and the number of bytes it takes; then the parser starts afresh,
    /// at the start of whatever `buf` is next. A `buf` shorter than the last one starts afresh
    /// too (the caller did not keep the bytes).
    ///
    /// # Errors
    /// The reply breaks the grammar or a limit ([`RespError`]). The parser starts afresh, but the
    /// stream has no way to find the next reply: close the connection.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Result<Status<(Reply<'a>, usize)>, RespError> {
        if buf.len() < self.seen {
            self.reset();
        }
        self.seen = buf.len();
        let result = self.scan(buf);
        match result {
            Ok(None) => Ok(Status::Partial),
            Ok(Some(end)) => {
                let first_cr = self.first_cr;
                self.reset();
                let reply = top(buf, first_cr, end)?;
                Ok(Status::Complete((reply, end)))
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.limits);
    }

    /// Checks the bytes not checked yet. Returns where the reply ends once it is whole.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, RespError> {
        loop {
            if let Some((end, kind)) = self.bulk {
                // The payload is not examined; only the CR LF after it, as each byte arrives.
                for (at, want) in [(end - 2, b'\r'), (end - 1, b'\n')] {
                    match buf.get(at) {
                        None => return Ok(None),
                        Some(&b) if b != want => return Err(RespError::BulkEnd),
                        Some(_) => {}
                    }
                }
                // RESP3: a verbatim string is `fmt:text`.
                if kind == b'=' && buf.get(self.pos + 3) != Some(&b':') {
                    return Err(RespError::BadVerbatim);
                }
                self.bulk = None;
                self.pos = end;
                if self.element_done() {
                    return Ok(Some(self.pos));
                }
                continue;
            }
            let start = self.pos;
            // An element takes at least 3 bytes (`_\r\n`): one that cannot fit is refused
            // before its bytes are awaited.
            if self.depth > 0 && start.saturating_add(3) > self.limits.max_reply {
                return Err(RespError::ReplyTooLarge);
            }
            let Some(&kind) = buf.get(start) else { return Ok(None) };
            if !is_type(kind) {
                return Err(RespError::UnknownType);
            }
            let Some(cr) = self.find_cr(buf, start, kind)? else { return Ok(None) };
            self.searched = 0;
            if start == 0 {
                self.first_cr = cr;
            }
            let line_end = cr + 2;
            self.pos = line_end;
            match head(kind, &buf[start + 1..cr])? {
                Head::Value(_) => {
                    if self.element_done() {
                        return Ok(Some(self.pos));
                    }
                }
                Head::Bulk(len) => {
                    if len > self.limits.max_bulk as u64 {
                        return Err(RespError::StringTooLarge);
                    }
                    let end = line_end.saturating_add(len as usize).saturating_add(2);
                    if end > self.limits.max_reply {
                        return Err(RespError::ReplyTooLarge);
                    }
                    if kind == b'=' && len < 4 {
                        return Err(RespError::BadVerbatim);
                    }
                    self.bulk = Some((end, kind));
                }
                Head::Aggregate(count) => {
                    let pairs = matches!(kind, b'%' | b'|');
                    let elements = if pairs { count.saturating_mul(2) } else { count };
                    if elements > self.limits.max_elements as u64 {
                        return Err(RespError::TooManyElements);
                    }
                    if self.depth >= self.limits.max_depth {
                        return Err(RespError::TooDeep);
                    }
                    // An attribute is followed by the reply it annotates.
                    let awaited = (elements as usize).saturating_add(usize::from(kind == b'|'));
                    if awaited == 0 {
                        if self.element_done() {
                            return Ok(Some(self.pos));
                        }
                    } else {
                        self.open[self.depth] = awaited;
                        self.depth += 1;
                    }
                }
            }
        }
    }

    /// Finds the CR ending the line at `start`, searching only what was not searched before.
    fn find_cr(&mut self, buf: &[u8], start: usize, kind: u8) -> Result<Option<usize>, RespError> {
        let string = matches!(kind, b'+' | b'-' | b'(');
        let cap = if string { self.limits.max_bulk } else { MAX_NUMBER_LINE };
        let by_line = start.saturating_add(1).saturating_add(cap);
        // The line's CR LF must end within the reply's limit.
        let by_reply = self.limits.max_reply.saturating_sub(2);
        // The last index the CR may be at.
        let last = by_line.min(by_reply);
        let from = self.searched.max(start + 1);
        let stop = buf.len().min(last.saturating_add(1));
        for i in from..stop {
            match buf[i] {
                b'\n' => return Err(RespError::LineEnd),
                b'\r' => {
                    return match buf.get(i + 1) {
                        None => {
                            self.searched = i;
                            Ok(None)
                        }
                        Some(b'\n') => Ok(Some(i)),
                        Some(_) => Err(RespError::LineEnd),
                    };
                }
                _ => {}
            }
        }
        if buf.len() > last {
            return Err(if by_reply < by_line {
                RespError::ReplyTooLarge
            } else if string {
                RespError::StringTooLarge
            } else {
                RespError::LineTooLong
            });
        }
        self.searched = stop.max(from);
        Ok(None)
    }

    /// An element ended at `pos`: counts it in the aggregates it closes. True when it was the
    /// whole reply.
    fn element_done(&mut self) -> bool {
        while self.depth > 0 {
            let left = &mut self.open[self.depth - 1];
            *left -= 1;
            if *left > 0 {
                return false;
            }
            self.depth -= 1;
        }
        true
    }
}

fn is_type(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    )
}

/// What a header line says.
enum Head<'a> {
    /// The whole element (a line type, or a null).
    Value(Reply<'a>),
    /// A string of this many bytes follows.
    Bulk(u64),
    /// This many elements (pairs for a map or attribute) follow.
    Aggregate(u64),
}

/// Parses the line of a `kind` element, without its type byte and CR LF.
fn head(kind: u8, line: &[u8]) -> Result<Head<'_>, RespError> {
    Ok(match kind {
        b'+' => Head::Value(Reply::Simple(line)),
        b'-' => Head::Value(Reply::Error(line)),
        b':' => Head::Value(Reply::Integer(integer(line)?)),
        b'_' if line.is_empty() => Head::Value(Reply::Null),
        b'_' => return Err(RespError::BadNull),
        b'#' => match line {
            b"t" => Head::Value(Reply::Boolean(true)),
            b"f" => Head::Value(Reply::Boolean(false)),
            _ => return Err(RespError::BadBoolean),
        },
        b',' => Head::Value(Reply::Double(double(line).ok_or(RespError::BadDouble)?)),
        b'(' if signed_digits(line) => Head::Value(Reply::BigNumber(line)),
        b'(' => return Err(RespError::BadBigNumber),
        // RESP2: `$-1` and `*-1` are the nulls; RESP3 defines no null length for its types.
        b'$' | b'*' if line == b"-1" => Head::Value(Reply::Null),
        b'$' | b'!' | b'=' => Head::Bulk(length(line)?),
        _ => Head::Aggregate(length(line)?),
    })
}

/// A length: digits only. Past `u64` it saturates, which every limit refuses.
fn length(line: &[u8]) -> Result<u64, RespError> {
    if let Some(digits) = line.strip_prefix(b"-") {
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            return Err(RespError::NegativeLength);
        }
        return Err(RespError::BadLength);
    }
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadLength);
    }
    Ok(line.iter().fold(0u64, |n, &d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

fn signed_digits(line: &[u8]) -> bool {
    let digits = line.strip_prefix(b"-").or_else(|| line.strip_prefix(b"+")).unwrap_or(line);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn integer(line: &[u8]) -> Result<i64, RespError> {
    if !signed_digits(line) {
        return Err(RespError::BadInteger);
    }
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, line),
    };
    // Accumulated towards the sign, so i64::MIN fits.
    digits
        .iter()
        .try_fold(0i64, |n, &d| {
            let d = i64::from(d - b'0');
            n.checked_mul(10)
                .and_then(|n| if negative { n.checked_sub(d) } else { n.checked_add(d) })
        })
        .ok_or(RespError::IntegerRange)
}

/// RESP3: `,[+|-]integral[.fractional][(e|E)[+|-]exponent]`, or `inf`, `-inf`, `nan`.
fn double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" => return Some(f64::INFINITY),
        b"-inf" => return Some(f64::NEG_INFINITY),
        b"nan" => return Some(f64::NAN),
        _ => {}
    }
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut at = usize::from(matches!(line.first(), Some(b'+' | b'-')));
    let integral = digits(&line[at..]);
    if integral == 0 {
        return None;
    }
    at += integral;
    if line.get(at) == Some(&b'.') {
        let fraction = digits(&line[at + 1..]);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    }
    if matches!(line.get(at), Some(b'e' | b'E')) {
        at += 1;
        at += usize::from(matches!(line.get(at), Some(b'+' | b'-')));
        let exponent = digits(line.get(at..)?);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != line.len() {
        return None;
    }
    core::str::from_utf8(line).ok()?.parse().ok()
}

/// The reply of a string type from its payload.
fn string(kind: u8, payload: &[u8]) -> Reply<'_> {
    match kind {
        b'!' => Reply::BulkError(payload),
        b'=' => Reply::Verbatim {
            format: payload.get(..3).unwrap_or_default(),
            text: payload.get(4..).unwrap_or_default(),
        },
        _ => Reply::Bulk(payload),
    }
}

fn aggregate(kind: u8, len: usize, bytes: &[u8]) -> Reply<'_> {
    let a = Aggregate { len, bytes };
    match kind {
        b'%' => Reply::Map(a),
        b'~' => Reply::Set(a),
        b'>' => Reply::Push(a),
        b'|' => Reply::Attribute(a),
        _ => Reply::Array(a),
    }
}

/// The number of elements an aggregate header announces, as the parser counted them.
fn element_count(kind: u8, count: u64) -> usize {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    match kind {
        b'%' => count.saturating_mul(2),
        b'|' => count.saturating_mul(2).saturating_add(1),
        _ => count,
    }
}

/// The top-level reply of a validated `buf[..end]`, whose first line has its CR at `first_cr`.
fn top(buf: &[u8], first_cr: usize, end: usize) -> Result<Reply<'_>, RespError> {
    let kind = buf[0];
    let body = &buf[first_cr + 2..end];
    Ok(match head(kind, &buf[1..first_cr])? {
        Head::Value(reply) => reply,
        Head::Bulk(_) => string(kind, &body[..body.len() - 2]),
        Head::Aggregate(count) => aggregate(kind, element_count(kind, count), body),
    })
}

/// Decodes the validated element at the start of `bytes`: the reply and the bytes it takes.
fn decode(bytes: &[u8]) -> Option<(Reply<'_>, usize)> {
    let kind = *bytes.first()?;
    // Validated: the first CR ends the line.
    let cr = bytes.iter().position(|&b| b == b'\r')?;
    let line_end = cr + 2;
    match head(kind, bytes.get(1..cr)?).ok()? {
        Head::Value(reply) => Some((reply, line_end)),
        Head::Bulk(len) => {
            let end = line_end.checked_add(usize::try_from(len).ok()?)?;
            Some((string(kind, bytes.get(line_end..end)?), end + 2))
        }
        Head::Aggregate(count) => {
            let len = element_count(kind, count);
            let mut at = line_end;
            for _ in 0..len {
                at += decode(bytes.get(at..)?)?.1;
            }
            Some((aggregate(kind, len, bytes.get(line_end..at)?), at))
        }
    }
}

/// Why a command could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// No arguments: Redis ignores an empty array and would never answer it.
    Empty,
    /// The output slice is shorter than the command.
    BufferTooSmall {
        /// The bytes the command takes.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("command with no arguments"),
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

/// The bytes [`write_command`] or [`encode_command`] write for `args`.
pub fn command_len<A: AsRef<[u8]>>(args: &[A]) -> usize {
    let header = 3 + Decimal::new(args.len() as u64).as_bytes().len();
    args.iter().fold(header, |n, a| {
        let len = a.as_ref().len();
        n + 5 + Decimal::new(len as u64).as_bytes().len() + len
    })
}

/// Appends `args` as one command (an array of bulk strings) to `out`, after whatever it holds.
/// Returns the bytes written.
///
/// # Errors
/// [`EncodeError::Empty`] when `args` is empty; `out` is left as it was.
pub fn write_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) -> Result<usize, EncodeError> {
    if args.is_empty() {
        return Err(EncodeError::Empty);
    }
    let before = out.len();
    out.reserve(command_len(args));
    write_array_header(out, args.len());
    for a in args {
        write_bulk(out, a.as_ref());
    }
    Ok(out.len() - before)
}

/// Writes `args` as one command at the start of `out`. Returns the bytes written.
///
/// # Errors
/// [`EncodeError::Empty`] when `args` is empty; [`EncodeError::BufferTooSmall`] with the size
/// needed when `out` is shorter (nothing is written).
pub fn encode_command<A: AsRef<[u8]>>(out: &mut [u8], args: &[A]) -> Result<usize, EncodeError> {
    if args.is_empty() {
        return Err(EncodeError::Empty);
    }
    let needed = command_len(args);
    let Some(out) = out.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall { needed });
    };
    let mut at = put_header(out, 0, b'*', args.len() as u64);
    for a in args {
        let a = a.as_ref();
        at = put_header(out, at, b'$', a.len() as u64);
        out[at..at + a.len()].copy_from_slice(a);
        out[at + a.len()..at + a.len() + 2].copy_from_slice(b"\r\n");
        at += a.len() + 2;
    }
    Ok(at)
}

/// Appends an array header, `*n\r\n`: the start of a command of `n` arguments, each then
/// written with [`write_bulk`] or [`write_bulk_int`]. `n` must be at least 1 (see
/// [`EncodeError::Empty`]).
pub fn write_array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(Decimal::new(n as u64).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends one argument as a bulk string, `$len\r\narg\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(Decimal::new(arg.len() as u64).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number as a bulk string argument, in decimal (as `XADD ... MAXLEN 1000` takes it).
pub fn write_bulk_int(out: &mut Vec<u8>, n: i64) {
    let digits = Decimal::new(n.unsigned_abs());
    let digits = digits.as_bytes();
    let mut arg = [b'-'; 21];
    let sign = usize::from(n < 0);
    arg[sign..sign + digits.len()].copy_from_slice(digits);
    write_bulk(out, &arg[..sign + digits.len()]);
}

/// Writes `kind`, `n` in decimal and CR LF at `out[at..]`; returns where they end. The caller
/// sized `out` with [`command_len`].
fn put_header(out: &mut [u8], at: usize, kind: u8, n: u64) -> usize {
    let digits = Decimal::new(n);
    let digits = digits.as_bytes();
    let len = digits.len();
    out[at] = kind;
    out[at + 1..at + 1 + len].copy_from_slice(digits);
    out[at + 1 + len..at + 3 + len].copy_from_slice(b"\r\n");
    at + 3 + len
}

/// A number in decimal, written without allocating.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return Self { digits, start };
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

#[cfg(test)]
mod tests;
