//! The poll loop: accept until `WouldBlock`, drain each socket until `WouldBlock` or its read
//! budget, run due timers, flush what handlers queued, and bound the work of every wake-up so
//! one busy peer cannot starve the others.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::proto::frame::MAX_HEADER_LEN;
use crate::proto::{CloseCode, Event, ProtocolError, Role, State, Timeout};
use crate::server::api::{ConnId, ConnectError, Tag};
use crate::server::config::Config;
use crate::server::conn::{At, Conn};
use crate::server::core::Core;
use crate::server::data::ConnData;
use crate::server::dispatch::{Owner, Then};
use crate::server::handler::{Context, Handler};
use crate::server::pool::Pool;
use crate::server::process::{Procs, is_process_token};
use crate::server::signal::Signals;
use crate::server::slab::{Key, Slab};
use crate::server::state;
use crate::server::state::{ConnState, PIPELINE_OUT_MAX, Tcp};
use crate::server::stats::Stats;
use crate::server::timer::TimerWheel;
use crate::server::transport::Transport;
use crate::{debug, info, warn};

/// Tokens below 2^32 are the loop's own sources; connection tokens are at or above 2^32 with
/// bit 63 clear, and the tokens of child-process pipes have bit 63 set (`process.rs`).
const SIGNAL_TOKEN: Token = Token(0);
const WAKER_TOKEN: Token = Token(1);
const LISTENER_BASE: usize = 2;
/// The size of the loop's one read buffer.
const READ_BUFFER: usize = 256 << 10;
/// Reads per connection per wake-up; a connection with more to read waits for the next turn.
const READS_PER_WAKE: usize = 16;
/// The most bytes read from one connection in one turn of the loop (see `on_ready`).
const TURN_BYTES: usize = 256 << 10;
/// A coalescing connection's queue at which it is written at once, not at the end of the turn:
/// a few full TLS records (16 KiB each) are as good as one write gets, and large messages are
/// not held back while the turn reads on.
const COALESCE_BYTES: usize = 64 << 10;
/// Accepts per listener per wake-up.
const ACCEPTS_PER_WAKE: usize = 256;
/// How long accepting pauses after the process runs out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one "accept failed" line per this long.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);

/// A server: listeners, the loop, and the application (`H`, with its data per connection
/// `D`: see [`Context::data`]).
pub struct Server<H: ?Sized, D = ()> {
    pub(super) core: Core,
    /// The handler's data per connection.
    pub(super) data: ConnData<D>,
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    signals: Option<Signals>,
    waker: Arc<Waker>,
    /// The one read buffer: every read is processed before the next, and a connection keeps
    /// only what it must (a partial head or message) in its own storage.
    pub(super) rbuf: Box<[u8]>,
    /// Connections that used their read budget and may have more to read.
    pending: Vec<Key>,
    /// The batch of `pending` being served (kept to reuse its storage: no allocation per turn).
    serving: Vec<Key>,
    accept_paused: bool,
    accept_retry_at: Option<Duration>,
    /// When "accept failed" was last logged, and the failures since (not logged).
    accept_logged_at: Option<Duration>,
    accept_failures: u64,
    drain_deadline: Option<Duration>,
    /// When the handler's next tick is due.
    next_tick: Option<Duration>,
    expired: Vec<u64>,
    /// Last, so that a `Server<H, D>` is also an `Engine` (`H` unsized to `dyn Handler<D>`):
    /// the loop is compiled once for every application, not once per `H`.
    pub(super) handler: H,
}

/// The server with its application behind `dyn Handler<D>`: what the loop's own methods are
/// written for, so the binary holds one copy of the runtime whatever applications it has
/// (a handler call costs one indirect call).
pub(super) type Engine<'h, D> = Server<dyn Handler<D> + 'h, D>;

/// What the operator reads when `addr` cannot be bound: with the way out when another
/// process has the port.
fn bind_failure(addr: SocketAddr, e: &io::Error, reuse_port: bool) -> String {
    if e.kind() != ErrorKind::AddrInUse {
        return format!("{addr}: {e}");
    }
    let hint = if reuse_port {
        "another process, or another user's, has it without --reuse-port"
    } else {
        "another process has it; weir processes share a port only when each is started with \
         --reuse-port"
    };
    format!("{addr}: {e} ({hint})")
}

impl<D: Default, H: Handler<D>> Server<H, D> {
    /// Binds every listen address and prepares the loop.
    ///
    /// # Errors
    /// An address cannot be bound, or the poll or signal pipe cannot be made.
    pub fn bind(config: Config, handler: H) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let tls = crate::server::transport::TlsContext::new(&config)?;
        for (i, addr) in config.listen.iter().chain(&config.listen_tls).enumerate() {
            // The error names the address, for the operator's "cannot listen" line.
            let mut l = crate::server::listen::bind(*addr, config.reuse_port).map_err(|e| {
                io::Error::new(e.kind(), bind_failure(*addr, &e, config.reuse_port))
            })?;
            poll.registry().register(&mut l, Token(LISTENER_BASE + i), Interest::READABLE)?;
            addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let signals = if config.handle_signals {
            let mut s = Signals::install()?;
            // SIGHUP re-reads the TLS certificate (and is not the end of the process).
            s.handle_reload()?;
            poll.registry().register(s.source(), SIGNAL_TOKEN, Interest::READABLE)?;
            Some(s)
        } else {
            None
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let start = Instant::now();
        let size = config.read_buffer_size.max(1024);
        // The loop's one read buffer: large, since there is only one (fewer read calls for
        // large messages); what a connection leases stays at `read_buffer_size`.
        let read_size = size.max(READ_BUFFER);
        Ok(Self {
            core: Core {
                poll,
                conns: Slab::with_capacity(1024),
                timers: TimerWheel::standard(Duration::ZERO),
                pool: Pool::new(size, 1024),
                stats: Stats::default(),
                start,
                now: Duration::ZERO,
                per_ip: HashMap::new(),
                dirty: Vec::new(),
                coalescing: Vec::new(),
                deferred: Vec::new(),
                draining: false,
                stopping: false,
                random: None,
                accepted: Vec::new(),
                resumed: Vec::new(),
                procs: Procs::new(!config.handle_signals),
                batch: None,
                shared_deflate: None,
                spare_inflater: None,
                deflate_out: Vec::new(),
                masked: Vec::new(),
                current: Owner::Loop,
                new_tag: None,
                paths: Vec::new(),
                tls,
                config,
            },
            data: ConnData::default(),
            listeners,
            addrs,
            signals,
            waker,
            rbuf: vec![0u8; read_size].into_boxed_slice(),
            pending: Vec::new(),
            serving: Vec::new(),
            accept_paused: false,
            accept_retry_at: None,
            accept_logged_at: None,
            accept_failures: 0,
            drain_deadline: None,
            next_tick: None,
            expired: Vec::new(),
            handler,
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// A handle another thread can use to wake the loop; the handler's `on_wake` runs then.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Runs until a graceful shutdown completes (signals), a handler stops it, or forever.
    ///
    /// # Errors
    /// The poll itself fails.
    pub fn run(mut self) -> io::Result<()> {
        self.run_until_stopped()
    }

    /// Gives the application back (after [`Server::run_until_stopped`]).
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// As [`Server::run`], keeping the server so the application can be taken back after.
    ///
    /// # Errors
    /// The poll itself fails.
    pub fn run_until_stopped(&mut self) -> io::Result<()> {
        let engine: &mut Engine<'_, D> = self;
        engine.run_loop()
    }
}

impl<D: Default> Engine<'_, D> {
    /// [`Server::run_until_stopped`], compiled once.
    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let plain = self.core.config.listen.len();
        for (i, addr) in self.addrs.iter().enumerate() {
            info!("listening", addr = addr, tls = i >= plain);
        }
        self.call(Owner::Loop, Then::Flush, |h, ctx| h.on_start(ctx));
        self.next_tick = self.handler.tick_interval().map(|t| self.core.now + t);
        // A turn's log lines go out in one write, before the loop waits again (and when it ends).
        crate::log::flush();
        crate::log::batch();
        let _flush = FlushOnDrop;
        loop {
            // The turn's writes to coalescing connections (each in one write), before anything
            // else: nothing queued waits out the poll or is lost at a stop.
            self.flush_turn();
            if self.core.stopping {
                return Ok(());
            }
            if self.core.batch.is_some() || !self.core.dirty.is_empty() {
                // Every path that runs the handler ends with this; a guard, so that nothing
                // gathered or queued waits out the poll.
                self.flush_dirty();
            }
            let timeout = self.poll_timeout();
            crate::log::flush();
            match self.core.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            self.core.now = self.core.start.elapsed();
            for event in events.iter() {
                match event.token() {
                    SIGNAL_TOKEN => {
                        if self.on_signal() {
                            warn!(
                                "second signal: exiting now",
                                connections = self.core.conns.len()
                            );
                            return Ok(());
                        }
                    }
                    WAKER_TOKEN => self.call(Owner::Loop, Then::Flush, |h, ctx| h.on_wake(ctx)),
                    Token(t) if t < 1 << 32 => self.accept(t - LISTENER_BASE),
                    Token(t) if is_process_token(t) => self.on_process_event(t, event),
                    Token(t) => {
                        let key = Key::from_token(t);
                        let Some(conn) = self.core.conns.get_mut(key) else {
                            continue;
                        };
                        conn.readable |=
                            event.is_readable() || event.is_read_closed() || event.is_error();
                        conn.writable |= event.is_writable() || event.is_error();
                        conn.hup |= event.is_read_closed() || event.is_error();
                        self.on_ready(key);
                    }
                }
            }
            std::mem::swap(&mut self.pending, &mut self.serving);
            let mut batch = std::mem::take(&mut self.serving);
            for key in batch.drain(..) {
                if let Some(c) = self.core.conns.get_mut(key) {
                    c.scheduled = false;
                }
                self.on_ready(key);
            }
            self.serving = batch;
            self.run_processes();
            self.run_timers();
            // The handler is asked for its interval only when a tick is due (not every turn).
            if self.next_tick.is_some_and(|due| self.core.now >= due) {
                if let Some(every) = self.handler.tick_interval() {
                    self.next_tick = Some(self.core.now + every);
                    self.call(Owner::Loop, Then::Flush, |h, ctx| h.on_tick(ctx));
                }
            }
            if self.accept_paused && self.accept_retry_at.is_some_and(|t| self.core.now >= t) {
                self.resume_accepting();
            }
            if self.core.draining {
                if self.core.conns.is_empty() && self.core.procs.is_empty() {
                    info!("shutdown complete");
                    return Ok(());
                }
                if self.drain_deadline.is_some_and(|d| self.core.now >= d) {
                    warn!(
                        "shutdown timeout: closing the rest",
                        connections = self.core.conns.len(),
                        processes = self.core.procs.len()
                    );
                    self.core.procs.kill_all();
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.pending.is_empty() || self.core.procs.has_pending() {
            return Some(Duration::ZERO);
        }
        let now = self.core.now;
        let mut next = self.core.timers.next_expiry();
        for t in [
            self.accept_retry_at.filter(|_| self.accept_paused),
            self.drain_deadline,
            self.next_tick,
            self.core.procs.next_due(),
        ] {
            next = match (next, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        // Round up to the next millisecond so a sub-millisecond wait does not spin.
        next.map(|t| {
            t.saturating_sub(now).max(Duration::from_millis(1)).min(Duration::from_secs(60))
        })
    }

    /// A signal: a child's exit is reaped; the first stop starts the drain, a second (returns
    /// true) exits at once.
    fn on_signal(&mut self) -> bool {
        let arrived = self.signals.as_mut().map(Signals::take).unwrap_or_default();
        if arrived.child {
            self.reap_processes();
        }
        if arrived.reload {
            self.core.tls.reload();
        }
        let n = arrived.stop;
        if n == 0 {
            return false;
        }
        if self.core.draining || n > 1 {
            return true;
        }
        self.core.draining = true;
        let now = self.core.now;
        self.drain_deadline = Some(now + self.core.config.shutdown_timeout);
        info!(
            "shutting down",
            connections = self.core.conns.len(),
            timeout_ms = self.core.config.shutdown_timeout.as_millis()
        );
        // Stop accepting: closing the listeners refuses new connections at once.
        for mut l in self.listeners.drain(..) {
            let _ = self.core.poll.registry().deregister(&mut l);
        }
        // Children get SIGTERM, and SIGKILL after their grace.
        self.core.procs.terminate_all(self.core.poll.registry(), now);
        let keys: Vec<Key> = self.core.conns.keys().collect();
        for key in keys {
            let Some(c) = self.core.conns.get(key) else { continue };
            match c.state {
                ConnState::Ws(_) => {
                    self.core.close(key, CloseCode::GOING_AWAY, "server shutting down");
                }
                ConnState::Stream => {
                    // A streamed response (server-sent events) ends: what is queued is sent,
                    // then the connection closes like any finished response.
                    self.call(self.about(key), Then::Continue, |h, ctx| {
                        h.on_stream_closed(ctx, ConnId(key));
                    });
                    if let Some(c) = self.core.conns.get_mut(key) {
                        c.state.finish_stream();
                    }
                }
                _ => {}
            }
            self.settle(key);
        }
        false
    }

    fn accept(&mut self, index: usize) {
        if self.core.draining {
            return;
        }
        let max = self.core.config.max_connections;
        let reserve = (max / 100).max(16);
        for _ in 0..ACCEPTS_PER_WAKE {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            if self.core.conns.len() >= max + reserve {
                // Even refusals need a descriptor: past the reserve, leave them in the backlog.
                self.accept_paused = true;
                return;
            }
            let (socket, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    // EMFILE and friends: the backlog stays readable, so retrying at once would
                    // spin. Pause, and resume after a connection closes or the back-off. Logged
                    // at most once a second, with how many failures that line stands for.
                    self.accept_failures += 1;
                    let now = self.core.now;
                    if self.accept_logged_at.is_none_or(|t| now >= t + ACCEPT_LOG_EVERY) {
                        warn!(
                            "accept failed: out of resources",
                            error = e,
                            open = self.core.conns.len(),
                            suppressed = self.accept_failures - 1
                        );
                        self.accept_logged_at = Some(now);
                        self.accept_failures = 0;
                    }
                    self.accept_paused = true;
                    self.accept_retry_at = Some(self.core.now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    debug!("accept failed", error = e);
                    continue;
                }
            };
            self.admit(socket, peer, index >= self.core.config.listen.len());
        }
        // Budget used: there may be more in the backlog, which the next wake-up takes.
        self.accept_paused = true;
        self.accept_retry_at = Some(self.core.now);
    }

    fn admit(&mut self, socket: TcpStream, peer: SocketAddr, tls: bool) {
        let core = &mut self.core;
        let cfg = &core.config;
        core.stats.tcp_accepted += 1;
        let _ = socket.set_nodelay(true);
        let socket = match Transport::accepted(&core.tls, socket, peer, tls) {
            Ok(s) => s,
            Err(e) => {
                warn!("tls session refused", peer = peer, error = e);
                return;
            }
        };
        let per_ip = core.per_ip.get(&peer.ip()).copied().unwrap_or(0) as usize;
        let over_ip = cfg.max_connections_per_ip > 0 && per_ip >= cfg.max_connections_per_ip;
        let refuse = (core.conns.len() >= cfg.max_connections || over_ip).then_some(503);
        let state = ConnState::head(&cfg.http, refuse);
        let key = core.conns.insert(Conn::new(socket, peer, Role::Server, cfg.ws, state, core.now));
        let Some(conn) = core.conns.get_mut(key) else {
            return;
        };
        if let Err(e) = core.poll.registry().register(
            &mut conn.socket,
            Token(key.to_token()),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("register failed", peer = peer, error = e);
            core.conns.remove(key);
            return;
        }
        *core.per_ip.entry(peer.ip()).or_insert(0) += 1;
        debug!("accepted", peer = peer, id = ConnId(key));
        self.settle(key);
    }

    fn resume_accepting(&mut self) {
        self.accept_paused = false;
        self.accept_retry_at = None;
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    /// Readiness (or a read budget carried over): write what is queued, read what arrived.
    fn on_ready(&mut self, key: Key) {
        // Something to write first, or a state settle acts on: settled as before. An open
        // WebSocket that is only to be read is as its last settle left it (`only_to_read`).
        if self.core.batch.is_some() || !self.core.conns.get(key).is_some_and(Conn::only_to_read) {
            self.settle(key);
        }
        // Pipelined requests that waited for the answers before them to drain go on.
        if let Some(c) = self.core.conns.get_mut(key) {
            if c.state.pipeline_wait() && c.out.len() <= PIPELINE_OUT_MAX && !c.state.body_owed() {
                c.state.set_pipeline_wait(false);
                self.on_head_bytes(key);
                self.flush_dirty();
            }
        }
        // What one connection may have read into the loop's buffer in one turn: a flood of
        // small frames on one connection (pings, say, each cheap but an event) delays every
        // other connection by at most this much work; the rest waits for the next turn
        // (`pending`). A large frame's payload, read straight into its message, costs a copy
        // per byte and no event: it is bounded by the reads per wake-up alone.
        let mut budget = TURN_BYTES;
        for _ in 0..READS_PER_WAKE {
            let Some(conn) = self.core.conns.get_mut(key) else {
                return;
            };
            if !conn.readable
                || conn.eof
                || (conn.cut && !conn.hup)
                || conn.paused
                || conn.state.pipeline_wait()
                || conn.state.holds_reading()
            {
                break;
            }
            let direct = conn.direct_read_len(&mut self.core.pool);
            if direct > 0 {
                if self.read_payload_in_place(key, direct) {
                    self.flush_dirty();
                    continue;
                }
                break;
            }
            if budget == 0 {
                break;
            }
            let mut room = self.rbuf.len().min(budget);
            if std::mem::take(&mut conn.header_next) {
                // After a frame read in place, only the next header: if it opens another large
                // frame, its payload is then read in place too (`payload.rs`).
                room = room.min(MAX_HEADER_LEN);
            }
            match conn.socket.read(&mut self.rbuf[..room]) {
                Ok(0) => conn.eof = true,
                Ok(n) => {
                    conn.bytes_in += n as u64;
                    budget -= n;
                    // Edge-triggered: a short read drained the socket, and data arriving later
                    // raises a new edge, so the read that would only say `WouldBlock` is
                    // skipped. Not when the peer's FIN came with this edge: then read on to EOF.
                    if n < room && !conn.hup {
                        conn.readable = false;
                    }
                    self.on_bytes(key, n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("read failed", peer = conn.peer(), error = e);
                    conn.eof = true;
                    if conn.state.tcp().is_some() {
                        conn.set_error(e);
                    }
                }
            }
            self.flush_dirty();
        }
        if self.core.conns.get(key).is_some_and(|c| {
            c.readable
                && !c.eof
                && !c.state.pipeline_wait()
                && !c.state.holds_reading()
                && (!c.cut || c.hup)
        }) {
            self.read_again(key);
        }
        self.settle(key);
    }

    /// Frames in `rbuf[start..end]` for an open connection.
    pub(super) fn on_frames(&mut self, key: Key, start: usize, end: usize) {
        // Out of the loop's hands while the handler is called with slices of it (no call here
        // flushes, so nothing else reads into it meanwhile).
        let mut rbuf = std::mem::take(&mut self.rbuf);
        self.on_frames_in(key, &mut rbuf[start..end]);
        self.rbuf = rbuf;
    }

    fn on_frames_in(&mut self, key: Key, input: &mut [u8]) {
        let (mut pos, end) = (0, input.len());
        while pos < end {
            let core = &mut self.core;
            // Its input may close or fail it: what was broadcast to it before (from `on_open`,
            // say, with frames that came with the upgrade) is queued first.
            core.flush_batch_for(key);
            let Some(conn) = core.conns.get_mut(key) else {
                return;
            };
            let now = core.now;
            // What the handler is called about: its tag read once per frame, not per call.
            let owner = Owner::Conn(key, conn.tag);
            let ConnState::Ws(w) = &mut conn.state else { return };
            match conn.ws.handle_bytes(&mut input[pos..end], now) {
                Ok((n, ev)) => {
                    pos += n;
                    match ev {
                        None | Some(Event::Ping(_)) | Some(Event::Pong(_)) => {}
                        Some(Event::Message { kind, data, fin }) if conn.ws.is_compressed() => {
                            // RFC 7692 §7.2.2: inflated as it comes, the message limit and
                            // UTF-8 checked on what comes out.
                            core.stats.bytes_in += data.len() as u64;
                            let msg = w.msg.get_or_insert_with(Box::default);
                            if msg.capacity() == 0 {
                                **msg = core.pool.take();
                            }
                            let role = conn.ws.role();
                            let spare = &mut core.spare_inflater;
                            let Some(pmd) = state::receiving(&mut w.ext, spare, role, &core.config)
                            else {
                                continue;
                            };
                            if let Err(e) = pmd.inflate.piece(kind, data, fin, msg) {
                                **msg = Vec::new();
                                conn.ws.fail_with(e, now);
                                return self.protocol_error(key, e);
                            }
                            if fin {
                                state::received(&mut w.ext, &mut core.spare_inflater);
                            }
                            if w.streaming() {
                                core.stats.messages_in += u64::from(fin);
                                let piece = w.take_msg();
                                self.call(owner, Then::Continue, |h, ctx| {
                                    h.on_message_piece(ctx, ConnId(key), kind, &piece, fin);
                                });
                            } else if fin {
                                core.stats.messages_in += 1;
                                let msg = w.take_msg();
                                self.call(owner, Then::Continue, |h, ctx| {
                                    h.on_message_owned(ctx, ConnId(key), kind, msg);
                                });
                            }
                        }
                        Some(Event::Message { kind, data, fin }) => {
                            core.stats.bytes_in += data.len() as u64;
                            if w.streaming() {
                                core.stats.messages_in += u64::from(fin);
                                self.call(owner, Then::Continue, |h, ctx| {
                                    h.on_message_piece(ctx, ConnId(key), kind, data, fin);
                                });
                            } else if fin && w.gathers_none() {
                                // The whole message is in this read: no copy.
                                core.stats.messages_in += 1;
                                self.call(owner, Then::Continue, |h, ctx| {
                                    h.on_message(ctx, ConnId(key), kind, data);
                                });
                            } else {
                                // Room for all the message's frames declared so far, at once: no
                                // regrowth copies for a large message.
                                let declared = usize::try_from(conn.ws.message_len()).unwrap_or(0);
                                w.msg_with_room(declared, &mut core.pool).extend_from_slice(data);
                                if fin {
                                    core.stats.messages_in += 1;
                                    let msg = w.take_msg();
                                    // Handed over whole: an echo sends it without a copy.
                                    self.call(owner, Then::Continue, |h, ctx| {
                                        h.on_message_owned(ctx, ConnId(key), kind, msg);
                                    });
                                }
                            }
                        }
                        Some(Event::Close(frame)) => {
                            let code = frame.code.map_or(CloseCode::NO_STATUS.0, |c| c.0);
                            Stats::count_close(&mut core.stats.close_codes_received, code);
                            conn.set_close(code, frame.reason());
                            debug!(
                                "close received",
                                id = ConnId(key),
                                code = code,
                                reason = frame.reason()
                            );
                            let code = CloseCode(code);
                            self.call(owner, Then::Continue, |h, ctx| {
                                h.on_peer_close(ctx, ConnId(key), code, frame.reason());
                            });
                        }
                    }
                }
                Err(e) => return self.protocol_error(key, e),
            }
            self.core.transmit(key);
        }
    }

    /// The peer broke a rule: the core has failed the connection (its close frame is queued).
    pub(super) fn protocol_error(&mut self, key: Key, e: ProtocolError) {
        let core = &mut self.core;
        if let Some(conn) = core.conns.get_mut(key) {
            core.stats.protocol_error(e);
            conn.set_close(e.close_code().0, e.reason());
            info!(
                "protocol error",
                id = ConnId(key),
                peer = conn.peer(),
                code = e.close_code(),
                reason = e.reason()
            );
        }
        self.core.transmit(key);
    }

    fn run_timers(&mut self) {
        let now = self.core.now;
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.core.timers.expire(now, &mut expired);
        for token in expired.drain(..) {
            // A handler called back for the one before (`on_close`) may have broadcast: queued
            // before this connection's timeout can close it.
            self.core.flush_batch();
            let key = Key::from_token(token as usize);
            let Some(conn) = self.core.conns.get_mut(key) else {
                continue;
            };
            conn.timer = None;
            if conn.send_deadline.is_some_and(|t| now >= t.get()) {
                // Queued output that nobody drains: dropped, whatever the peer sends.
                self.core.stats.send_timeouts += 1;
                conn.set_close(CloseCode::ABNORMAL.0, "send timeout");
                info!(
                    "send timeout",
                    id = ConnId(key),
                    peer = conn.peer(),
                    queued = conn.out.len(),
                    timeout_ms = self.core.config.send_timeout.as_millis()
                );
                self.remove(key);
                continue;
            }
            if conn.linger_until.is_some_and(|t| now >= t.get()) {
                self.remove(key);
                continue;
            }
            let mut gone = false;
            for _ in 0..4 {
                let core = &mut self.core;
                let Some(conn) = core.conns.get_mut(key) else {
                    break;
                };
                match conn.ws.handle_timeout(now) {
                    None => break,
                    Some(Timeout::Ping) => {}
                    Some(Timeout::Pong) => {
                        core.stats.pong_timeouts += 1;
                        conn.set_close(CloseCode::GOING_AWAY.0, "pong timeout");
                        info!("pong timeout", id = ConnId(key), peer = conn.peer());
                    }
                    Some(Timeout::Idle) => {
                        core.stats.idle_timeouts += 1;
                        conn.set_close(CloseCode::GOING_AWAY.0, "idle timeout");
                        info!("idle timeout", id = ConnId(key), peer = conn.peer());
                    }
                    Some(Timeout::Handshake)
                        if conn.state.client().is_some() || conn.state.tcp_connecting() =>
                    {
                        self.fail_connect(key, &ConnectError::Timeout);
                        gone = true;
                        break;
                    }
                    Some(Timeout::Handshake) => {
                        core.stats.handshake_timeouts += 1;
                        info!("handshake timeout", peer = conn.peer());
                        gone = true;
                        break;
                    }
                    Some(Timeout::Close) => {
                        debug!("close timeout", id = ConnId(key), peer = conn.peer());
                        gone = true;
                        break;
                    }
                }
                core.transmit(key);
            }
            if gone {
                self.remove(key);
            } else {
                self.settle(key);
            }
        }
        self.expired = expired;
        self.flush_dirty();
    }

    /// Serves the connection again in the next pass of the loop (its readiness may be unused),
    /// once however often it is asked for: a key listed twice would be read twice in one pass,
    /// and a connection that stays readable (a flood) would be listed once more every pass, so
    /// that its share of the loop grew without bound while every other connection waited.
    pub(super) fn read_again(&mut self, key: Key) {
        if let Some(c) = self.core.conns.get_mut(key) {
            if !c.scheduled {
                c.scheduled = true;
                self.pending.push(key);
            }
        }
    }

    /// Ends a batch of work: queues the gathered broadcasts, then writes every connection with
    /// output queued. A handler called back from here (`on_drained`) may broadcast again: that
    /// batch is queued before this returns.
    pub(super) fn flush_dirty(&mut self) {
        self.flush_dirty_in(false);
    }

    /// The end of a turn of the loop: the coalescing connections written this turn are written
    /// now, each with what the whole turn queued for it (one write, and over TLS full records,
    /// instead of one per socket read that sent into it), then whatever that flush queued.
    pub(super) fn flush_turn(&mut self) {
        if self.core.deferred.is_empty() {
            return;
        }
        let core = &mut self.core;
        core.dirty.append(&mut core.deferred);
        self.flush_dirty_in(true);
    }

    fn flush_dirty_in(&mut self, turn_end: bool) {
        let core = &self.core;
        if core.dirty.is_empty()
            && core.batch.is_none()
            && core.accepted.is_empty()
            && core.resumed.is_empty()
            && core.pool.queued() <= core.config.max_queued_total
        {
            // Nothing to do (most calls, at the end of every turn): what the loop below
            // would come to at once.
            self.core.stats.queued_bytes = self.core.pool.queued() as u64;
            return;
        }
        loop {
            self.core.flush_batch();
            for (key, response) in std::mem::take(&mut self.core.accepted) {
                self.open_deferred(key, &response);
            }
            for key in std::mem::take(&mut self.core.resumed) {
                self.read_again(key);
            }
            while let Some(key) = self.core.dirty.pop() {
                if !turn_end
                    && self.core.coalescing.contains(&key)
                    && self.core.conns.get(key).is_some_and(|c| c.out.len() < COALESCE_BYTES)
                {
                    // Still dirty (listed once): written at the end of the turn.
                    self.core.deferred.push(key);
                    continue;
                }
                if let Some(c) = self.core.conns.get_mut(key) {
                    c.dirty = false;
                }
                self.settle(key);
            }
            if self.core.pool.queued() > self.core.config.max_queued_total
                && self.cut_largest_queues()
            {
                continue;
            }
            if self.core.batch.is_none() {
                break;
            }
        }
        self.core.stats.queued_bytes = self.core.pool.queued() as u64;
    }

    /// All queues together passed `--max-queued-total`: the connections holding the most are
    /// cut first (queue freed, connection closed, as a slow reader) until the total is within
    /// it. The total is a running sum (`Pool::queued`); only here, over it, are the queues
    /// scanned. Returns whether any was cut.
    fn cut_largest_queues(&mut self) -> bool {
        let budget = self.core.config.max_queued_total;
        let mut largest: Vec<(usize, Key)> = self
            .core
            .conns
            .iter()
            .filter(|(_, c)| !c.out.is_empty())
            .map(|(k, c)| (c.out.held(), k))
            .collect();
        largest.sort_unstable_by_key(|&(len, _)| std::cmp::Reverse(len));
        let mut cut = false;
        for (len, key) in largest {
            let total = self.core.pool.queued();
            if total <= budget {
                break;
            }
            let core = &mut self.core;
            let Some(conn) = core.conns.get_mut(key) else { continue };
            core.stats.queue_budget_disconnects += 1;
            warn!(
                "slow reader: over the queued total",
                id = ConnId(key),
                peer = conn.peer(),
                queued = len,
                total = total,
                max = budget
            );
            conn.set_close(CloseCode::POLICY_VIOLATION.0, "slow reader");
            conn.out.clear(&mut core.pool);
            self.remove(key);
            cut = true;
        }
        cut
    }

    /// Brings a connection up to date: writes what is queued, closes what is finished, and arms
    /// its timer.
    pub(super) fn settle(&mut self, key: Key) {
        // Nothing is written while broadcasts are gathered (a publisher's answer must not
        // overtake the message it answers for).
        self.core.flush_batch();
        let Some(conn) = self.core.conns.get_mut(key) else {
            return;
        };
        let connecting =
            matches!(conn.state, ConnState::Connecting(_)) || conn.state.tcp_connecting();
        if matches!(conn.state, ConnState::Tcp(Tcp { connected: false, eof_told: true, .. })) {
            // Closed by the handler while connecting (`Context::tcp_close`): no callback.
            return self.remove(key);
        }
        if connecting && (!conn.writable || !self.connected(key)) {
            // Still connecting: the connect is bounded by the handshake deadline (a route's
            // `--upstream-timeout`), which must be armed meanwhile.
            return self.arm_timer(key);
        }
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else {
            return;
        };
        let mut wrote = 0;
        if conn.ws.role() == Role::Server && conn.ws.close_handshake_done() {
            // Removed once this is written (below): nothing is queued after the close echo.
            conn.socket.last_write(conn.out.len());
        }
        if conn.writable && (!conn.out.is_empty() || conn.socket.wants_write()) {
            // A broadcast frame written whole is delivered: the clock is read once per write.
            let (start, delivery) = (core.start, &mut core.stats.delivery_seconds);
            let mut now = None;
            let delivered = |queued_at: u64| {
                let now = *now.get_or_insert_with(|| {
                    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
                });
                delivery.observe_ns(now.saturating_sub(queued_at));
            };
            match conn.out.write_observed(&mut conn.socket, &mut core.pool, delivered) {
                Ok(n) => {
                    wrote = n;
                    conn.bytes_out += n as u64;
                    core.stats.bytes_out += n as u64;
                    // TLS: records encrypted and not yet written wait for writability too.
                    if !conn.out.is_empty() || !conn.socket.flushed() {
                        conn.writable = false;
                    }
                }
                Err(e) => {
                    debug!("write failed", peer = conn.peer(), error = e);
                    if conn.state.tcp().is_some() {
                        conn.set_error(e);
                    }
                    conn.eof = true;
                    conn.out.clear(&mut core.pool);
                    conn.state.set_pipeline_wait(false);
                    conn.close_queued = 0;
                }
            }
        }
        // Send progress: queued output must see a byte of it written every `--send-timeout`;
        // what the peer sends meanwhile does not count.
        conn.send_deadline = match conn.send_deadline {
            _ if conn.out.is_empty() => None,
            Some(d) if wrote == 0 => Some(d),
            _ => Some(At::new(core.now + core.config.send_timeout)),
        };
        if conn.close_queued != 0 && conn.out.is_empty() {
            // Counted once written: a close frame that never reaches the peer was not sent.
            Stats::count_close(&mut core.stats.close_codes_sent, conn.close_queued);
            conn.close_queued = 0;
        }
        if conn.pong_end != 0 && conn.bytes_out >= conn.pong_end {
            // The pong queued before is written: what the core owes meanwhile goes now.
            conn.pong_end = 0;
            if conn.ws.wants_transmit() {
                self.core.transmit(key);
                return self.settle(key);
            }
        }
        // Pipelined requests wait for the answers before them to drain: once they have, the
        // connection is served again this turn (`on_ready`), and read only after that.
        if conn.state.pipeline_wait()
            && conn.out.len() <= PIPELINE_OUT_MAX
            && !conn.state.body_owed()
            && !conn.scheduled
        {
            conn.scheduled = true;
            self.pending.push(key);
        }
        let finished = match conn.state {
            // Unless the body of a given length is still being written.
            ConnState::Http { body_owed } => !body_owed,
            // A slow reader is not read: its close frame written is as far as it goes.
            ConnState::Ws(_) | ConnState::Head(_) => {
                conn.ws.state() == State::Closed || (conn.cut && !conn.ws.wants_transmit())
            }
            ConnState::Connecting(_)
            | ConnState::Response(_)
            | ConnState::Deferred(_)
            | ConnState::Body(_)
            | ConnState::Stream
            | ConnState::Awaiting { .. }
            | ConnState::Tcp(_) => false,
        };
        if conn.drain_mark.is_some_and(|m| conn.out.len() < m.get() as usize) {
            conn.drain_mark = None;
            self.call(self.about(key), Then::Continue, |h, ctx| h.on_drained(ctx, ConnId(key)));
            return self.settle(key);
        }
        if matches!(conn.state, ConnState::Tcp(_)) {
            if !self.settle_tcp(key) {
                self.arm_timer(key);
            }
            return;
        }
        if finished
            && conn.out.is_empty()
            && !conn.socket.wants_write()
            && conn.ws.role() == Role::Server
            && conn.ws.close_handshake_done()
        {
            // §5.5.1: close frames both ways, so the TCP connection must be closed; the server
            // does it first (§7.1.1). The peer sends nothing after its close frame and what came
            // with it was read, so nothing unread turns this close into a reset: no lingering.
            self.remove(key);
            return;
        }
        if finished && conn.out.is_empty() && !conn.socket.wants_write() && !conn.shut_wr {
            // RFC 6455 §7.1.1: the server closes the TCP connection first. Shutting down the
            // write side sends FIN at once; reading on until the peer's FIN (or the close
            // timeout) keeps unread bytes (a failed connection's peer may still be sending)
            // from turning the close into a reset. A client waits for the server's FIN.
            let _ = conn.socket.shutdown(Shutdown::Write);
            conn.shut_wr = true;
            conn.linger_until = Some(At::new(core.now + core.config.ws.close_timeout));
        }
        if conn.eof && matches!(conn.state, ConnState::Connecting(_) | ConnState::Response(_)) {
            let why = conn.socket.failure().unwrap_or("the server closed the connection").into();
            self.fail_connect(key, &ConnectError::Io(why));
            return;
        }
        // RFC 9112 §9.6: a client that half-closes after its requests still reads the answers:
        // what is queued, and the requests that wait for it, are answered first.
        // A WebSocket peer that half-closes still gets what is queued for it (its close echo
        // last), bounded by the send timeout and the close timeout; nothing more is read.
        let answering = match conn.state {
            ConnState::Http { .. } | ConnState::Head(_) => {
                !conn.out.is_empty() || conn.state.pipeline_wait() || conn.state.body_owed()
            }
            // A streamed response (an HTTP history body with `Connection: close`, say) too.
            ConnState::Ws(_) | ConnState::Stream => !conn.out.is_empty(),
            // RFC 9112 §9.6: a deferred answer is still owed to a client that half-closed.
            ConnState::Awaiting { .. } => true,
            _ => false,
        };
        if conn.eof && answering && conn.state.is_ws() && conn.linger_until.is_none() {
            conn.linger_until = Some(At::new(core.now + core.config.ws.close_timeout));
        }
        if (conn.eof && !answering)
            || (matches!(conn.state, ConnState::Head(_)) && conn.ws.state() == State::Closed)
        {
            self.remove(key);
            return;
        }
        self.arm_timer(key);
    }

    /// Arms the connection's timer for its next deadline, or cancels it if it has none.
    fn arm_timer(&mut self, key: Key) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else {
            return;
        };
        let deadline = conn.deadline();
        match (conn.timer, deadline) {
            (Some((_, armed)), Some(d)) if armed <= d => {} // fires early and re-arms: O(1)
            (timer, Some(d)) => {
                if let Some((id, _)) = timer {
                    core.timers.cancel(id);
                }
                let id = core.timers.arm(key.to_token() as u64, d.get());
                conn.timer = Some((id, d));
            }
            (Some((id, _)), None) => {
                core.timers.cancel(id);
                conn.timer = None;
            }
            (None, None) => {}
        }
    }

    /// Forgets a connection: its slot, timer, buffers and per-IP count, in one place.
    pub(super) fn remove(&mut self, key: Key) {
        let core = &mut self.core;
        let Some(mut conn) = core.conns.remove(key) else {
            return;
        };
        core.coalescing.retain(|&k| k != key);
        // No deregister: closing the socket (dropping `conn`) removes it from the epoll set, and
        // the syscall would cost one per connection.
        if let Some((id, _)) = conn.timer {
            core.timers.cancel(id);
        }
        if let Some(n) = core.per_ip.get_mut(&conn.peer().ip()) {
            *n -= 1;
            if *n == 0 {
                core.per_ip.remove(&conn.peer().ip());
            }
        }
        conn.state.release(&mut core.pool);
        conn.out.clear(&mut core.pool);
        // The handler's data stays reachable by the removed id for the calls below.
        let outer = self.data.remove(key);
        if conn.state.is_ws() {
            core.stats.connections_open -= 1;
            let (code, reason) = match conn.close.take() {
                Some(c) => (c.code, c.reason),
                None => (CloseCode::ABNORMAL.0, Box::from("")),
            };
            let ms = core.now.saturating_sub(conn.opened_at.get()).as_millis();
            info!(
                "close",
                id = ConnId(key),
                peer = conn.peer(),
                path = conn.path(),
                code = code,
                reason = reason,
                duration_ms = ms,
                bytes_in = conn.bytes_in,
                bytes_out = conn.bytes_out
            );
            let owner = Owner::Conn(key, conn.tag);
            drop(conn);
            self.call(owner, Then::Continue, |h, ctx| {
                h.on_close(ctx, ConnId(key), CloseCode(code), &reason);
            });
        } else if let ConnState::Tcp(Tcp { connected: true, .. }) = conn.state {
            let error = conn.close.take().and_then(|c| c.error);
            info!(
                "close",
                id = ConnId(key),
                peer = conn.peer(),
                tcp = true,
                error = error.as_ref().map_or(String::new(), ToString::to_string),
                bytes_in = conn.bytes_in,
                bytes_out = conn.bytes_out
            );
            let owner = Owner::Conn(key, conn.tag);
            drop(conn);
            self.call(owner, Then::Continue, |h, ctx| {
                h.on_tcp_closed(ctx, ConnId(key), error.as_ref());
            });
        } else if conn.state.is_stream() || conn.state.body_owed() || conn.state.is_awaiting() {
            let owner = Owner::Conn(key, conn.tag);
            drop(conn);
            self.call(owner, Then::Continue, |h, ctx| h.on_stream_closed(ctx, ConnId(key)));
        }
        self.data.forget(outer);
        if self.accept_paused && self.accept_retry_at.is_none() {
            self.resume_accepting();
        }
    }
}

/// The one way the handler is called (`dispatch.rs`).
impl<'h, D: Default> Engine<'h, D> {
    /// Calls the handler about `owner`; then as `then` says.
    pub(super) fn call<R>(
        &mut self,
        owner: Owner,
        then: Then,
        f: impl FnOnce(&mut (dyn Handler<D> + 'h), &mut Context<'_, D>) -> R,
    ) -> R {
        let outer = std::mem::replace(&mut self.core.current, owner);
        let outer_new = self.core.new_tag.take();
        let ctx = &mut Context { core: &mut self.core, data: &mut self.data };
        let r = f(&mut self.handler, ctx);
        self.core.current = outer;
        self.core.new_tag = outer_new;
        if then == Then::Flush {
            self.flush_dirty();
        }
        r
    }

    /// A call about connection `key` (as it is now).
    pub(super) fn about(&self, key: Key) -> Owner {
        Owner::Conn(key, self.core.conns.get(key).map_or(Tag::NONE, |c| c.tag))
    }
}

/// Writes the batched log lines when the loop returns.
struct FlushOnDrop;

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        crate::log::flush();
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
