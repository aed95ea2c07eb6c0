//! Incremental UTF-8 validation (RFC 3629 §4), for text messages that arrive in pieces.
//!
//! RFC 6455 §8.1: an endpoint that receives a text message that is not valid UTF-8 must fail the
//! connection (1007). A message can be split anywhere, even inside a code point, and we want to
//! fail on the first bad byte, not when the message ends. The validator carries at most the
//! state of one unfinished code point between calls, so each byte is examined once.

/// The state of validation between pieces of one text message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Continuation bytes still owed by the current code point (0 to 3).
    need: u8,
    /// The range the next continuation byte must fall in (narrower than 0x80..=0xBF right after
    /// E0, ED, F0 and F4, which rules out overlongs, surrogates and code points past U+10FFFF).
    lo: u8,
    hi: u8,
}

/// The input holds a byte that no valid UTF-8 text can hold at that place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Self { need: 0, lo: 0x80, hi: 0xBF }
    }

    /// Validates the next piece of the text.
    ///
    /// # Errors
    /// The piece holds a byte that makes the text invalid, whatever follows.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        // Finish a code point left open by the previous piece, byte by byte.
        while self.need > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            self.step(b)?;
            bytes = rest;
        }
        // The rest starts on a code point boundary. All-ASCII text (most of what a server
        // relays) is settled by core's word-at-a-time `is_ascii`, without the general
        // validator's setup.
        if bytes.is_ascii() {
            return Ok(());
        }
        // Otherwise the standard library's validator, which tells a truncated final code point
        // (error_len None) from a bad byte.
        match core::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                for &b in bytes.get(e.valid_up_to()..).unwrap_or_default() {
                    self.step(b)?;
                }
                Ok(())
            }
        }
    }

    /// Whether the text so far ends on a code point boundary (a message may end here).
    pub const fn is_complete(&self) -> bool {
        self.need == 0
    }

    fn step(&mut self, b: u8) -> Result<(), InvalidUtf8> {
        if self.need > 0 {
            if b < self.lo || b > self.hi {
                return Err(InvalidUtf8);
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        // RFC 3629 §4, the UTF8-octets grammar, keyed on the lead byte.
        let (need, lo, hi) = match b {
            0x00..=0x7F => (0, 0x80, 0xBF),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return Err(InvalidUtf8),
        };
        *self = Self { need, lo, hi };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn validate_split(bytes: &[u8], split: &[usize]) -> Result<bool, InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &end in split.iter().chain(core::iter::once(&bytes.len())) {
            v.feed(&bytes[start..end])?;
            start = end;
        }
        Ok(v.is_complete())
    }

    const SAMPLES: &[&[u8]] = &[
        b"",
        b"hello",
        "κόσμε".as_bytes(),
        "\u{7f}\u{80}\u{7ff}\u{800}\u{fff}\u{d7ff}\u{e000}\u{ffff}\u{10000}\u{10ffff}".as_bytes(),
        b"\xc0\xaf",         // overlong
        b"\xe0\x80\xaf",     // overlong
        b"\xed\xa0\x80",     // surrogate
        b"\xf4\x90\x80\x80", // past U+10FFFF
        b"\xf5",
        b"\xff",
        b"\x80",
        b"a\xce\xbaz\xe2", // truncated at the end
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        // ASCII words before a code point, a bad byte, a truncated tail (the word test's edges).
        b"0123456789abcdef\xce\xbaz",
        b"01234567\xed\xa0\x80",
        b"0123456\xf4\x90\x80\x80",
        b"0123456789abcde\xe2\x82",
        b"01234567\x80",
    ];

    #[test]
    fn agrees_with_std_under_every_split() {
        for &s in SAMPLES {
            let want = core::str::from_utf8(s).is_ok();
            for a in 0..=s.len() {
                for b in a..=s.len() {
                    let got = validate_split(s, &[a, b]);
                    // Invalid text may only be reported as incomplete if std says it is a
                    // truncated tail; everything else must fail or succeed like std.
                    match got {
                        Ok(true) => assert!(want, "{s:?} {a} {b}"),
                        Ok(false) => {
                            let e = core::str::from_utf8(s).unwrap_err();
                            assert!(e.error_len().is_none(), "{s:?}");
                        }
                        Err(_) => assert!(!want, "{s:?} {a} {b}"),
                    }
                }
            }
        }
    }

    #[test]
    fn fails_on_the_first_bad_byte_not_at_the_end() {
        // A surrogate lead: E D A0 fails as soon as A0 is seen.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok \xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8));
        // A byte that can never appear.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf8"), Err(InvalidUtf8));
    }

    #[test]
    fn every_code_point_byte_by_byte() {
        let mut all = Vec::new();
        for c in (0..=0x10FFFFu32).step_by(97).filter_map(char::from_u32) {
            let mut buf = [0u8; 4];
            all.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        let mut v = Utf8Validator::new();
        for b in &all {
            v.feed(core::slice::from_ref(b)).unwrap();
        }
        assert!(v.is_complete());
    }
}
