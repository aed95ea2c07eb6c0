//! What an application implements ([`Handler`]) and what it is given to act with
//! ([`Context`]): send, broadcast (one encode, shared bytes), close. The values both pass
//! (ids, tags, responses, decisions) are in `api.rs`.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::Duration;

use crate::proto::connection::{MessageKind, SendError};
use crate::proto::relay::ClientHead;
use crate::proto::{CloseCode, State};
use crate::server::api::{
    ConnId, ConnectError, ConnectRequest, Connected, Decision, Request, Response, Tag,
};
use crate::server::core::Core;
use crate::server::data::ConnData;
use crate::server::process::{InputError, ProcId, Signal, Stream};
use crate::server::state::ConnState;
use crate::server::stats::Stats;

/// An application served by the runtime. Every method runs on the event loop's thread and
/// must not block.
///
/// `D` is the application's data per connection ([`Context::data`]); `()`, the default, is none.
pub trait Handler<D = ()> {
    /// A request that is not a WebSocket upgrade (health checks, pages, APIs), with its whole
    /// body (bounded by the configured body limit). HTTP/1.1 connections stay open for the next
    /// request unless either side says `Connection: close`.
    ///
    /// The default answers 404 (an application that serves no HTTP).
    fn on_request(&mut self, _ctx: &mut Context<'_, D>, _req: &Request<'_>) -> Response {
        Response::text(404, "not found\n")
    }

    /// A valid upgrade request (its body is empty): accept it (with a subprotocol and
    /// headers), refuse it, or defer the decision.
    ///
    /// The default refuses with 404 (an application that only opens outbound connections).
    fn on_upgrade(&mut self, _ctx: &mut Context<'_, D>, _req: &Request<'_>) -> Decision {
        Decision::Reject(Response::text(404, "no WebSocket endpoint here\n"))
    }

    /// The 101 response is queued: the connection is open.
    fn on_open(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId) {}

    /// A whole data message (its size is bounded by the configured message limit).
    fn on_message(&mut self, ctx: &mut Context<'_, D>, id: ConnId, kind: MessageKind, data: &[u8]);

    /// A whole message gathered across reads, handed over by value (so it can be sent on
    /// without a copy). The default passes it to [`Handler::on_message`].
    fn on_message_owned(
        &mut self,
        ctx: &mut Context<'_, D>,
        id: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    ) {
        self.on_message(ctx, id, kind, &data);
    }

    /// The connection is gone: `code` is the peer's close code (1005 if its close frame had
    /// none), or 1006 if it closed without one, or the code this end failed it with.
    fn on_close(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ConnId,
        _code: CloseCode,
        _reason: &str,
    ) {
    }

    /// How often [`Handler::on_tick`] runs (`None`, the default: never).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Runs every [`Handler::tick_interval`] (for application deadlines, e.g. authentication).
    fn on_tick(&mut self, _ctx: &mut Context<'_, D>) {}

    /// The loop is about to start (open outbound connections here).
    fn on_start(&mut self, _ctx: &mut Context<'_, D>) {}

    /// An outbound connection finished its handshake and is open: `up` has the subprotocol the
    /// server chose and the fields of its 101.
    fn on_connected(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId, _up: &Connected<'_>) {}

    /// An outbound connection failed before it opened (no `on_close` follows); a plain TCP
    /// one ([`Context::connect_tcp`]) too, with [`ConnectError::Io`] or
    /// [`ConnectError::Timeout`] (no `on_tcp_closed` follows).
    fn on_connect_failed(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId, _error: &ConnectError) {
    }

    /// A plain request's head, before its body is read (`head` says how the body is framed,
    /// whether the client's connection may serve another request after it, and whether the
    /// request is HTTP/1.0). The default, `false`, lets the runtime read the body and call
    /// [`Handler::on_request`].
    ///
    /// `true` takes the exchange over (a proxy's relay): the runtime reads no body and buffers
    /// nothing; the connection is a byte stream as a [`Context::connect_tcp`] one is. What the
    /// client sends (the body as it is framed, bytes that came with the head first) comes to
    /// `on_tcp_data`, the handler writes the whole response with [`Context::tcp_write`], and
    /// ends the exchange with [`Context::http_exchange_done`]. `on_tcp_eof` and `on_tcp_closed`
    /// come as for a dialled connection. (`Expect: 100-continue` is answered by the runtime.)
    fn on_request_head(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _req: &Request<'_>,
        _head: ClientHead,
    ) -> bool {
        false
    }

    /// A plain TCP connection ([`Context::connect_tcp`]) is connected: it reads, and writes
    /// what was queued meanwhile.
    fn on_tcp_connected(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId) {}

    /// Bytes read from a plain TCP connection (one read's worth, lent for the call).
    fn on_tcp_data(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId, _bytes: &[u8]) {}

    /// The peer of a plain TCP connection finished sending (its FIN); it may still read. The
    /// default writes no more either ([`Context::tcp_shutdown_write`]), which closes the
    /// connection once what is queued is written.
    fn on_tcp_eof(&mut self, ctx: &mut Context<'_, D>, id: ConnId) {
        ctx.tcp_shutdown_write(id);
    }

    /// A plain TCP connection that had connected is gone: `None` once both sides finished (or
    /// after [`Context::tcp_close`]), else the error that ended it (a reset, a failed write, the
    /// send timeout). Called once; the id is stale after it.
    fn on_tcp_closed(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ConnId,
        _error: Option<&io::Error>,
    ) {
    }

    /// The [`crate::server::Waker`] of this server was woken (by another thread).
    fn on_wake(&mut self, _ctx: &mut Context<'_, D>) {}

    /// A piece of a message on a connection in streaming mode ([`Context::set_streaming`]):
    /// pieces come as they arrive, and `fin` marks the message's last one.
    fn on_message_piece(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ConnId,
        _kind: MessageKind,
        _data: &[u8],
        _fin: bool,
    ) {
    }

    /// The peer's close frame arrived (before `on_close`, which comes when the connection is
    /// gone). On a connection in manual-close mode ([`Context::set_manual_close`]) the handler
    /// answers it with [`Context::close`].
    fn on_peer_close(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ConnId,
        _code: CloseCode,
        _reason: &str,
    ) {
    }

    /// A streamed response ended: the client went away, or its queue passed the cap.
    fn on_stream_closed(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId) {}

    /// The connection's outbound queue fell to the mark given to [`Context::notify_drained`].
    fn on_drained(&mut self, _ctx: &mut Context<'_, D>, _id: ConnId) {}

    /// A child started with [`Context::spawn`] wrote to its stdout or stderr (a chunk as read,
    /// not a line; at most the read buffer's size).
    fn on_process_output(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ProcId,
        _stream: Stream,
        _data: &[u8],
    ) {
    }

    /// A child exited and its output has been delivered; its id is stale from now on.
    fn on_process_exit(
        &mut self,
        _ctx: &mut Context<'_, D>,
        _id: ProcId,
        _status: std::process::ExitStatus,
    ) {
    }
}

/// What a handler acts with: the runtime's connections, counters and clock, and its data
/// per connection (`D`, see [`Context::data`]).
pub struct Context<'a, D = ()> {
    pub(crate) core: &'a mut Core,
    pub(crate) data: &'a mut ConnData<D>,
}

impl<D: Default> Context<'_, D> {
    /// The application's data for connection `id`: `D::default()` when the connection is
    /// made, the handler's to change from any callback (a tick, another connection's message,
    /// a process's output), and dropped after the last callback about the connection
    /// (`on_close`, `on_stream_closed`, or `on_connect_failed`, where it is still there).
    /// `None` for an id that is stale. A connection's `D` is made when it is first asked for:
    /// the runtime holds one per connection slot used, and none at all for `D = ()`.
    pub fn data(&mut self, id: ConnId) -> Option<&mut D> {
        let live = self.core.conns.contains(id.0);
        self.data.get(id.0, live)
    }
}

impl<D> Context<'_, D> {
    /// The configured cap on a connection's unsent bytes (`--queue-cap`): a message that
    /// would take a queue past it closes the connection as a slow reader.
    pub fn queue_cap(&self) -> usize {
        self.core.config.queue_cap
    }

    /// The loop's clock: time since the server started.
    pub fn now(&self) -> Duration {
        self.core.now
    }

    /// The runtime's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// Whether the server is shutting down.
    pub fn draining(&self) -> bool {
        self.core.draining
    }

    /// The peer's address, if the connection still exists.
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.core.conns.get(id.0).map(|c| c.peer())
    }

    /// Whether the connection is open for sending.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.core.conns.get(id.0).is_some_and(|c| c.ws.state() == State::Open)
    }

    /// Queues a message (copied) to one connection.
    ///
    /// # Errors
    /// The connection is gone, not open, or closing; a connection whose queue passes its cap
    /// is closed as a slow reader and the message is dropped.
    pub fn send(&mut self, id: ConnId, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.core.send(id.0, kind, data)
    }

    /// Queues a message to one connection, taking the buffer (no copy of the payload).
    ///
    /// # Errors
    /// As [`Context::send`].
    pub fn send_owned(
        &mut self,
        id: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    ) -> Result<(), SendError> {
        self.core.send_owned(id.0, kind, data)
    }

    /// Sends one message to many connections: the frame is encoded once and its bytes are
    /// shared by every queue. Returns how many connections it was queued to: not one that is
    /// gone or closing, nor one in the middle of a fragmented message (RFC 6455 §5.4).
    pub fn broadcast(
        &mut self,
        ids: impl IntoIterator<Item = ConnId>,
        kind: MessageKind,
        data: &[u8],
    ) -> usize {
        self.core.broadcast(ids, kind, data)
    }

    /// Sends one message to every connection in `set`, as [`Context::broadcast`] does, but
    /// gathered: consecutive broadcasts to the same set (the same `Rc`) and of the same kind,
    /// in one batch of work (one read of one connection, one tick, ...), reach each connection
    /// as one queued piece, which touches each connection once instead of once per message.
    ///
    /// Each connection still receives exactly the frames, in exactly the order, it would have
    /// had from [`Context::broadcast`]: anything else sent to a member, its input, or a
    /// broadcast to another set queues the gathered messages first, and nothing is written to
    /// a socket before they are queued. Keep the set in an `Rc` and change it with
    /// [`Rc::make_mut`]: a set changed while a batch holds it is copied, so the batch goes to
    /// the members it had. Returns the size of the set: a member that is gone or closing skips
    /// the messages, as with [`Context::broadcast`], and so does one in the middle of a
    /// fragmented message (whole messages cannot go inside it).
    pub fn broadcast_set(
        &mut self,
        set: &Rc<BTreeSet<ConnId>>,
        kind: MessageKind,
        data: &[u8],
    ) -> usize {
        self.core.broadcast_set(set, kind, data)
    }

    /// Opens an outbound WebSocket connection; `on_connected` or `on_connect_failed` follows.
    ///
    /// # Errors
    /// The socket could not be created or registered.
    pub fn connect(&mut self, req: ConnectRequest) -> io::Result<ConnId> {
        self.core.connect(req, None).map(ConnId)
    }

    /// As [`Context::connect`], over TLS (`wss://`): the server's certificate must chain to
    /// the roots (`--tls-ca`, else the system's) and name `server_name`, which is also sent as
    /// SNI (RFC 6066 §3). Needs the `tls` feature.
    ///
    /// # Errors
    /// The socket could not be created or registered, the roots could not be read, the name
    /// is not a DNS name or an IP address, or weir was built without TLS.
    pub fn connect_tls(&mut self, req: ConnectRequest, server_name: &str) -> io::Result<ConnId> {
        self.core.connect(req, Some(server_name)).map(ConnId)
    }

    /// Opens a plain TCP connection to `addr` (non-blocking; no name is resolved):
    /// `on_tcp_connected` or `on_connect_failed` follows. The connect may take the handshake
    /// timeout. See `on_tcp_data`, `on_tcp_eof` and `on_tcp_closed` for what comes after.
    ///
    /// # Errors
    /// The socket could not be created or registered.
    pub fn connect_tcp(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        self.core.connect_tcp(addr, None).map(ConnId)
    }

    /// As [`Context::connect_tcp`], over TLS (a `rediss://` link): the server's certificate
    /// must chain to the roots (`--tls-ca`, else the system's) and name `server_name`, also
    /// sent as SNI (RFC 6066 §3). `on_tcp_connected` comes once TCP connects; what is written
    /// meanwhile goes once the TLS handshake is done, and a failed handshake closes the
    /// connection with its error (`on_tcp_closed`). Needs the `tls` feature.
    ///
    /// # Errors
    /// As [`Context::connect_tls`].
    pub fn connect_tcp_tls(&mut self, addr: SocketAddr, server_name: &str) -> io::Result<ConnId> {
        self.core.connect_tcp(addr, Some(server_name)).map(ConnId)
    }

    /// Queues bytes (copied) to a plain TCP connection, written as the socket takes them (also
    /// while it is still connecting). [`Context::notify_drained`] tells when the queue empties.
    ///
    /// # Errors
    /// [`InputError::Full`] if the queue would pass `--queue-cap` (nothing is queued: the
    /// peer is not reading; wait for `on_drained`); [`InputError::Closed`] if the connection
    /// is gone, failed, or this end shut down its writing.
    pub fn tcp_write(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), InputError> {
        self.core.tcp_write(id.0, bytes)
    }

    /// Half-closes a plain TCP connection: once what is queued is written, FIN; reading goes
    /// on until the peer's FIN (then `on_tcp_closed(None)`).
    pub fn tcp_shutdown_write(&mut self, id: ConnId) {
        self.core.tcp_shutdown_write(id.0);
    }

    /// Ends an exchange the handler took over ([`Handler::on_request_head`]) whose response is
    /// queued whole: with `keep_alive` (and a client that still reads and sends) the next
    /// request head is read; otherwise the connection closes once the queue is written.
    pub fn http_exchange_done(&mut self, id: ConnId, keep_alive: bool) {
        self.core.http_exchange_done(id.0, keep_alive);
    }

    /// Closes a plain TCP connection now, dropping what is queued and unread (the peer may
    /// see a reset). `on_tcp_closed(None)` follows if it had connected.
    pub fn tcp_close(&mut self, id: ConnId) {
        self.core.tcp_close(id.0);
    }

    /// Answers an upgrade the handler deferred: the 101 goes out and the connection opens
    /// (`on_open` follows). Does nothing for a connection that is not waiting.
    pub fn accept(&mut self, id: ConnId, protocol: Option<&str>, headers: &[(String, Vec<u8>)]) {
        self.core.accept_deferred(id.0, protocol, headers);
    }

    /// Refuses an upgrade the handler deferred.
    pub fn reject(&mut self, id: ConnId, response: &Response) {
        let waiting = self.core.conns.get(id.0).map(|c| &c.state);
        if matches!(waiting, Some(ConnState::Deferred(d)) if !d.key.is_empty()) {
            self.core.respond(id.0, response);
        }
    }

    /// Streaming mode: message pieces go to `on_message_piece` as they arrive instead of being
    /// gathered into whole messages. Set it in `on_open` or `on_connected`.
    pub fn set_streaming(&mut self, id: ConnId, on: bool) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            if let Some(w) = c.state.ws().filter(|w| on || w.ext.is_some()) {
                w.ext.get_or_insert_with(Box::default).streaming = on;
            }
        }
    }

    /// Manual-close mode: a close frame from the peer is reported to `on_peer_close` and
    /// answered by the handler with [`Context::close`] (within the close timeout), not at once;
    /// until then the connection may still send. A proxy answers when the other side has.
    pub fn set_manual_close(&mut self, id: ConnId, on: bool) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            c.ws.set_auto_close_reply(!on);
        }
    }

    /// Coalescing: what is queued to the connection is written once per turn of the loop,
    /// after every socket that was ready in the turn was read and handled, instead of after
    /// each read. For a connection many others send into (a tunnel): one write (and over TLS,
    /// full records) for what a whole turn relayed, at the cost of nothing for a lone message
    /// (a turn with one event ends at once).
    pub fn set_coalesce(&mut self, id: ConnId, on: bool) {
        let list = &mut self.core.coalescing;
        list.retain(|&k| k != id.0);
        if on && self.core.conns.get(id.0).is_some() {
            list.push(id.0);
        }
    }

    /// Sends one frame of a message: `fin == false` leaves the message open for more pieces
    /// (RFC 6455 §5.4), which must keep the same `kind`.
    ///
    /// # Errors
    /// As [`Context::send`], and a piece that does not continue the open message.
    pub fn send_piece(
        &mut self,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.core.send_frame(id.0, kind, data, fin)
    }

    /// Stops reading from a connection (flow control): its peer is slowed by TCP.
    pub fn pause_reading(&mut self, id: ConnId) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            c.paused = true;
        }
    }

    /// Reads from a paused connection again.
    pub fn resume_reading(&mut self, id: ConnId) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            if std::mem::take(&mut c.paused) {
                self.core.resumed.push(id.0);
            }
        }
    }

    /// Writes bytes to a streamed response. A client whose queue passes the cap is dropped
    /// (`on_stream_closed` follows).
    ///
    /// # Errors
    /// The connection is gone or not streaming.
    pub fn stream_write(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        self.core.stream_write(id.0, bytes)
    }

    /// Writes shared bytes to many streamed responses (encoded once). Returns how many took them.
    pub fn stream_broadcast(
        &mut self,
        ids: impl IntoIterator<Item = ConnId>,
        bytes: &Rc<[u8]>,
    ) -> usize {
        let at = self.core.clock_ns();
        ids.into_iter().filter(|id| self.core.stream_write_shared(id.0, bytes, at).is_ok()).count()
    }

    /// [`Context::stream_broadcast`] for bytes that are no message (a keep-alive comment): the
    /// delivery histogram does not time them.
    pub fn stream_broadcast_untimed(
        &mut self,
        ids: impl IntoIterator<Item = ConnId>,
        bytes: &Rc<[u8]>,
    ) -> usize {
        let untimed = crate::server::outq::UNTIMED;
        ids.into_iter()
            .filter(|id| self.core.stream_write_shared(id.0, bytes, untimed).is_ok())
            .count()
    }

    /// Ends a streamed response as one whose queue passed the cap is ended: what is queued
    /// and not started is dropped and the connection closes (`on_stream_closed` follows). Does
    /// nothing for a connection that is not streaming.
    pub fn end_stream(&mut self, id: ConnId) {
        let core = &mut *self.core;
        let Some(c) = core.conns.get_mut(id.0) else { return };
        if c.takes_stream_writes() {
            c.out.drop_unstarted(&mut core.pool);
            c.eof = true;
            // A kept-alive body cut short: no request after it is answered.
            c.state.drop_body_owed();
            core.mark_dirty(id.0);
        }
    }

    /// Ends a streamed response whose body is complete (`on_stream_closed` is not called):
    /// what is queued is written, then the connection closes as after any answer with
    /// `Connection: close`, or, for a body whose response gave its `Content-Length` on a
    /// kept-alive connection, the next request is served. Does nothing for a connection that
    /// is not streaming.
    pub fn finish_stream(&mut self, id: ConnId) {
        let core = &mut *self.core;
        if core.conns.get_mut(id.0).is_some_and(|c| c.state.finish_stream()) {
            core.mark_dirty(id.0);
        }
    }

    /// Closes a connection as a slow reader, exactly as the runtime does when its queue passes
    /// the cap (counted in `slow_reader_disconnects`): a WebSocket gets close 1008 "slow
    /// reader", what it has not started to receive is dropped and it is not read any more; a
    /// streamed response ends. For a handler that holds output back for a connection and
    /// counts it against the cap itself. Does nothing for a connection already closing.
    pub fn close_slow_reader(&mut self, id: ConnId) {
        let Some(c) = self.core.conns.get(id.0) else { return };
        match c.state {
            // A close received and not answered yet (manual close) is answered with this one.
            ConnState::Ws(_) if matches!(c.ws.state(), State::Open | State::CloseReceived) => {
                self.core.slow_reader(id.0);
            }
            _ if c.takes_stream_writes() => {
                self.end_stream(id);
                self.core.stats.slow_reader_disconnects += 1;
            }
            _ => {}
        }
    }

    /// Gives the answer to a request the handler deferred ([`Response::deferred`]); the
    /// connection goes on after it as after an answer given at once (kept alive or closed). Returns false (and sends nothing) if none is owed: the
    /// client went away (`on_stream_closed` said so), or it was answered already.
    pub fn respond(&mut self, id: ConnId, response: &Response) -> bool {
        self.core.respond_deferred(id.0, response)
    }

    /// A random number from the runtime's source (the OS's), for jitter; 0 if it failed.
    pub fn random_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        if self.core.random.is_none() {
            self.core.random = crate::server::random::Random::new().ok();
        }
        match self.core.random.as_mut().map(|r| r.fill(&mut b)) {
            Some(Ok(())) => u64::from_le_bytes(b),
            _ => 0,
        }
    }

    /// The ids of the connections currently streaming a response.
    pub fn is_streaming(&self, id: ConnId) -> bool {
        self.core.conns.get(id.0).is_some_and(|c| c.state.is_stream())
    }

    /// Inbound connections that are not WebSocket, counted now (a walk of every connection:
    /// for `/metrics`, not for a message path): plain HTTP (reading a request or its body,
    /// answering one, or an upgrade whose handler has not decided yet) and streamed responses
    /// (server-sent events).
    pub fn http_connections(&self) -> (u64, u64) {
        self.core.conns.iter().fold((0, 0), |(http, streams), (_, c)| match c.state {
            ConnState::Head(_) | ConnState::Http { .. } | ConnState::Body(_) => (http + 1, streams),
            ConnState::Awaiting { .. } => (http + 1, streams),
            ConnState::Deferred(_) => (http + 1, streams),
            // An accepted request the handler relays (`on_request_head`).
            ConnState::Tcp(t) if t.inbound => (http + 1, streams),
            ConnState::Stream => (http, streams + 1),
            ConnState::Ws(_)
            | ConnState::Connecting(_)
            | ConnState::Response(_)
            | ConnState::Tcp(_) => (http, streams),
        })
    }

    /// Unsent bytes queued on a connection (0 if it is gone).
    pub fn queued_bytes(&self, id: ConnId) -> usize {
        self.core.conns.get(id.0).map_or(0, |c| c.out.len())
    }

    /// Asks for `on_drained` once the connection's queue is at or below `mark` bytes.
    pub fn notify_drained(&mut self, id: ConnId, mark: usize) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            let mark = u32::try_from(mark).unwrap_or(u32::MAX - 1);
            c.drain_mark = NonZeroU32::new(mark.saturating_add(1));
            self.core.mark_dirty(id.0);
        }
    }

    /// The local address a connection was accepted on.
    pub fn local_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.core.conns.get(id.0).and_then(|c| c.socket.local_addr().ok())
    }

    /// Starts a child process with piped stdin, stdout and stderr, in its own process group,
    /// its pipes served by this loop. Its output comes to [`Handler::on_process_output`] and its
    /// end to [`Handler::on_process_exit`].
    ///
    /// # Errors
    /// The program cannot be started, or its pipes cannot be registered.
    pub fn spawn(&mut self, cmd: std::process::Command) -> io::Result<ProcId> {
        let tag = self.core.inherited_tag();
        let core = &mut *self.core;
        core.procs.spawn(core.poll.registry(), cmd, tag, core.now)
    }

    /// Queues bytes for a child's stdin (written as the pipe takes them).
    ///
    /// # Errors
    /// [`InputError::Closed`] if the process or its stdin is gone; [`InputError::Full`] if the
    /// unwritten bytes would pass the queue cap (nothing is queued then).
    pub fn process_write(&mut self, id: ProcId, bytes: &[u8]) -> Result<(), InputError> {
        let core = &mut *self.core;
        core.procs.write(core.poll.registry(), id, bytes, core.config.queue_cap)
    }

    /// Closes a child's stdin once the queued bytes are written.
    pub fn process_close_stdin(&mut self, id: ProcId) {
        self.core.procs.close_stdin(self.core.poll.registry(), id);
    }

    /// Sends a signal to a child's process group.
    ///
    /// # Errors
    /// The process has exited, or kill(2) failed.
    pub fn process_signal(&mut self, id: ProcId, sig: Signal) -> io::Result<()> {
        self.core.procs.signal(id, sig)
    }

    /// Ends a child: its stdin is closed, it gets SIGTERM now and SIGKILL after `grace` if it
    /// is still running then.
    pub fn terminate_process(&mut self, id: ProcId, grace: Duration) {
        self.core.procs.terminate(self.core.poll.registry(), id, grace, self.core.now);
    }

    /// Stops reading a child's output (flow control: the child blocks once its pipe is full).
    pub fn pause_process_output(&mut self, id: ProcId) {
        self.core.procs.pause_output(id, true);
    }

    /// Reads a child's output again.
    pub fn resume_process_output(&mut self, id: ProcId) {
        self.core.procs.pause_output(id, false);
    }

    /// A running child's pid (`None` once it has exited).
    pub fn process_pid(&self, id: ProcId) -> Option<u32> {
        self.core.procs.pid(id)
    }

    /// Children started and not yet reported gone.
    pub fn process_count(&self) -> usize {
        self.core.procs.len()
    }

    /// The SIGTERM-to-SIGKILL grace children get when the server shuts down (default 5 s).
    pub fn set_process_shutdown_grace(&mut self, grace: Duration) {
        self.core.procs.shutdown_grace = grace;
    }

    /// Stops the loop after the current wake-up (`Server::run` returns).
    pub fn stop(&mut self) {
        self.core.stopping = true;
    }

    /// The tag given to a connection ([`Context::set_tag`], or inherited when it was made),
    /// [`Tag::NONE`] if none was or the id is stale. In `on_close` it is still the closed
    /// connection's.
    pub fn tag(&self, id: ConnId) -> Tag {
        self.core.conn_tag(id.0)
    }

    /// Names the application that owns a connection: every later callback about it reads it
    /// back with [`Context::tag`].
    pub fn set_tag(&mut self, id: ConnId, tag: Tag) {
        if let Some(c) = self.core.conns.get_mut(id.0) {
            c.tag = tag;
        }
    }

    /// The tag of a child process, as [`Context::tag`] (still its own in `on_process_exit`).
    pub fn process_tag(&self, id: ProcId) -> Tag {
        self.core.proc_tag(id.0)
    }

    /// Names the application that owns a child process.
    pub fn set_process_tag(&mut self, id: ProcId, tag: Tag) {
        self.core.procs.set_tag(id.0, tag);
    }

    /// The tag that connections ([`Context::connect`]) and processes ([`Context::spawn`]) made
    /// for the rest of this callback get. Without it they inherit the tag of the connection or
    /// process the callback is about (none in `on_start`, `on_tick` and `on_wake`).
    pub fn tag_new(&mut self, tag: Tag) {
        self.core.new_tag = Some(tag);
    }

    /// Starts the close handshake with a connection.
    pub fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.core.close(id.0, code, reason);
    }
}
