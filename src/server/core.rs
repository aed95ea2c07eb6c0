//! What a handler's [`Context`](crate::server::Context) acts on: the runtime's state apart
//! from the handler (connections, timers, pool, counters, processes) and the operations on it:
//! send (copied, owned, shared, piecewise, masked for a client), stream writes, close, respond,
//! accept a deferred upgrade, connect. The loop itself is in `event_loop.rs`.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Poll, Token};

use crate::proto::connection::{MAX_CONTROL_FRAME_LEN, MessageKind, SendError};
use crate::proto::frame::MAX_HEADER_LEN;
use crate::proto::handshake;
use crate::proto::{CloseCode, Role, State};
use crate::server::api::{ConnId, ConnectRequest, Response, Tag};
use crate::server::batch::{Batch, MAX_BATCH_BYTES, push_server_frame, push_server_frame_rsv};
use crate::server::config::Config;
use crate::server::conn::{Conn, SharedPath};
use crate::server::dispatch::Owner;
use crate::server::pool::Pool;
use crate::server::process::Procs;
use crate::server::random::Random;
use crate::server::slab::{Key, Slab};
use crate::server::state::ConnState;
use crate::server::stats::Stats;
use crate::server::timer::TimerWheel;
use crate::server::transport::Transport;
use crate::{debug, warn};

/// The shared compressor's working buffers grow to the largest message; past this they are
/// freed after it.
const LARGE_MESSAGE: usize = 256 << 10;

/// Below this many queued bytes a pong is queued even while one before it is unwritten.
const PONG_ROOM: usize = 16 << 10;
/// A masked frame's payload up to this size is built in `Core::masked` and copied into the
/// queue (`Core::send_masked`).
const SMALL_MASKED: usize = 1 << 10;

/// The runtime's state, apart from the handler (so a handler can act on it through
/// [`Context`](crate::server::Context) while it runs).
pub struct Core {
    pub(crate) poll: Poll,
    pub(crate) config: Config,
    pub(crate) conns: Slab<Conn>,
    pub(crate) timers: TimerWheel,
    pub(crate) pool: Pool,
    pub(crate) stats: Stats,
    pub(crate) start: Instant,
    pub(crate) now: Duration,
    pub(crate) per_ip: HashMap<IpAddr, u32>,
    /// Connections with output queued by the current batch of work.
    pub(crate) dirty: Vec<Key>,
    /// Connections written once per turn of the loop (`Context::set_coalesce`): a few
    /// tunnels, so a list (not a flag in every connection's slot).
    pub(crate) coalescing: Vec<Key>,
    /// Coalescing connections with output queued in this turn of the loop, written at its end
    /// (`Server::flush_turn`).
    pub(crate) deferred: Vec<Key>,
    pub(crate) draining: bool,
    /// A handler asked the loop to stop.
    pub(crate) stopping: bool,
    /// Masking keys and nonces for outbound connections (opened on first use).
    pub(crate) random: Option<Random>,
    /// Deferred upgrades the handler accepted, with their 101 response.
    pub(crate) accepted: Vec<(Key, Vec<u8>)>,
    /// Connections whose reading the handler resumed.
    pub(crate) resumed: Vec<Key>,
    /// Child processes and their pipes.
    pub(crate) procs: Procs,
    /// Broadcasts to one set gathered in this batch of work, not queued yet (`batch.rs`).
    pub(crate) batch: Option<Batch>,
    /// The compressor shared by every connection with permessage-deflate and no context
    /// takeover (`compress.rs`), made at first use.
    pub(crate) shared_deflate: Option<crate::proto::deflate::Deflater>,
    /// The state that inflates a compressed message on a connection that keeps none between
    /// messages (the shared mode), in the box a connection holds it in, lent to one message at a
    /// time (`state::receiving`): one window and set of tables for the runtime instead of one
    /// made and freed per message.
    pub(crate) spare_inflater: Option<Box<crate::server::state::WsExt>>,
    /// Where a message is compressed for one connection (`send_deflated`), kept while it is no
    /// larger than a pooled buffer.
    pub(crate) deflate_out: Vec<u8>,
    /// Where a small masked frame is built before it is copied into its queue (`send_masked`),
    /// made at the first one: an outbound connection's 64 B message costs a copy, not a pooled
    /// buffer and an iovec entry of its own.
    pub(crate) masked: Vec<u8>,
    /// What the handler is being called about (`dispatch.rs`).
    pub(crate) current: Owner,
    /// The tag `Context::tag_new` gave what the current call makes.
    pub(crate) new_tag: Option<Tag>,
    /// Request paths shared by the connections on them (`Core::shared_path`).
    pub(crate) paths: Vec<SharedPath>,
    /// The TLS listeners' certificate and the dialer of outbound `wss://` connections.
    pub(crate) tls: crate::server::transport::TlsContext,
}

/// At most this many paths are kept to be shared, each of at most `SHARED_PATH_LEN` bytes:
/// at most 8 KiB, however many distinct paths clients ask for.
const SHARED_PATHS: usize = 32;
const SHARED_PATH_LEN: usize = 256;

impl Core {
    /// Nanoseconds since the loop started, read from the clock now (not the turn's `now`: a
    /// broadcast queued and written in one turn takes microseconds, which the delivery
    /// histogram is to see).
    pub(crate) fn clock_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A connection's tag: the one the current call is about keeps its tag once it is gone.
    pub(crate) fn conn_tag(&self, key: Key) -> Tag {
        match (self.conns.get(key), self.current) {
            (Some(c), _) => c.tag,
            (None, Owner::Conn(k, tag)) if k == key => tag,
            _ => Tag::NONE,
        }
    }

    /// A process's tag, likewise.
    pub(crate) fn proc_tag(&self, key: Key) -> Tag {
        match (self.procs.tag(key), self.current) {
            (Some(tag), _) => tag,
            (None, Owner::Proc(k, tag)) if k == key => tag,
            _ => Tag::NONE,
        }
    }

    /// The tag of a connection or process made now: the one `Context::tag_new` gave, or the
    /// tag of what the current call is about.
    pub(crate) fn inherited_tag(&self) -> Tag {
        self.new_tag.unwrap_or(match self.current {
            Owner::Loop => Tag::NONE,
            Owner::Conn(k, _) => self.conn_tag(k),
            Owner::Proc(k, _) => self.proc_tag(k),
        })
    }

    /// `path` as a connection keeps it for its log lines: shared with the connections on the
    /// same path (an idle connection on `/ws` holds no copy of its own: 32 bytes of heap each),
    /// from a table of at most `SHARED_PATHS` kept while some connection uses them.
    pub(crate) fn shared_path(&mut self, path: &str) -> SharedPath {
        if let Some(p) = self.paths.iter().find(|p| &****p == path) {
            return Rc::clone(p);
        }
        let p: SharedPath = Rc::new(Box::from(path));
        if path.len() <= SHARED_PATH_LEN {
            if self.paths.len() < SHARED_PATHS {
                self.paths.push(Rc::clone(&p));
            } else if let Some(unused) = self.paths.iter_mut().find(|p| Rc::strong_count(p) == 1) {
                *unused = Rc::clone(&p);
            }
        }
        p
    }

    pub(crate) fn respond(&mut self, key: Key, r: &Response) {
        let extra: Vec<(&str, &[u8])> =
            r.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let bytes = write_with(|out| handshake::write_reject(out, r.status, &extra, &r.body));
        self.queue_response(key, r.status, &bytes);
    }

    pub(super) fn queue_response(&mut self, key: Key, status: u16, bytes: &[u8]) {
        self.flush_batch_for(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if status >= 400 {
            Stats::count(&mut self.stats.handshakes_rejected, status);
        }
        conn.out.push_copy(&[bytes], &mut self.pool);
        conn.state.answered(&mut self.pool);
        self.mark_dirty(key);
    }

    pub(crate) fn accept_deferred(
        &mut self,
        key: Key,
        protocol: Option<&str>,
        headers: &[(String, Vec<u8>)],
    ) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        // Taken: the upgrade is answered once (a `reject` after this does nothing).
        let ConnState::Deferred(d) = &mut conn.state else { return };
        let ws_key = std::mem::take(&mut d.key);
        if ws_key.is_empty() {
            return;
        }
        let mut extra: Vec<(&str, &[u8])> =
            headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        // RFC 7692 §5: the offer chosen at the upgrade, agreed now (the WebSocket takes the
        // state when it opens, `Server::open`).
        let answer = d.pmd.as_mut().and_then(|p| p.answer.take());
        if let Some(value) = &answer {
            extra.push(("Sec-WebSocket-Extensions", value.as_bytes()));
        }
        let bytes =
            write_with(|out| handshake::write_accept(out, ws_key.as_bytes(), protocol, &extra));
        self.accepted.push((key, bytes));
    }

    pub(super) fn mark_dirty(&mut self, key: Key) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Moves the control frames a connection owes (pong, ping, close) into its queue. While a
    /// pong queued before is unwritten and the queue holds `PONG_ROOM` or more, they stay owed:
    /// RFC 6455 §5.5.3 lets a pong answer only the newest ping, and the core keeps one, so a
    /// peer that pings and never reads costs at most `PONG_ROOM` of queue and one owed pong,
    /// however many it sends. Pings that come together to a peer that reads each get their
    /// pong (Autobahn 2.10). The loop calls this again once that pong is written (`settle`).
    /// Control frames count against `--queue-cap` too.
    pub(crate) fn transmit(&mut self, key: Key) {
        self.flush_batch_for(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut frame = [0u8; MAX_CONTROL_FRAME_LEN];
        let mut any = false;
        // Runs after every event: only when a frame is owed does a client draw a masking key.
        while conn.ws.wants_transmit()
            && (conn.bytes_out >= conn.pong_end || conn.out.len() < PONG_ROOM)
        {
            let mask = match (conn.ws.role(), self.random.as_mut()) {
                (Role::Client, Some(r)) => r.mask_key(),
                _ => [0; 4],
            };
            let Some(n) = conn.ws.poll_transmit(&mut frame, mask) else { break };
            conn.out.push_copy(&[&frame[..n]], &mut self.pool);
            match frame[0] & 0x0F {
                0xA => conn.pong_end = conn.bytes_out + conn.out.len() as u64,
                0x8 => {
                    // The code is the first two payload bytes, after a 2-byte header and, from
                    // a client, a 4-byte mask. Counted once the frame is written (`settle`).
                    let at = if frame[1] & 0x80 != 0 { 6 } else { 2 };
                    conn.close_queued = if n >= at + 2 {
                        u16::from_be_bytes([frame[at] ^ mask[0], frame[at + 1] ^ mask[1]])
                    } else {
                        CloseCode::NO_STATUS.0
                    };
                }
                _ => {}
            }
            any = true;
        }
        if !any {
            return;
        }
        let over = conn.out.held() > self.config.queue_cap
            && conn.state.is_ws()
            && conn.ws.state() == State::Open;
        self.mark_dirty(key);
        if over {
            self.slow_reader(key);
        }
    }

    pub(crate) fn send(
        &mut self,
        key: Key,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<(), SendError> {
        self.send_frame(key, kind, data, true)
    }

    /// One frame of a message (`fin` ends it), copied into the queue.
    pub(crate) fn send_frame(
        &mut self,
        key: Key,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.flush_batch_for(key);
        if fin {
            if let Some(r) = self.send_deflated(key, kind, data) {
                return r;
            }
        }
        let big = data.len() > self.pool.size();
        let conn = open_conn(&mut self.conns, key)?;
        if conn.ws.role() == Role::Client {
            return self.send_masked(key, kind, data, fin);
        }
        let (head, n) = conn.ws.encode_data_header(kind, data.len() as u64, fin)?;
        if big {
            conn.out.push_copy(&[&head[..n]], &mut self.pool);
            conn.out.push_payload(data.to_vec(), &mut self.pool);
        } else {
            conn.out.push_copy(&[&head[..n], data], &mut self.pool);
        }
        self.queued(key, 1)
    }

    pub(crate) fn send_owned(
        &mut self,
        key: Key,
        kind: MessageKind,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        self.flush_batch_for(key);
        if let Some(r) = self.send_deflated(key, kind, &data) {
            // Sent compressed: the message's buffer (a pooled one, for a received message) is
            // used again.
            self.pool.give(data);
            return r;
        }
        let conn = open_conn(&mut self.conns, key)?;
        if conn.ws.role() == Role::Client {
            return self.send_masked(key, kind, &data, true);
        }
        let (head, n) = conn.ws.encode_data_header(kind, data.len() as u64, true)?;
        conn.out.push_copy(&[&head[..n]], &mut self.pool);
        conn.out.push_payload(data, &mut self.pool);
        self.queued(key, 1)
    }

    /// Queues one message to many connections, its frame encoded once and shared by every
    /// queue; returns how many it was queued to.
    pub(crate) fn broadcast(
        &mut self,
        ids: impl IntoIterator<Item = ConnId>,
        kind: MessageKind,
        data: &[u8],
    ) -> usize {
        let mut frame = Vec::with_capacity(MAX_HEADER_LEN + data.len());
        let start = push_server_frame(&mut frame, kind, data);
        let payload = [(start, frame.len())];
        let frame: Rc<[u8]> = Rc::from(frame);
        let at = self.clock_ns();
        let mut packed = None;
        ids.into_iter()
            .filter(|id| {
                self.send_shared_deflated(id.0, kind, &frame, &payload, &mut packed, at).is_ok()
            })
            .count()
    }

    /// Queues whole messages of `kind` whose server frames, headers included, are `piece`,
    /// shared by every queue it goes to (a broadcast, or a batch of them: `batch.rs`).
    /// `payloads` are where each message's payload lies in `piece`: a client masks every frame
    /// with its own key, so it is sent those one by one instead. `queued_at` ([`Core::clock_ns`])
    /// starts the delivery histogram's clock.
    pub(crate) fn send_shared(
        &mut self,
        key: Key,
        kind: MessageKind,
        piece: &Rc<[u8]>,
        payloads: &[(usize, usize)],
        queued_at: u64,
    ) -> Result<(), SendError> {
        self.flush_batch_for(key);
        let conn = open_conn(&mut self.conns, key)?;
        if conn.ws.tx_is_fragmenting() {
            // RFC 6455 §5.4: a message's fragments are not interleaved with another message.
            return Err(SendError::Fragmentation);
        }
        if conn.ws.role() == Role::Client {
            for &(start, end) in payloads {
                self.send_masked(key, kind, piece.get(start..end).unwrap_or_default(), true)?;
            }
            return Ok(());
        }
        // The headers are in the piece; this checks and records the sending state.
        conn.ws.encode_data_header(kind, 0, true)?;
        conn.out.push_shared(Rc::clone(piece), queued_at, &mut self.pool);
        self.queued(key, payloads.len() as u64)
    }

    /// A whole message compressed (RFC 7692 §7.2.1) when the connection agreed permessage-deflate
    /// and it is long enough; `None`: send it as it is.
    fn send_deflated(
        &mut self,
        key: Key,
        kind: MessageKind,
        data: &[u8],
    ) -> Option<Result<(), SendError>> {
        // Without --compression no connection has it: no second look-up on the message path.
        let c = self.config.compression?;
        let conn = open_conn(&mut self.conns, key).ok()?;
        // No state: compression was not agreed, or it keeps none (`Pmd::transient`).
        if !conn.ws.compression_agreed() || data.len() < c.min_size || conn.ws.tx_is_fragmenting() {
            return None;
        }
        // The runtime's scratch buffer: a short message's compressed form is copied into a
        // pooled queue buffer from it, so neither costs an allocation.
        let mut packed = std::mem::take(&mut self.deflate_out);
        packed.clear();
        let shared = self
            .shared_deflate
            .get_or_insert_with(|| crate::proto::deflate::Deflater::new(15, false));
        match conn.state.ws().and_then(|w| w.pmd()).and_then(|p| p.deflate.as_mut()) {
            // Its own context, in the shared compressor's working buffers.
            Some(own) => own.compress_message_using(shared, data, &mut packed),
            None => shared.compress_message(data, &mut packed),
        }
        if data.len() > LARGE_MESSAGE {
            shared.release();
        }
        self.stats.compressed_messages += 1;
        if conn.ws.role() == Role::Client {
            // Masked with a fresh key (RFC 6455 §5.3), so framed in a buffer of its own.
            let mask = self.random.as_mut().map_or([0; 4], Random::mask_key);
            let mut buf = vec![0; packed.len() + MAX_HEADER_LEN];
            let r = conn.ws.send_compressed(kind, &packed, &mut buf, mask);
            if packed.capacity() <= self.pool.size() {
                self.deflate_out = packed;
            }
            return Some(match r {
                Ok(n) => {
                    buf.truncate(n);
                    conn.out.push_owned(buf, &mut self.pool);
                    self.queued(key, 1)
                }
                Err(e) => Err(e),
            });
        }
        let (head, n) = match conn.ws.encode_compressed_header(kind, packed.len() as u64) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        if n + packed.len() <= self.pool.size() {
            conn.out.push_copy(&[&head[..n], &packed], &mut self.pool);
            if packed.capacity() <= self.pool.size() {
                self.deflate_out = packed;
            }
        } else {
            conn.out.push_copy(&[&head[..n]], &mut self.pool);
            conn.out.push_payload(packed, &mut self.pool);
        }
        Some(self.queued(key, 1))
    }

    /// A client's frame: masked with a fresh key, so copied into a buffer of its own.
    fn send_masked(
        &mut self,
        key: Key,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        let mask = self.random.as_mut().map_or([0; 4], Random::mask_key);
        if data.len() <= SMALL_MASKED {
            // Built in the scratch (sized once, never zeroed again), copied into the queue's
            // leased buffer beside the frames before it.
            let mut scratch = std::mem::take(&mut self.masked);
            scratch.resize(SMALL_MASKED + crate::proto::frame::MAX_HEADER_LEN, 0);
            let sent = open_conn(&mut self.conns, key).and_then(|conn| {
                let n = conn.ws.send(kind, data, fin, &mut scratch, mask)?;
                conn.out.push_copy(&[&scratch[..n]], &mut self.pool);
                Ok(())
            });
            self.masked = scratch;
            sent?;
            return self.queued(key, 1);
        }
        let len = data.len() + crate::proto::frame::MAX_HEADER_LEN;
        let mut buf =
            if len <= self.pool.size() { self.pool.take() } else { Vec::with_capacity(len) };
        buf.resize(len, 0);
        let conn = open_conn(&mut self.conns, key)?;
        let n = conn.ws.send(kind, data, fin, &mut buf, mask)?;
        buf.truncate(n);
        conn.out.push_owned(buf, &mut self.pool);
        self.queued(key, 1)
    }

    /// `n` messages were queued: count them, and close the connection if it is now a slow
    /// reader.
    fn queued(&mut self, key: Key, n: u64) -> Result<(), SendError> {
        self.stats.messages_out += n;
        self.mark_dirty(key);
        let cap = self.config.queue_cap;
        if self.conns.get(key).is_some_and(|c| c.out.held() > cap) {
            self.slow_reader(key);
            return Err(SendError::Closing);
        }
        Ok(())
    }

    /// A WebSocket connection's queue passed the cap: what it has not started to receive is
    /// dropped and it gets a close frame (1008). It is not read any more: a reader that slow
    /// would not see its close frame in time to answer it, and reading (and discarding) what
    /// it sends until the close timeout would only cost. What is left is written, then this
    /// end's FIN, and the connection closes when the peer closes its side or at the close
    /// timeout; unwritten, the send timeout (or the close timeout) ends it.
    pub(crate) fn slow_reader(&mut self, key: Key) {
        let cap = self.config.queue_cap;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // On a connection that has written nothing yet, the front piece holds its 101 (a
        // handler's `on_open` queued past the cap): that goes first.
        let dropped = if conn.bytes_out == 0 {
            conn.out.drop_unstarted_keeping_front(&mut self.pool)
        } else {
            conn.out.drop_unstarted(&mut self.pool)
        };
        // A pong dropped unwritten no longer holds back the close frame.
        conn.pong_end = conn.pong_end.min(conn.bytes_out + conn.out.len() as u64);
        conn.cut = true;
        self.stats.slow_reader_disconnects += 1;
        warn!(
            "slow reader",
            id = ConnId(key),
            peer = conn.peer(),
            queued = dropped + conn.out.len(),
            cap = cap
        );
        let _ = conn.ws.close(CloseCode::POLICY_VIOLATION, "slow reader", self.now);
        conn.set_close(CloseCode::POLICY_VIOLATION.0, "slow reader");
        self.transmit(key);
    }

    /// Queues the answer to a request whose handler deferred it. Kept alive, the requests
    /// pipelined behind it are served once it drains (`ConnState::answer_deferred`); else the
    /// connection closes after it.
    pub(crate) fn respond_deferred(&mut self, key: Key, r: &Response) -> bool {
        let Some(conn) = self.conns.get_mut(key) else { return false };
        let Some((head, after)) = conn.state.answer_deferred(self.draining, &mut self.pool) else {
            return false;
        };
        if after == handshake::After::KeepAlive {
            // The next request's head is awaited within the handshake timeout, as after an
            // answer given at once.
            conn.ws = crate::proto::Connection::new(Role::Server, self.config.ws, self.now);
        }
        let extra: Vec<(&str, &[u8])> =
            r.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let mut bytes =
            write_with(|out| handshake::write_http_response(out, r.status, &extra, &r.body, after));
        // RFC 9110 §9.3.2: the answer to HEAD is the head of the answer to GET.
        if head && !matches!(r.status, 100..=199 | 204 | 304) {
            bytes.truncate(bytes.len().saturating_sub(r.body.len()));
        }
        conn.out.push_copy(&[&bytes], &mut self.pool);
        if r.status >= 400 {
            Stats::count(&mut self.stats.handshakes_rejected, r.status);
        }
        debug!("http", id = ConnId(key), status = r.status, deferred = true);
        self.mark_dirty(key);
        true
    }

    pub(crate) fn stream_write(&mut self, key: Key, bytes: &[u8]) -> Result<(), SendError> {
        self.flush_batch_for(key);
        let conn = stream_conn(&mut self.conns, key)?;
        conn.out.push_copy(&[bytes], &mut self.pool);
        self.streamed(key)
    }

    pub(crate) fn stream_write_shared(
        &mut self,
        key: Key,
        bytes: &Rc<[u8]>,
        queued_at: u64,
    ) -> Result<(), SendError> {
        self.flush_batch_for(key);
        let conn = stream_conn(&mut self.conns, key)?;
        conn.out.push_shared(Rc::clone(bytes), queued_at, &mut self.pool);
        self.streamed(key)
    }

    /// Bytes were queued on a streamed response: a client past the cap is dropped.
    fn streamed(&mut self, key: Key) -> Result<(), SendError> {
        self.mark_dirty(key);
        let cap = self.config.queue_cap;
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.out.held() <= cap {
            return Ok(());
        }
        conn.out.drop_unstarted(&mut self.pool);
        conn.eof = true;
        // A kept-alive body cut short: no request after it is answered.
        conn.state.drop_body_owed();
        self.stats.slow_reader_disconnects += 1;
        warn!("slow reader (stream)", id = ConnId(key), peer = conn.peer(), cap = cap);
        Err(SendError::Closing)
    }

    pub(crate) fn close(&mut self, key: Key, code: CloseCode, reason: &str) {
        self.flush_batch_for(key);
        let now = self.now;
        let Ok(conn) = open_conn(&mut self.conns, key) else {
            return;
        };
        // The code reported for the connection is the one the peer answers with, or 1006 if
        // no close frame comes back (RFC 6455 §7.1.5): a close this end starts is not a
        // failure of this end's, which is recorded where it happens.
        let _ = conn.ws.close(code, reason, now);
        self.transmit(key);
    }
}

/// Opens an outbound connection: non-blocking connect, the upgrade request queued.
impl Core {
    pub(crate) fn connect(&mut self, req: ConnectRequest, tls: Option<&str>) -> io::Result<Key> {
        if self.random.is_none() {
            self.random = Some(Random::new()?);
        }
        let mut nonce = [0u8; 16];
        if let Some(r) = self.random.as_mut() {
            r.fill(&mut nonce)?;
        }
        let handshake = crate::proto::handshake::ClientHandshake::new(nonce);
        let protocols: Vec<&str> = req.protocols.iter().map(String::as_str).collect();
        let mut headers: Vec<(&str, &[u8])> =
            req.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        // RFC 7692 §5: offered with --compression; the answer is checked in `outbound.rs`.
        let offer = self.config.compression.map(|c| c.offer());
        if let Some(value) = &offer {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case("sec-websocket-extensions"));
            headers.push(("Sec-WebSocket-Extensions", value.as_bytes()));
        }
        let request = write_with(|out| {
            handshake.write_request(out, &req.host, &req.target, &protocols, &headers)
        });
        let socket = TcpStream::connect(req.addr)?;
        let socket = match tls {
            Some(name) => Transport::dialled(&mut self.tls, socket, name)?,
            None => Transport::Plain(socket),
        };
        let mut ws = self.config.ws;
        ws.handshake_timeout = req.timeout.or(ws.handshake_timeout);
        let state = ConnState::connecting(handshake, req.protocols, &self.config.http);
        let mut conn = Conn::new(socket, req.addr, Role::Client, ws, state, self.now);
        conn.path = Some(self.shared_path(&req.target));
        conn.tag = self.inherited_tag();
        conn.out.push_copy(&[&request], &mut self.pool);
        let key = self.add_outbound(conn)?;
        debug!("connecting", id = ConnId(key), addr = req.addr, target = req.target);
        Ok(key)
    }
}

impl Core {
    /// Takes in an outbound connection whose connect is under way: a slot, its socket in the
    /// poll, and a first settle (which waits for the connect to finish).
    pub(crate) fn add_outbound(&mut self, conn: Conn) -> io::Result<Key> {
        let key = self.conns.insert(conn);
        let Some(conn) = self.conns.get_mut(key) else {
            return Err(io::ErrorKind::Other.into());
        };
        if let Err(e) = self.poll.registry().register(
            &mut conn.socket,
            Token(key.to_token()),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            if let Some(mut c) = self.conns.remove(key) {
                c.out.clear(&mut self.pool);
            }
            return Err(e);
        }
        self.mark_dirty(key);
        Ok(key)
    }
}

fn stream_conn(conns: &mut Slab<Conn>, key: Key) -> Result<&mut Conn, SendError> {
    match conns.get_mut(key) {
        // A body of a given length is written even to a client that half-closed.
        Some(c) if c.takes_stream_writes() => Ok(c),
        _ => Err(SendError::NotOpen),
    }
}

fn open_conn(conns: &mut Slab<Conn>, key: Key) -> Result<&mut Conn, SendError> {
    match conns.get_mut(key) {
        Some(c) if c.state.is_ws() => Ok(c),
        _ => Err(SendError::NotOpen),
    }
}

/// Runs a writer that fills a caller buffer, growing the buffer once if it was too small.
pub(super) fn write_with(
    f: impl Fn(&mut [u8]) -> Result<usize, crate::proto::BufferTooSmall>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return buf;
            }
            Err(e) if e.needed > buf.len() => buf.resize(e.needed, 0),
            Err(_) => return Vec::new(),
        }
    }
}

/// Broadcasts gathered for one set (`batch.rs`).
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
        if self.batch.as_ref().is_some_and(|b| !b.takes(set, kind)) {
            self.flush_batch();
        }
        if data.len() >= MAX_BATCH_BYTES {
            // Nothing to gain from gathering it, and a copy to lose. (Sending it to a member
            // queues what is gathered first.)
            self.broadcast(set.iter().copied(), kind, data);
            return set.len();
        }
        if self.batch.is_none() {
            let at = self.clock_ns();
            self.batch = Some(Batch::new(set, kind, at));
        }
        if self.batch.as_mut().is_some_and(|b| b.push(data)) {
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
    /// (Inlined: the loop calls it several times per message, and there is rarely a batch.)
    #[inline]
    pub(crate) fn flush_batch(&mut self) {
        if self.batch.is_some() {
            self.queue_batch();
        }
    }

    fn queue_batch(&mut self) {
        let Some(b) = self.batch.take() else { return };
        let piece: Rc<[u8]> = Rc::from(b.frames);
        // With permessage-deflate, compressed once for every member that shares the compressor.
        let mut packed = None;
        for id in b.set.iter() {
            let _ =
                self.send_shared_deflated(id.0, b.kind, &piece, &b.marks, &mut packed, b.queued_at);
        }
    }
}

/// Whether a WebSocket compresses with a compressor of its own (a context kept, or a small
/// window).
fn own_compressor(state: &ConnState) -> bool {
    let ConnState::Ws(w) = state else { return false };
    w.ext.as_ref().and_then(|e| e.pmd.as_ref()).is_some_and(|p| p.deflate.is_some())
}

/// How shared frames go to one connection.
enum Shared {
    /// As they are: it did not agree permessage-deflate, or no message is long enough.
    Plain,
    /// Compressed by the shared compressor (no context, 32 KiB window): the same bytes for every
    /// such connection, so compressed once.
    Packed,
    /// Compressed by its own compressor (its context, or a smaller window), one by one.
    Own,
}

impl Core {
    /// Queues whole server frames, shared (`Core::send_shared`), to `key`: as they are, or
    /// compressed when it agreed permessage-deflate. The shared compressor's form is made once,
    /// at the first connection that takes it, and kept in `packed` for the others: a broadcast
    /// to many connections with the same parameters is compressed once.
    pub(crate) fn send_shared_deflated(
        &mut self,
        key: Key,
        kind: MessageKind,
        piece: &Rc<[u8]>,
        payloads: &[(usize, usize)],
        packed: &mut Option<Rc<[u8]>>,
        at: u64,
    ) -> Result<(), SendError> {
        let how = match (self.config.compression, self.conns.get(key)) {
            (Some(c), Some(conn)) if conn.ws.compression_agreed() => {
                if !payloads.iter().any(|&(s, e)| e - s >= c.min_size) {
                    Shared::Plain
                } else if conn.ws.role() == Role::Client || own_compressor(&conn.state) {
                    Shared::Own
                } else {
                    Shared::Packed
                }
            }
            _ => Shared::Plain,
        };
        match how {
            Shared::Plain => self.send_shared(key, kind, piece, payloads, at),
            Shared::Packed => {
                let p = match packed {
                    Some(p) => Rc::clone(p),
                    None => Rc::clone(packed.insert(self.pack(kind, piece, payloads))),
                };
                self.send_shared(key, kind, &p, payloads, at)
            }
            Shared::Own => {
                for &(start, end) in payloads {
                    self.send(key, kind, piece.get(start..end).unwrap_or_default())?;
                }
                Ok(())
            }
        }
    }

    /// The shared compressor's frames for the messages at `payloads` in `piece`: each at least
    /// `--compression-min-size` long compressed (RSV1 set, RFC 7692 §6), the others as they
    /// are.
    fn pack(&mut self, kind: MessageKind, piece: &[u8], payloads: &[(usize, usize)]) -> Rc<[u8]> {
        let min = self.config.compression.map_or(usize::MAX, |c| c.min_size);
        let deflater = self
            .shared_deflate
            .get_or_insert_with(|| crate::proto::deflate::Deflater::new(15, false));
        let mut out = Vec::with_capacity(piece.len() / 2 + 64);
        let mut z = Vec::new();
        for &(start, end) in payloads {
            let data = piece.get(start..end).unwrap_or_default();
            let (rsv, payload) = if data.len() < min {
                (0, data)
            } else {
                z.clear();
                deflater.compress_message(data, &mut z);
                self.stats.compressed_messages += 1;
                (0b100, &z[..])
            };
            push_server_frame_rsv(&mut out, kind, payload, rsv);
        }
        Rc::from(out)
    }
}
