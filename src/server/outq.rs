//! A connection's outbound queue: the bytes it still has to write, in order, as pieces that
//! are either its own (small frames coalesced into leased buffers) or shared (one broadcast
//! frame referenced by every recipient's queue).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

use crate::server::pool::Pool;

/// Most pieces handed to one vectored write.
const MAX_IOV: usize = 64;
/// Slices filled for a queue of at most this many pieces (`write_observed`).
const FEW_IOV: usize = 4;

/// What each piece holds of the queue beside its bytes; counted against `--queue-cap` and
/// `--max-queued-total` with them.
const SLOT: usize = std::mem::size_of::<Piece>();

/// The `queued_at` of a shared piece that is no message (a keep-alive): not reported written.
pub const UNTIMED: u64 = u64::MAX;

#[derive(Debug)]
enum Piece {
    /// Bytes this queue owns: coalesced small frames, or a large payload moved in.
    Owned(Vec<u8>),
    /// The payload of the frame whose header ends the piece before: never parted from it.
    Payload(Vec<u8>),
    /// Bytes shared with other queues (a broadcast frame), and when they were queued (ns since
    /// the loop started): the delivery histogram observes the time to write them. (The enum is
    /// no larger for it: `Owned` is the largest variant.)
    Shared(Rc<[u8]>, u64),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Owned(v) | Piece::Payload(v) => v,
            Piece::Shared(b, _) => b,
        }
    }
}

/// Pieces in order, the first one held inline: a connection that has one piece queued at a
/// time (the usual echo or request/response) never allocates queue storage, and an idle one
/// holds none.
#[derive(Debug, Default)]
struct Pieces {
    front: Option<Piece>,
    /// The pieces after the first, boxed: made the first time two pieces are queued, then
    /// kept (no allocation per message), and absent on a connection that never needed it.
    // Boxed on purpose: 8 bytes inline instead of 32 on every connection, for the idle-memory
    // goal; the extra allocation happens once, when a connection first queues two pieces.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Piece>>>,
}

impl Pieces {
    fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    fn push_back(&mut self, p: Piece) {
        if self.front.is_none() {
            self.front = Some(p);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(p);
        }
    }

    fn back(&self) -> Option<&Piece> {
        self.rest.as_ref().and_then(|r| r.back()).or(self.front.as_ref())
    }

    fn back_mut(&mut self) -> Option<&mut Piece> {
        match self.rest.as_mut().and_then(|r| r.back_mut()) {
            Some(p) => Some(p),
            None => self.front.as_mut(),
        }
    }

    fn get(&self, i: usize) -> Option<&Piece> {
        if i == 0 { self.front.as_ref() } else { self.rest.as_ref()?.get(i - 1) }
    }

    fn front(&self) -> Option<&Piece> {
        self.front.as_ref()
    }

    fn pop_front(&mut self) -> Option<Piece> {
        let p = self.front.take();
        self.front = self.rest.as_mut().and_then(|r| r.pop_front());
        p
    }

    fn pop_back(&mut self) -> Option<Piece> {
        self.rest.as_mut().and_then(|r| r.pop_back()).or_else(|| self.front.take())
    }

    fn iter(&self) -> impl Iterator<Item = &Piece> {
        self.front.iter().chain(self.rest.iter().flat_map(|r| r.iter()))
    }
}

/// The bytes a connection has yet to write.
#[derive(Debug, Default)]
pub struct OutQueue {
    pieces: Pieces,
    /// Bytes of the front piece already written.
    offset: usize,
    /// Bytes not yet written, in all pieces.
    len: usize,
}

impl OutQueue {
    /// Unsent bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// What the queue holds against `--queue-cap`: its unsent bytes and a slot for each piece.
    /// A piece is 32 bytes of queue whatever its size, so an empty message's 2-byte shared
    /// frame (a busy broadcast room's) holds 17 times what its bytes say; counted by bytes
    /// alone, a member that does not read could hold 16 times the cap.
    pub fn held(&self) -> usize {
        self.len + self.pieces.len() * SLOT
    }

    /// Nothing left to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything, written in part or not (the socket failed).
    pub fn clear(&mut self, pool: &mut Pool) {
        pool.sub_queued(self.held());
        while let Some(p) = self.pieces.pop_back() {
            if let Piece::Owned(v) | Piece::Payload(v) = p {
                pool.give(v);
            }
        }
        self.offset = 0;
        self.len = 0;
    }

    /// Appends a copy of `parts` (e.g. a frame header and its payload), coalescing with the last
    /// owned piece while it has room, else in a buffer leased from `pool`.
    pub fn push_copy(&mut self, parts: &[&[u8]], pool: &mut Pool) {
        let need: usize = parts.iter().map(|p| p.len()).sum();
        // The last owned piece takes it while it has room, or, if it is a buffer of its own
        // smaller than a lease, by growing as a Vec grows (to at most twice what it holds).
        let fits = matches!(self.pieces.back(), Some(Piece::Owned(v))
            if v.capacity() - v.len() >= need || v.capacity() < pool.size());
        if !fits {
            // A lease to start the queue or to follow a full one; behind a shared or payload
            // piece, only what is needed: a lease for each pong or answer between broadcast
            // frames would hold 16 KiB for a few bytes, unseen by `--queue-cap`.
            let lease = need <= pool.size()
                && !matches!(self.pieces.back(), Some(Piece::Shared(..) | Piece::Payload(_)));
            let buf = if lease { pool.take() } else { Vec::with_capacity(need) };
            self.pieces.push_back(Piece::Owned(buf));
            pool.add_queued(SLOT);
        }
        if let Some(Piece::Owned(v)) = self.pieces.back_mut() {
            for p in parts {
                v.extend_from_slice(p);
            }
        }
        self.len += need;
        pool.add_queued(need);
    }

    /// Appends a buffer without copying it.
    /// A buffer at most half full (a client's small masked frame in a lease) is copied instead
    /// and given back, so it does not hold a lease behind a shared piece.
    pub fn push_owned(&mut self, bytes: Vec<u8>, pool: &mut Pool) {
        if !bytes.is_empty() && bytes.len() <= bytes.capacity() / 2 {
            self.push_copy(&[&bytes], pool);
            return pool.give(bytes);
        }
        self.push(Piece::Owned(bytes), pool);
    }

    fn push(&mut self, p: Piece, pool: &mut Pool) {
        let n = p.bytes().len();
        self.len += n;
        pool.add_queued(n + SLOT);
        self.pieces.push_back(p);
    }

    /// Appends the payload of the frame whose header was pushed last, without copying it.
    /// Unlike [`OutQueue::push_owned`], it is kept with its header by
    /// [`OutQueue::drop_unstarted`].
    pub fn push_payload(&mut self, bytes: Vec<u8>, pool: &mut Pool) {
        self.push(Piece::Payload(bytes), pool);
    }

    /// Appends a shared buffer without copying it; `queued_at` is handed back to
    /// [`OutQueue::write_observed`]'s callback once the piece is written whole (unless it is
    /// [`UNTIMED`]).
    pub fn push_shared(&mut self, bytes: Rc<[u8]>, queued_at: u64, pool: &mut Pool) {
        self.push(Piece::Shared(bytes, queued_at), pool);
    }

    /// Drops every piece not yet started, keeping a partly written front piece and the payload
    /// of a frame whose header is already (being) written, so the stream stays frame-aligned.
    /// Returns the bytes dropped.
    pub fn drop_unstarted(&mut self, pool: &mut Pool) -> usize {
        self.drop_after(usize::from(self.offset > 0), pool)
    }

    /// [`OutQueue::drop_unstarted`], but the front piece is kept even if none of it is written:
    /// a connection's first bytes (its 101) must go out before its close frame.
    pub fn drop_unstarted_keeping_front(&mut self, pool: &mut Pool) -> usize {
        self.drop_after(1, pool)
    }

    /// Drops what follows the first `keep` pieces and the payload pieces after them.
    fn drop_after(&mut self, mut keep: usize, pool: &mut Pool) -> usize {
        while matches!(self.pieces.get(keep), Some(Piece::Payload(_))) {
            keep += 1;
        }
        let (mut dropped, before) = (0, self.pieces.len());
        while self.pieces.len() > keep {
            if let Some(p) = self.pieces.pop_back() {
                dropped += p.bytes().len();
                if let Piece::Owned(v) | Piece::Payload(v) = p {
                    pool.give(v);
                }
            }
        }
        self.len -= dropped;
        pool.sub_queued(dropped + (before - self.pieces.len()) * SLOT);
        dropped
    }

    /// Writes as much as `w` takes, until the queue is empty or `w` would block. Returns the
    /// bytes written; `WouldBlock` is not an error here (check [`OutQueue::is_empty`]).
    ///
    /// # Errors
    /// Any other I/O error from `w`.
    pub fn write_to<W: Write>(&mut self, w: &mut W, pool: &mut Pool) -> io::Result<usize> {
        self.write_observed(w, pool, |_| {})
    }

    /// [`OutQueue::write_to`], calling `written` with the `queued_at` of each shared piece
    /// whose last byte was written.
    ///
    /// # Errors
    /// As [`OutQueue::write_to`].
    pub fn write_observed<W: Write>(
        &mut self,
        w: &mut W,
        pool: &mut Pool,
        mut written: impl FnMut(u64),
    ) -> io::Result<usize> {
        let mut total = 0;
        while self.len > 0 {
            // The slices are filled in place, and only as many as a few pieces need unless
            // more are queued: the usual queue holds one or two (a round trip's frame), and
            // filling all of `MAX_IOV` (1 KiB) cost more than the rest of the write's own work.
            let mut few = [IoSlice::new(&[]); FEW_IOV];
            let mut many;
            let iov: &mut [IoSlice<'_>] = if self.pieces.len() <= FEW_IOV {
                &mut few
            } else {
                many = [IoSlice::new(&[]); MAX_IOV];
                &mut many
            };
            let mut n_iov = 0;
            for (i, (slot, p)) in iov.iter_mut().zip(self.pieces.iter()).enumerate() {
                let b = p.bytes();
                *slot =
                    IoSlice::new(if i == 0 { b.get(self.offset..).unwrap_or_default() } else { b });
                n_iov += 1;
            }
            let n_written = match w.write_vectored(&iov[..n_iov]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n_written;
            self.consume(n_written, pool, &mut written);
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize, pool: &mut Pool, written: &mut impl FnMut(u64)) {
        self.len -= n;
        pool.sub_queued(n);
        while n > 0 {
            let Some(front) = self.pieces.front() else {
                break;
            };
            let left = front.bytes().len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            pool.sub_queued(SLOT);
            match self.pieces.pop_front() {
                Some(Piece::Owned(v) | Piece::Payload(v)) => pool.give(v),
                Some(Piece::Shared(_, queued_at)) if queued_at != UNTIMED => written(queued_at),
                Some(Piece::Shared(..)) => {}
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `chunk` bytes per call and then blocks after `budget`.
    struct Trickle {
        got: Vec<u8>,
        chunk: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.budget);
            self.got.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn order_is_kept_across_partial_writes() {
        let mut pool = Pool::new(16, 4);
        let mut q = OutQueue::default();
        q.push_copy(&[b"ab", b"cd"], &mut pool);
        q.push_copy(&[b"ef"], &mut pool); // coalesced
        q.push_shared(Rc::from(&b"ghij"[..]), 0, &mut pool);
        q.push_owned(b"klmnopqrstuvwxyz0123".to_vec(), &mut pool);
        q.push_copy(&[b"!"], &mut pool);
        assert_eq!(q.len(), 31);
        let mut w = Trickle { got: Vec::new(), chunk: 3, budget: 10 };
        assert_eq!(q.write_to(&mut w, &mut pool).unwrap(), 10);
        assert_eq!(q.len(), 21);
        w.budget = usize::MAX;
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(w.got, b"abcdefghijklmnopqrstuvwxyz0123!");
        assert!(q.is_empty());
        assert_eq!(pool.idle(), 2, "leased buffers come back");
    }

    /// A pong or an answer queued behind a shared broadcast frame, and a client's small masked
    /// frame, used to take a 16 KiB lease each: a room member that pings and does not read,
    /// between empty messages, held 16 KiB per pong while its queue counted 4 bytes.
    #[test]
    fn small_frames_between_shared_pieces_do_not_each_hold_a_lease() {
        let mut pool = Pool::new(16 << 10, 4);
        let mut q = OutQueue::default();
        let frame: Rc<[u8]> = Rc::from(&b"\x81\x00"[..]);
        for _ in 0..1000 {
            q.push_shared(Rc::clone(&frame), 0, &mut pool);
            q.push_copy(&[b"\x8a\x00"], &mut pool);
            q.push_shared(Rc::clone(&frame), 0, &mut pool);
            let mut masked = pool.take();
            masked.extend_from_slice(b"\x82\x80abcd");
            q.push_owned(masked, &mut pool);
        }
        #[cfg(target_pointer_width = "64")]
        assert_eq!(SLOT, 32, "docs/operations.md and docs/security.md say 32 bytes a piece");
        let buffers: usize = q
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Owned(v) | Piece::Payload(v) => v.capacity(),
                Piece::Shared(..) => 0,
            })
            .sum();
        assert!(buffers < 64 << 10, "{buffers} bytes of buffers for {} bytes", q.len());
        let mut w = Trickle { got: Vec::new(), chunk: usize::MAX, budget: usize::MAX };
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(w.got, b"\x81\x00\x8a\x00\x81\x00\x82\x80abcd".repeat(1000));
    }

    #[test]
    fn the_pool_keeps_the_total_of_every_queue() {
        let mut pool = Pool::new(16, 4);
        let shared: Rc<[u8]> = Rc::from(&b"shared"[..]);
        let (mut a, mut b) = (OutQueue::default(), OutQueue::default());
        a.push_copy(&[b"ab", b"cd"], &mut pool);
        a.push_shared(Rc::clone(&shared), 0, &mut pool);
        b.push_shared(shared, 0, &mut pool);
        b.push_payload(b"payload".to_vec(), &mut pool);
        b.push_owned(b"owned".to_vec(), &mut pool);
        assert_eq!(pool.queued(), a.held() + b.held());
        assert_eq!(pool.queued(), 10 + 18 + 5 * SLOT, "a shared piece counts in each queue");
        let mut w = Trickle { got: Vec::new(), chunk: 3, budget: 5 };
        a.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(pool.queued(), a.held() + b.held());
        b.drop_unstarted(&mut pool);
        assert_eq!(pool.queued(), a.held());
        a.clear(&mut pool);
        assert_eq!(pool.queued(), 0);
    }

    #[test]
    fn a_shared_piece_is_reported_once_written_whole() {
        let mut pool = Pool::new(16, 4);
        let mut q = OutQueue::default();
        q.push_copy(&[b"ab"], &mut pool);
        q.push_shared(Rc::from(&b"cdef"[..]), 7, &mut pool);
        q.push_shared(Rc::from(&b"gh"[..]), 9, &mut pool);
        q.push_shared(Rc::from(&b"--"[..]), UNTIMED, &mut pool);
        q.push_shared(Rc::from(&b"ij"[..]), 11, &mut pool);
        let mut seen = Vec::new();
        let mut w = Trickle { got: Vec::new(), chunk: 64, budget: 5 };
        q.write_observed(&mut w, &mut pool, |t| seen.push(t)).unwrap();
        assert!(seen.is_empty(), "cdef is not written whole yet");
        w.budget = 5;
        q.write_observed(&mut w, &mut pool, |t| seen.push(t)).unwrap();
        assert_eq!(seen, [7, 9], "a keep-alive is not reported");
        // What is dropped unwritten was not delivered.
        q.drop_unstarted(&mut pool);
        assert!(q.is_empty());
        assert_eq!(seen, [7, 9]);
        assert_eq!(w.got, b"abcdefgh--");
    }

    #[test]
    fn dropping_keeps_the_started_piece() {
        let mut pool = Pool::new(16, 4);
        let mut q = OutQueue::default();
        q.push_owned(b"0123456789".to_vec(), &mut pool);
        q.push_owned(b"abcdef".to_vec(), &mut pool);
        let mut w = Trickle { got: Vec::new(), chunk: 4, budget: 4 };
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(q.drop_unstarted(&mut pool), 6);
        assert_eq!(q.len(), 6);
        w.budget = usize::MAX;
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(w.got, b"0123456789");
    }

    #[test]
    fn dropping_keeps_the_payload_of_a_started_frame() {
        let mut pool = Pool::new(16, 4);
        let mut w = Trickle { got: Vec::new(), chunk: 64, budget: 2 };
        // The header is at the end of a coalesced piece that is partly written.
        let mut q = OutQueue::default();
        q.push_copy(&[b"ab", b"H"], &mut pool);
        q.push_payload(b"payload".to_vec(), &mut pool);
        q.push_copy(&[b"next"], &mut pool);
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(q.drop_unstarted(&mut pool), 4);
        w.budget = usize::MAX;
        q.write_to(&mut w, &mut pool).unwrap();
        // The header is written whole, its payload not started.
        w.budget = 3;
        let mut q = OutQueue::default();
        q.push_copy(&[b"ab"], &mut pool);
        q.push_copy(&[b"H"], &mut pool);
        q.push_payload(b"payload".to_vec(), &mut pool);
        q.push_owned(b"next".to_vec(), &mut pool);
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(q.drop_unstarted(&mut pool), 4);
        w.budget = usize::MAX;
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(w.got, b"abHpayloadabHpayload");
        // Nothing started: everything goes.
        let mut q = OutQueue::default();
        q.push_copy(&[b"H"], &mut pool);
        q.push_payload(b"payload".to_vec(), &mut pool);
        assert_eq!(q.drop_unstarted(&mut pool), 8);
        assert!(q.is_empty());
        // Unless the front piece must go out whole (a 101 not yet written), with the payload
        // of a frame whose header ends it.
        let mut q = OutQueue::default();
        q.push_copy(&[b"101", b"H"], &mut pool);
        q.push_payload(b"payload".to_vec(), &mut pool);
        q.push_owned(b"next".to_vec(), &mut pool);
        assert_eq!(q.drop_unstarted_keeping_front(&mut pool), 4);
        let mut w = Trickle { got: Vec::new(), chunk: 64, budget: usize::MAX };
        q.write_to(&mut w, &mut pool).unwrap();
        assert_eq!(w.got, b"101Hpayload");
    }
}
