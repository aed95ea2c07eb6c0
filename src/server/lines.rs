//! A program's output as lines: the splitter `--exec` and agents share.

/// The longest line sent as one message; a longer one is sent in pieces of this size.
pub const MAX_LINE: usize = 64 << 10;

/// Splits a byte stream into lines: `\n` ends a line (a `\r` before it is dropped), a partial
/// line waits for the rest, and a line longer than the cap goes out in pieces of the cap (cut on
/// a UTF-8 character boundary when one is near).
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    max: usize,
}

impl Lines {
    /// Lines of at most `max` bytes (at least 4, so a piece can hold any character).
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max: max.max(4) }
    }

    /// Takes bytes and calls `emit` with each whole line (or piece) they complete.
    pub fn push(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = (&data[..i], &data[i + 1..]);
            if self.buf.is_empty() {
                self.pieces(line, emit);
            } else {
                let mut buf = std::mem::take(&mut self.buf);
                buf.extend_from_slice(line);
                self.pieces(&buf, emit);
                buf.clear();
                self.buf = buf;
            }
            data = rest;
        }
        self.buf.extend_from_slice(data);
        while self.buf.len() > self.max {
            let cut = boundary(&self.buf, self.max);
            emit(&self.buf[..cut]);
            self.buf.drain(..cut);
        }
        if self.buf.is_empty() && self.buf.capacity() > self.max {
            self.buf = Vec::new();
        }
    }

    /// The partial line left at the end of the stream, if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        let buf = std::mem::take(&mut self.buf);
        if !buf.is_empty() {
            self.pieces(&buf, emit);
        }
    }

    /// One whole line, in pieces of at most `max`.
    fn pieces(&self, line: &[u8], emit: &mut dyn FnMut(&[u8])) {
        let mut line = line.strip_suffix(b"\r").unwrap_or(line);
        while line.len() > self.max {
            let cut = boundary(line, self.max);
            emit(&line[..cut]);
            line = &line[cut..];
        }
        emit(line);
    }
}

/// Where to cut `bytes` (longer than `max`) at most `max` bytes in: before a UTF-8 character's
/// first byte if there is one in the last 3 bytes, else at `max`.
fn boundary(bytes: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && bytes.get(i).is_some_and(|&b| b & 0xC0 != 0x80))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut lines = Lines::new(max);
        for c in chunks {
            lines.push(c, &mut |l| out.push(String::from_utf8_lossy(l).into_owned()));
        }
        lines.finish(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(split(&[b"a\nb", b"c\r\n", b"\nd"], 64), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"one\n"], 64), ["one"]);
        assert!(split(&[b""], 64).is_empty());
    }

    #[test]
    fn long_lines_go_in_pieces() {
        assert_eq!(split(&[b"abcdefghij\n"], 4), ["abcd", "efgh", "ij"]);
        // Without a newline the buffer never holds more than the cap.
        let mut lines = Lines::new(4);
        let mut n = 0;
        for _ in 0..1000 {
            lines.push(b"xyz", &mut |l| {
                assert_eq!(l.len(), 4);
                n += 1;
            });
            assert!(lines.buf.len() <= 4);
        }
        // 3000 bytes: 749 pieces out, the last 4 wait for more (or the end).
        assert_eq!(n, 749);
        assert_eq!(lines.buf.len(), 4);
        // A piece is not cut inside a character.
        let s = "aé€x".repeat(3);
        let pieces = split(&[s.as_bytes(), b"\n"], 5);
        assert_eq!(pieces.concat(), s);
        assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    }
}
