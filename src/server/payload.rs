//! Large payloads read straight into the message being gathered.
//!
//! A frame's payload normally arrives in the loop's shared read buffer and is copied into the
//! connection's message buffer. Once a large frame's header is in, every byte the core still
//! owes ([`crate::proto::Connection::payload_remaining`]) is payload, so the socket is read
//! directly into the message's spare room and the core unmasks and checks that region in place:
//! one copy (the kernel's) instead of two. For a 1 MiB echo this was the largest cost weir had
//! of its own (see docs/performance.md). The message gets its room as soon as the header is in
//! (`Conn::direct_read_len`), so none of its payload goes through the shared buffer, and the
//! read that ends a frame also takes the next header (`Server::read_payload_in_place`).

use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;

use mio::net::TcpStream;

use crate::debug;
use crate::proto::Event;
use crate::proto::frame::MAX_HEADER_LEN;
use crate::server::api::ConnId;
use crate::server::dispatch::Then;
use crate::server::event_loop::Engine;
use crate::server::slab::Key;
use crate::server::state::ConnState;

impl<D: Default> Engine<'_, D> {
    /// Reads up to `want` payload bytes into the message of `key`; returns whether the socket
    /// may have more (`false`: drained, at EOF or failed).
    ///
    /// When `want` is the rest of the frame, the same read also takes up to a frame header of
    /// what follows into the loop's buffer: the next large message's header comes with the end
    /// of this one, and a read that comes back short says the socket is drained, so no read is
    /// spent to learn it (`WouldBlock`). Nothing after that header is read there, so the next
    /// large message's payload is read in place whole (`Conn::direct_read_len`), none of it
    /// copied out of the loop's buffer.
    pub(super) fn read_payload_in_place(&mut self, key: Key, want: usize) -> bool {
        let Some(conn) = self.core.conns.get_mut(key) else {
            return false;
        };
        let owed = conn.ws.payload_remaining();
        let Some(w) = conn.state.ws() else { return false };
        let msg = w.msg();
        let start = msg.len();
        let want = want.min(msg.capacity() - start);
        let ends_frame = want as u64 == owed;
        // Only plain sockets are read in place (`Conn::direct_read_len`).
        let Some(socket) = conn.socket.plain() else { return false };
        // (Empty only while the loop's buffer is lent out, which never overlaps a read.)
        let tail = self.rbuf.get_mut(..MAX_HEADER_LEN).filter(|_| ends_frame).unwrap_or_default();
        match read_into_spare(socket, msg, want, tail) {
            Ok((0, _)) => {
                conn.eof = true;
                false
            }
            Ok((n, after)) => {
                conn.bytes_in += (n + after) as u64;
                // A short read drained the socket (edge-triggered), as in `on_ready`.
                if n + after < want + tail.len() && !conn.hup {
                    conn.readable = false;
                }
                conn.header_next = ends_frame && n == want && after < MAX_HEADER_LEN;
                self.on_payload_in_place(key, start, n);
                if after > 0 {
                    // As any bytes read after the frame (nothing reads into the loop's buffer
                    // meanwhile: handlers do not read).
                    self.on_bytes(key, after);
                }
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.readable = false;
                false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) => {
                debug!("read failed", peer = conn.peer(), error = e);
                conn.eof = true;
                false
            }
        }
    }

    /// The core's pass over `msg[start..start + n]`, just read: unmasked and checked in place.
    fn on_payload_in_place(&mut self, key: Key, start: usize, n: usize) {
        let core = &mut self.core;
        core.flush_batch_for(key); // as in `on_frames`
        let Some(conn) = core.conns.get_mut(key) else {
            return;
        };
        let now = core.now;
        let ConnState::Ws(w) = &mut conn.state else { return };
        match conn.ws.handle_bytes(&mut w.msg()[start..start + n], now) {
            Ok((_, Some(Event::Message { kind, data, fin }))) => {
                core.stats.bytes_in += data.len() as u64;
                if fin {
                    core.stats.messages_in += 1;
                    let msg = w.take_msg();
                    self.call(self.about(key), Then::Continue, |h, ctx| {
                        h.on_message_owned(ctx, ConnId(key), kind, msg);
                    });
                }
            }
            // Unreachable: every byte read was owed payload, so the core returns it as a piece.
            Ok(_) => {}
            Err(e) => return self.protocol_error(key, e),
        }
        self.core.transmit(key);
    }
}

/// Reads up to `want` bytes from `socket` into the spare capacity of `buf` (at most what it
/// has) and appends them, and, in the same read, up to `tail.len()` bytes after them into
/// `tail`; returns how many went to each. Safe Rust could only read into initialised bytes,
/// i.e. zero the room first; that write over up to a megabyte per read cost 7% of the 1 MiB
/// echo's throughput (median of 5 alternated runs, docs/performance.md), which is what this
/// block buys. It, `signal.rs` and `listen.rs` (SO_REUSEPORT) are the only `unsafe` in weir.
#[allow(unsafe_code)]
fn read_into_spare(
    socket: &TcpStream,
    buf: &mut Vec<u8>,
    want: usize,
    tail: &mut [u8],
) -> io::Result<(usize, usize)> {
    let spare = buf.spare_capacity_mut();
    let want = want.min(spare.len());
    // What goes to `tail` follows what `buf` takes (the caller wants no more than its room).
    let iov = [
        libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: want },
        libc::iovec { iov_base: tail.as_mut_ptr().cast(), iov_len: tail.len() },
    ];
    // SAFETY: readv(2) writes at most `want` bytes into `spare`, which is valid for writes of
    // `spare.len() >= want` bytes and is borrowed mutably from `buf` here, then at most
    // `tail.len()` into `tail`, borrowed mutably too; `iov` holds exactly the 2 entries passed.
    let n = unsafe { libc::readv(socket.as_raw_fd(), iov.as_ptr(), 2) };
    let Ok(n) = usize::try_from(n) else {
        return Err(io::Error::last_os_error());
    };
    let (into_buf, into_tail) = (n.min(want), n.saturating_sub(want));
    // SAFETY: the kernel initialised the first `into_buf <= want` bytes after the old length.
    unsafe { buf.set_len(buf.len() + into_buf) };
    Ok((into_buf, into_tail))
}
