//! A tiny structured logger: one line per event, written to stderr.
//!
//! The level and format are process-wide and held in atomics, so [`enabled`] costs one relaxed
//! load and the macros ([`error!`](crate::error), [`warn!`](crate::warn),
//! [`info!`](crate::info), [`debug!`](crate::debug)) format nothing when a level is off.
//!
//! Each line is built in a reusable buffer and handed to stderr in a single `write_all`, so
//! lines from different threads do not interleave. Write errors are ignored: logging never
//! fails and never panics.
//!
//! Two formats, with the message first and the fields in the order given:
//!
//! ```text
//! 2026-11-22T01:02:03.123Z info listening addr=127.0.0.1:8080 max_connections=10000
//! {"ts":"2026-11-22T01:02:03.123Z","level":"info","msg":"listening","addr":"127.0.0.1:8080"}
//! ```
//!
//! In text, a value that is empty or holds whitespace, `=`, `"` or a control character is
//! quoted, with `\"`, `\\`, `\n`, `\r`, `\t` and `\u00XX` escapes inside the quotes; control
//! characters in the message and keys are escaped the same way, so an event is always one line.
//! In JSON a value that reads as a JSON number (RFC 8259 §6), `true` or `false` is written bare,
//! any other as a string escaped per RFC 8259 §7. Timestamps are UTC, to the
//! millisecond.

use core::cell::RefCell;
use core::fmt::{self, Display, Write as _};
use core::sync::atomic::{AtomicU8, Ordering};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// How severe an event is. A level is enabled when it is at or above the configured one
/// (`Error` is the most severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    /// Something failed and needs attention.
    Error = 0,
    /// Something unexpected that the server recovered from.
    Warn = 1,
    /// Start-up, shutdown and other events an operator wants to see.
    #[default]
    Info = 2,
    /// Per-connection detail, for diagnosis.
    Debug = 3,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Self; 4] = [Self::Error, Self::Warn, Self::Info, Self::Debug];

    /// The lowercase name used in log lines and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
        }
    }

    /// The level called `name` (ASCII case-insensitive), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(name))
    }
}

impl Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a line is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `TIMESTAMP LEVEL MESSAGE key=value ...`, for people.
    #[default]
    Text = 0,
    /// One JSON object per line (numbers and booleans bare, the rest strings), for machines.
    Json = 1,
}

impl Format {
    /// Every format.
    pub const ALL: [Self; 2] = [Self::Text, Self::Json];

    /// The lowercase name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }

    /// The format called `name` (ASCII case-insensitive), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(name))
    }
}

impl Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static FORMAT: AtomicU8 = AtomicU8::new(Format::Text as u8);

/// Sets the most verbose level that is written, and the line format, for the whole process.
///
/// Before the first call the logger writes `info` and above, as text. Calling it again
/// replaces both settings.
pub fn init(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(format as u8, Ordering::Relaxed);
}

/// Whether events at `level` are written. One relaxed atomic load.
#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

fn format() -> Format {
    match FORMAT.load(Ordering::Relaxed) {
        0 => Format::Text,
        _ => Format::Json,
    }
}

// Lines gathered by a batch in this thread; `None` when not batching.
thread_local! {
    static BATCH: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A batch flushes early once this much is gathered.
const BATCH_FLUSH_AT: usize = 16 << 10;

/// Starts gathering this thread's lines instead of writing each at once: the event loop batches
/// a turn's lines into one write (a connection's open and close then cost no syscall of their
/// own). [`flush`] writes them.
pub fn batch() {
    let _ = BATCH.try_with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            b.get_or_insert_with(String::new);
        }
    });
}

/// Writes the lines a batch gathered, in one write, and keeps batching.
pub fn flush() {
    let _ = BATCH.try_with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            if let Some(pending) = b.as_mut().filter(|p| !p.is_empty()) {
                let _ = std::io::stderr().lock().write_all(pending.as_bytes());
                pending.clear();
                if pending.capacity() > MAX_KEPT_CAPACITY {
                    *pending = String::new();
                }
            }
        }
    });
}

/// Writes one event to stderr as a single line, if `level` is enabled (or adds it to the
/// current batch, see [`batch`]).
///
/// `fields` are `(key, value)` pairs written after the message in order; keys are expected to
/// be identifiers. Prefer the macros, which skip building `fields` when the level is off.
pub fn log(level: Level, msg: &str, fields: &[(&str, &dyn Display)]) {
    if !enabled(level) {
        return;
    }
    let ts_millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let format = format();
    // In a batch (the event loop's turn), lines gather and go out in one write at its end.
    let batched = BATCH.try_with(|b| {
        let Ok(mut b) = b.try_borrow_mut() else { return false };
        let Some(pending) = b.as_mut() else { return false };
        format_line(pending, ts_millis, level, format, msg, fields);
        if pending.len() > BATCH_FLUSH_AT {
            let _ = std::io::stderr().lock().write_all(pending.as_bytes());
            pending.clear();
        }
        true
    });
    if batched == Ok(true) {
        return;
    }
    let emit = |buf: &mut String| {
        buf.clear();
        format_line(buf, ts_millis, level, format, msg, fields);
        // A failed write to stderr has nowhere to be reported; dropping the line is the only
        // option that cannot take the server down.
        let _ = std::io::stderr().lock().write_all(buf.as_bytes());
    };
    thread_local! {
        static BUF: RefCell<String> = const { RefCell::new(String::new()) };
    }
    // A `Display` impl that itself logs would find the buffer borrowed: give it its own.
    let reused = BUF.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            emit(&mut buf);
            // Keep the buffer for the next line, unless one huge event inflated it.
            if buf.capacity() > MAX_KEPT_CAPACITY {
                *buf = String::new();
            }
            true
        }
        Err(_) => false,
    });
    if reused != Ok(true) {
        emit(&mut String::new());
    }
}

/// The largest line buffer a thread keeps between events.
const MAX_KEPT_CAPACITY: usize = 16 * 1024;

/// Appends one complete line, ending in `\n`, for an event at `ts_millis` (milliseconds since
/// the Unix epoch, UTC).
pub(crate) fn format_line(
    buf: &mut String,
    ts_millis: u64,
    level: Level,
    format: Format,
    msg: &str,
    fields: &[(&str, &dyn Display)],
) {
    match format {
        Format::Text => {
            write_timestamp(buf, ts_millis);
            buf.push(' ');
            buf.push_str(level.as_str());
            buf.push(' ');
            push_escaped_controls(buf, msg);
            for (key, value) in fields {
                buf.push(' ');
                push_escaped_controls(buf, key);
                buf.push('=');
                push_text_value(buf, value);
            }
        }
        Format::Json => {
            buf.push_str("{\"ts\":\"");
            write_timestamp(buf, ts_millis);
            buf.push_str("\",\"level\":\"");
            buf.push_str(level.as_str());
            buf.push_str("\",\"msg\":\"");
            push_json_escaped(buf, msg);
            buf.push('"');
            for (key, value) in fields {
                buf.push_str(",\"");
                push_json_escaped(buf, key);
                buf.push_str("\":\"");
                let start = buf.len();
                // Infallible: the adapter writes into a String.
                let _ = write!(JsonEscaper(buf), "{value}");
                if is_json_number(&buf[start..]) || matches!(&buf[start..], "true" | "false") {
                    // A count, a size, an id or a flag is a JSON number or boolean, so a log
                    // pipeline can compare and sum it without parsing strings.
                    buf.remove(start - 1);
                } else {
                    buf.push('"');
                }
            }
            buf.push('}');
        }
    }
    buf.push('\n');
}

/// Whether `s` is a number in JSON's grammar (RFC 8259 §6): `-`, then `0` or digits not starting
/// with `0`, then an optional fraction and exponent. `007`, `1.`, `+1`, `0x1` and `inf` are not.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Writes `value` bare if it reads unambiguously, else quoted with escapes.
fn push_text_value(buf: &mut String, value: &dyn Display) {
    let start = buf.len();
    // Infallible: writing into a String.
    let _ = write!(buf, "{value}");
    let raw = &buf[start..];
    let needs_quotes = raw.is_empty()
        || raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '=' || c == '"');
    if needs_quotes {
        // Only the rare quoted value pays for a copy.
        let raw = buf.split_off(start);
        buf.push('"');
        for c in raw.chars() {
            match c {
                '"' => buf.push_str("\\\""),
                '\\' => buf.push_str("\\\\"),
                c => push_char_escaped(buf, c),
            }
        }
        buf.push('"');
    }
}

/// Appends `s` with control characters escaped and everything else as is.
fn push_escaped_controls(buf: &mut String, s: &str) {
    for c in s.chars() {
        push_char_escaped(buf, c);
    }
}

fn push_char_escaped(buf: &mut String, c: char) {
    match c {
        '\n' => buf.push_str("\\n"),
        '\r' => buf.push_str("\\r"),
        '\t' => buf.push_str("\\t"),
        c if c.is_control() => {
            // Infallible: writing into a String.
            let _ = write!(buf, "\\u{:04x}", u32::from(c));
        }
        c => buf.push(c),
    }
}

/// Appends `s` escaped for the inside of a JSON string (RFC 8259 §7).
fn push_json_escaped(buf: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            // RFC 8259 §7 requires U+0000..U+001F escaped; `is_control` also covers DEL and C1,
            // which are legal raw but unfriendly to terminals.
            c => push_char_escaped(buf, c),
        }
    }
}

/// Escapes whatever is formatted through it straight into a JSON string body.
struct JsonEscaper<'a>(&'a mut String);

impl fmt::Write for JsonEscaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_json_escaped(self.0, s);
        Ok(())
    }
}

/// A time as the log lines write it, RFC 3339 in UTC to the millisecond
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`): for applications that put timestamps in their messages.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_millis(1_771_459_200_123);
/// assert_eq!(weir::log::rfc3339(t), "2026-02-19T00:00:00.123Z");
/// ```
pub fn rfc3339(t: SystemTime) -> String {
    let millis = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut buf = String::with_capacity(24);
    write_timestamp(&mut buf, u64::try_from(millis).unwrap_or(u64::MAX));
    buf
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn write_timestamp(buf: &mut String, ts_millis: u64) {
    let millis = ts_millis % 1000;
    let secs = ts_millis / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    // Infallible: writing into a String.
    let _ = write!(
        buf,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

/// The proleptic Gregorian `(year, month, day)` of the day `days` after 1970-01-01.
///
/// Counts in 400-year eras of 146 097 days, each starting on 1 March so that the leap day
/// falls at the end of an era-year and needs no special case.
pub(crate) fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // 1970-01-01 is day 719 468 counted from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097; // 0..=146_096
    // Leap days before this day within the era: every 4th year, minus centuries, plus the
    // 400th, counted in days (1460 = 4 * 365, 36 524 = 100-year span, 146 096 = last day).
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 153 days per 5 months (31+30+31+30+31).
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    // Both fit: month is 1..=12 and day is 1..=31.
    (year, month as u32, day as u32)
}

/// Logs an event at [`Level::Error`](crate::log::Level::Error).
///
/// `error!("message", key = value, ...)`: each value is anything [`Display`](core::fmt::Display),
/// and nothing is evaluated or formatted unless the level is enabled.
///
/// # Examples
///
/// ```
/// let err = "address in use";
/// weir::error!("listen failed", addr = "127.0.0.1:8080", error = err);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! error {
    ($($args:tt)+) => { $crate::__log_event!($crate::log::Level::Error, $($args)+) };
}

/// Logs an event at [`Level::Warn`](crate::log::Level::Warn).
///
/// `warn!("message", key = value, ...)`: each value is anything [`Display`](core::fmt::Display),
/// and nothing is evaluated or formatted unless the level is enabled.
///
/// # Examples
///
/// ```
/// weir::warn!("connection limit reached", max_connections = 10_000);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! warn {
    ($($args:tt)+) => { $crate::__log_event!($crate::log::Level::Warn, $($args)+) };
}

/// Logs an event at [`Level::Info`](crate::log::Level::Info).
///
/// `info!("message", key = value, ...)`: each value is anything [`Display`](core::fmt::Display),
/// and nothing is evaluated or formatted unless the level is enabled.
///
/// # Examples
///
/// ```
/// let addr = "127.0.0.1:8080";
/// weir::info!("listening", addr = addr, max_connections = 10_000);
/// weir::info!("shutting down");
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! info {
    ($($args:tt)+) => { $crate::__log_event!($crate::log::Level::Info, $($args)+) };
}

/// Logs an event at [`Level::Debug`](crate::log::Level::Debug).
///
/// `debug!("message", key = value, ...)`: each value is anything [`Display`](core::fmt::Display),
/// and nothing is evaluated or formatted unless the level is enabled.
///
/// # Examples
///
/// ```
/// weir::debug!("frame received", opcode = 1, len = 42);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! debug {
    ($($args:tt)+) => { $crate::__log_event!($crate::log::Level::Debug, $($args)+) };
}

/// The body shared by the level macros; not part of the API.
#[doc(hidden)]
#[doc(hidden)]
#[macro_export]
macro_rules! __log_event {
    ($level:expr, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {
        if $crate::log::enabled($level) {
            $crate::log::log(
                $level,
                $msg,
                &[$((
                    ::core::stringify!($key),
                    &$value as &dyn ::core::fmt::Display,
                )),*],
            );
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_795_309_323_123; // 2026-11-22T01:02:03.123Z

    fn line(format: Format, msg: &str, fields: &[(&str, &dyn Display)]) -> String {
        let mut buf = String::new();
        format_line(&mut buf, TS, Level::Info, format, msg, fields);
        buf
    }

    #[test]
    fn text_line() {
        let addr = "127.0.0.1:8080";
        let got = line(Format::Text, "listening", &[("addr", &addr), ("max_connections", &10_000)]);
        assert_eq!(
            got,
            "2026-11-22T01:02:03.123Z info listening addr=127.0.0.1:8080 max_connections=10000\n"
        );
    }

    #[test]
    fn json_line() {
        let got = line(Format::Json, "listening", &[("addr", &"127.0.0.1:8080"), ("n", &7)]);
        assert_eq!(
            got,
            "{\"ts\":\"2026-11-22T01:02:03.123Z\",\"level\":\"info\",\"msg\":\"listening\",\
             \"addr\":\"127.0.0.1:8080\",\"n\":7}\n"
        );
    }

    #[test]
    fn json_numbers_and_booleans_are_bare() {
        let got = line(
            Format::Json,
            "m",
            &[("a", &-3), ("b", &1.5), ("c", &true), ("d", &"007"), ("e", &"1."), ("f", &"")],
        );
        assert!(
            got.ends_with(
                ",\"a\":-3,\"b\":1.5,\"c\":true,\"d\":\"007\",\"e\":\"1.\",\"f\":\"\"}\n"
            ),
            "{got}"
        );
        for n in ["0", "-0", "10", "1e5", "2.5E-3"] {
            assert!(is_json_number(n), "{n}");
        }
        for n in ["", "-", "01", "+1", ".5", "1.", "1e", "0x1", "inf", "1 "] {
            assert!(!is_json_number(n), "{n}");
        }
    }

    #[test]
    fn text_quoting() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "back\\slash"),
            ("tab\there", "\"tab\\there\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("quoted \\ too", "\"quoted \\\\ too\""),
            ("bell\u{7}", "\"bell\\u0007\""),
            ("nbsp\u{a0}x", "\"nbsp\u{a0}x\""),
            ("ünïcode", "ünïcode"),
        ];
        for (value, want) in cases {
            let got = line(Format::Text, "m", &[("k", value)]);
            let want = format!("2026-11-22T01:02:03.123Z info m k={want}\n");
            assert_eq!(got, want, "value {value:?}");
        }
    }

    #[test]
    fn text_message_stays_on_one_line() {
        let got = line(Format::Text, "two\nlines\u{1b}", &[("bad\nkey", &1)]);
        assert_eq!(got, "2026-11-22T01:02:03.123Z info two\\nlines\\u001b bad\\nkey=1\n");
    }

    #[test]
    fn json_escaping() {
        let got = line(Format::Json, "say \"hi\"\n", &[("k\"", &"a\\b\u{0}\u{1f}\t\r ü")]);
        assert_eq!(
            got,
            "{\"ts\":\"2026-11-22T01:02:03.123Z\",\"level\":\"info\",\"msg\":\"say \\\"hi\\\"\\n\",\
             \"k\\\"\":\"a\\\\b\\u0000\\u001f\\t\\r ü\"}\n"
        );
    }

    #[test]
    fn timestamps() {
        let ts = |millis| {
            let mut buf = String::new();
            write_timestamp(&mut buf, millis);
            buf
        };
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(TS), "2026-11-22T01:02:03.123Z");
        assert_eq!(ts(951_782_400_000 + 86_399_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(ts(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
        assert_eq!(ts(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_dates() {
        let cases = [
            (0, (1970, 1, 1)),
            (364, (1970, 12, 31)),
            (365, (1971, 1, 1)),
            (789, (1972, 2, 29)),    // first leap day after the epoch
            (11_016, (2000, 2, 29)), // a 400-year leap day
            (11_017, (2000, 3, 1)),
            (11_322, (2000, 12, 31)), // 366th day of a leap year
            (19_782, (2024, 2, 29)),
            (20_414, (2025, 11, 22)),
            (20_779, (2026, 11, 22)),
            (47_540, (2100, 2, 28)), // 2100 is not a leap year
            (47_541, (2100, 3, 1)),
        ];
        for (days, want) in cases {
            assert_eq!(civil_from_days(days), want, "day {days}");
        }
    }

    #[test]
    fn civil_dates_are_consecutive() {
        // Walk 1970..2400 and check every step is the next calendar day.
        let days_in = |y: u64, m: u32| match m {
            2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(0);
        for days in 1..157_054 {
            let (y, m, d) = prev;
            let next = if d < days_in(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            let got = civil_from_days(days);
            assert_eq!(got, next, "day {days}");
            prev = got;
        }
    }

    #[test]
    fn level_names_and_order() {
        for level in Level::ALL {
            assert_eq!(Level::from_name(level.as_str()), Some(level));
        }
        assert_eq!(Level::from_name("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::from_name("verbose"), None);
        assert_eq!(Format::from_name("Json"), Some(Format::Json));
        assert_eq!(Format::from_name("xml"), None);
        assert!(Level::Error < Level::Debug);
    }

    #[test]
    fn macros_expand() {
        // Writes at most a line or two to the test's stderr; the point is that all forms
        // compile and that a disabled level evaluates nothing.
        let mut evaluated = false;
        let mut touch = || {
            evaluated = true;
            1
        };
        crate::debug!("not shown", n = touch());
        assert!(!enabled(Level::Debug) || evaluated);
        crate::error!("shown");
        crate::warn!("shown", a = 1, b = "two",);
        crate::info!("shown", a = 1);
    }
}
