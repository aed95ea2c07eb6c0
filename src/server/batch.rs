//! Broadcasts to one set of connections, gathered while a batch of work runs and queued to each
//! connection as one piece.
//!
//! A hub that publishes 30 messages to 10,000 subscribers from one read would otherwise touch
//! every subscriber's state 30 times, a cache miss each at that scale (docs/performance.md).
//! Gathered, each subscriber is touched once, gets one shared piece holding the 30 frames, and
//! one iovec entry in its next write.
//!
//! What each connection receives is what it would have received had every broadcast been
//! queued at once. The rules that keep it so:
//! - before anything else is queued to a member of the pending set (a reply, a control frame,
//!   a close), the batch is queued first (`Core::flush_batch_for`);
//! - so it is before a member's input is handled or its timer runs (either may close or fail
//!   it, after which nothing more may be sent to it);
//! - a broadcast to another set, or of another kind, queues the pending one first; and no
//!   socket is written while a batch is pending (the event loop queues it before any write,
//!   and at the end of every batch of work).
//!
//! One difference remains, at the edge of a slow reader: one cut off while a gathered piece is
//! partly written still gets the rest of that piece (whole messages, in order, at most about
//! [`MAX_BATCH_BYTES`]) before its close, where it would have had the rest of one frame.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::proto::connection::MessageKind;
use crate::proto::frame::{FrameHeader, MAX_HEADER_LEN};
use crate::server::api::ConnId;

/// A pending batch is queued once its frames pass this many bytes: pieces stay moderate, and a
/// burst of large messages is not held back to be copied into one allocation.
pub(crate) const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Broadcasts gathered for one set: server frames, back to back. (`Core::broadcast_set`
/// gathers, `Core::flush_batch` queues.)
pub(crate) struct Batch {
    pub(crate) set: Rc<BTreeSet<ConnId>>,
    pub(crate) kind: MessageKind,
    pub(crate) frames: Vec<u8>,
    /// Per frame: where its payload starts and where it ends in `frames` (a client connection
    /// masks each frame with its own key, so it is sent frame by frame).
    pub(crate) marks: Vec<(usize, usize)>,
    /// When its first message was gathered (`Core::clock_ns`).
    pub(crate) queued_at: u64,
}

impl Batch {
    pub(crate) fn new(set: &Rc<BTreeSet<ConnId>>, kind: MessageKind, queued_at: u64) -> Self {
        Self { set: Rc::clone(set), kind, frames: Vec::new(), marks: Vec::new(), queued_at }
    }

    /// Whether a broadcast to `set` of `kind` joins this batch.
    pub(crate) fn takes(&self, set: &Rc<BTreeSet<ConnId>>, kind: MessageKind) -> bool {
        Rc::ptr_eq(&self.set, set) && self.kind == kind
    }

    /// Adds a message; returns whether the batch is now full (to be queued).
    pub(crate) fn push(&mut self, data: &[u8]) -> bool {
        let start = push_server_frame(&mut self.frames, self.kind, data);
        self.marks.push((start, self.frames.len()));
        self.frames.len() >= MAX_BATCH_BYTES
    }
}

/// Appends a whole server frame (unmasked, FIN set) carrying `data` to `out`; returns where
/// its payload starts.
pub(crate) fn push_server_frame(out: &mut Vec<u8>, kind: MessageKind, data: &[u8]) -> usize {
    push_server_frame_rsv(out, kind, data, 0)
}

/// As [`push_server_frame`], with the RSV bits `rsv` (`0b100`: RSV1, a compressed message).
pub(crate) fn push_server_frame_rsv(
    out: &mut Vec<u8>,
    kind: MessageKind,
    data: &[u8],
    rsv: u8,
) -> usize {
    let h = FrameHeader {
        fin: true,
        rsv,
        opcode: kind.opcode(),
        mask: None,
        payload_len: data.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut head);
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(data);
    out.len() - data.len()
}
