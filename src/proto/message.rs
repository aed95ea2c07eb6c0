//! Whole messages from the pieces [`Connection`](crate::proto::Connection) hands out, for
//! callers that want them whole. The core itself never buffers a message: a caller that streams
//! (a proxy) takes the pieces as they come.

use alloc::vec::Vec;

use crate::proto::connection::MessageKind;

/// Gathers the pieces of one message at a time.
///
/// Its memory is bounded by the connection's `max_message_size`, which the connection enforces
/// at header time, before any piece of an oversized message arrives.
#[derive(Debug, Default)]
pub struct Assembler {
    data: Vec<u8>,
    /// The last push completed a message: the next one starts afresh.
    done: bool,
}

impl Assembler {
    /// An empty assembler.
    pub const fn new() -> Self {
        Self { data: Vec::new(), done: false }
    }

    /// Adds a piece; returns the whole message when `fin` ends it. The slice is valid until the
    /// next call.
    pub fn push(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Option<(MessageKind, &[u8])> {
        if core::mem::take(&mut self.done) {
            self.data.clear();
        }
        self.data.extend_from_slice(data);
        self.done = fin;
        fin.then_some((kind, &self.data[..]))
    }

    /// Frees the buffer (for a connection going idle).
    pub fn shrink(&mut self) {
        self.data = Vec::new();
        self.done = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_make_a_message_and_the_next_starts_afresh() {
        let mut a = Assembler::new();
        assert_eq!(a.push(MessageKind::Text, b"Hel", false), None);
        assert_eq!(
            a.push(MessageKind::Text, b"lo", true),
            Some((MessageKind::Text, &b"Hello"[..]))
        );
        assert_eq!(a.push(MessageKind::Binary, b"x", true), Some((MessageKind::Binary, &b"x"[..])));
        assert_eq!(a.push(MessageKind::Binary, b"", true), Some((MessageKind::Binary, &b""[..])));
    }
}
