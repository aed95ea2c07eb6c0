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
//!   a close), the batch is queued first ([`Core::flush_batch_for`]);
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
use crate::server::core::{Core, push_server_frame};
use crate::server::handler::ConnId;
use crate::server::slab::Key;

/// A pending batch is queued once its frames pass this many bytes: pieces stay moderate, and a
/// burst of large messages is not held back to be copied into one allocation.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Broadcasts gathered for one set: server frames, back to back.
pub(crate) struct Batch {
    set: Rc<BTreeSet<ConnId>>,
    kind: MessageKind,
    frames: Vec<u8>,
    /// Per frame: where its payload starts and where it ends in `frames` (a client connection
    /// masks each frame with its own key, so it is sent frame by frame).
    marks: Vec<(usize, usize)>,
}

impl Core {
    /// Queues a message to every connection in `set`: gathered with the broadcasts to the same
    /// set (the same `Rc`) just before it, and queued when the batch is flushed. Returns the
    /// size of the set.
    pub(crate) fn broadcast_set(
        &mut self,
        set: &Rc<BTreeSet<ConnId>>,
        kind: MessageKind,
        data: &[u8],
    ) -> usize {
        if self.batch.as_ref().is_some_and(|b| !Rc::ptr_eq(&b.set, set) || b.kind != kind) {
            self.flush_batch();
        }
        if data.len() >= MAX_BATCH_BYTES {
            // Nothing to gain from gathering it, and a copy to lose. (Sending it to a member
            // queues what is gathered first.)
            self.broadcast(set.iter().copied(), kind, data);
            return set.len();
        }
        let b = self.batch.get_or_insert_with(|| Batch {
            set: Rc::clone(set),
            kind,
            frames: Vec::new(),
            marks: Vec::new(),
        });
        let start = push_server_frame(&mut b.frames, kind, data);
        b.marks.push((start, b.frames.len()));
        if b.frames.len() >= MAX_BATCH_BYTES {
            self.flush_batch();
        }
        set.len()
    }

    /// Queues the pending batch, if `key` is in its set.
    pub(crate) fn flush_batch_for(&mut self, key: Key) {
        if self.batch.as_ref().is_some_and(|b| b.set.contains(&ConnId(key))) {
            self.flush_batch();
        }
    }

    /// Queues the pending batch, if any, to every connection in its set.
    pub(crate) fn flush_batch(&mut self) {
        let Some(b) = self.batch.take() else { return };
        let piece: Rc<[u8]> = Rc::from(b.frames);
        // With permessage-deflate, compressed once for every member that shares the compressor.
        let mut packed = None;
        for id in b.set.iter() {
            let _ = self.send_shared_deflated(id.0, b.kind, &piece, &b.marks, &mut packed);
        }
    }
}
