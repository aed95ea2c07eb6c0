//! The HTTP side of a server connection: the request head, its body, the upgrade decision,
//! plain responses (closing, kept alive for the next request, or streamed), and deferred
//! upgrades.

use crate::proto::body::{ChunkedDecoder, Framing, request_framing};
use crate::proto::error::{BodyError, HttpError};
use crate::proto::handshake::{self, After, Classified};
use crate::proto::http::{self, Header, Request};
use crate::proto::relay::{ClientHead, RETRY_AFTER};
use crate::proto::{Connection, HandshakeError, Role, Status};
use crate::server::api::{self, ConnId, Decision, Response};
use crate::server::compress::Pmd;
use crate::server::conn::At;
use crate::server::core::write_with;
use crate::server::dispatch::Then;
use crate::server::event_loop::Engine;
use crate::server::slab::Key;
use crate::server::state::{Body, ConnState, PIPELINE_OUT_MAX, Tcp, WsExt};
use crate::{debug, info};

/// The interim response to `Expect: 100-continue` (RFC 9110 §15.2.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Header slots kept on the stack (no allocation per request) up to this many.
const STACK_SLOTS: usize = 128;

/// `n` header slots: on the stack when they fit, else in `heap`.
fn header_slots<'s, 'a>(
    stack: &'s mut [Header<'a>; STACK_SLOTS],
    heap: &'s mut Vec<Header<'a>>,
    n: usize,
) -> &'s mut [Header<'a>] {
    if n <= STACK_SLOTS {
        &mut stack[..n]
    } else {
        heap.resize(n, Header::default());
        heap
    }
}

/// Whether a plain request expects `100 Continue` (RFC 9110 §10.1.1): `Expect: 100-continue`
/// in HTTP/1.1; an HTTP/1.0 request's expectations are ignored.
///
/// # Errors
/// [`HttpError::ExpectationFailed`] for any other expectation.
fn expectation(req: &Request<'_, '_>) -> Result<bool, HttpError> {
    if req.minor_version == 0 || req.fields().count("expect") == 0 {
        return Ok(false);
    }
    if req.fields().tokens("expect").all(|t| t.eq_ignore_ascii_case(b"100-continue")) {
        Ok(true)
    } else {
        Err(HttpError::ExpectationFailed)
    }
}

/// What became of a request head.
enum Outcome {
    /// The WebSocket is open; bytes after the head are frames.
    Opened,
    /// The handler will decide later; bytes after the head wait.
    Deferred,
    /// A body follows (its `buf` is the head's, given by the caller).
    Body(Body),
    /// Answered; `true` if the connection stays open for another request.
    Answered(bool),
    /// The handler relays the exchange (`on_request_head`): bytes after the head are its.
    Relayed,
}

impl<D: Default> Engine<'_, D> {
    /// `n` new bytes in the read buffer for connection `key`.
    pub(super) fn on_bytes(&mut self, key: Key, n: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return };
        let body = match &mut conn.state {
            // A response is on its way (or the decision is, or it streams): the rest is not ours.
            ConnState::Http { .. }
            | ConnState::Connecting(_)
            | ConnState::Deferred(_)
            | ConnState::Stream
            | ConnState::Awaiting { .. } => return,
            ConnState::Ws(_) => return self.on_frames(key, 0, n),
            ConnState::Response(_) => return self.on_response_bytes(key, n),
            ConnState::Tcp(_) => return self.on_tcp_bytes(key, n),
            ConnState::Head(_) => false,
            ConnState::Body(_) => true,
        };
        if let Some(buf) = conn.state.input() {
            if buf.capacity() == 0 {
                *buf = core.pool.take();
            }
            buf.extend_from_slice(&self.rbuf[..n]);
        }
        if body {
            self.on_body_bytes(key);
        } else {
            self.on_head_bytes(key);
        }
    }

    /// Looks for a whole head in what the connection gathered, and serves it and every request
    /// pipelined after it. The work is bounded by what was read (at most one read's worth
    /// beyond a head): the socket may be drained already, so nothing may be left for later.
    pub(super) fn on_head_bytes(&mut self, key: Key) {
        loop {
            let Some(conn) = self.core.conns.get_mut(key) else { return };
            let queued = conn.out.len();
            let ConnState::Head(h) = &mut conn.state else { return };
            if queued > PIPELINE_OUT_MAX || h.body_owed {
                // `settle` resumes once the answers drain (and a body owed is written).
                h.pipeline_wait = true;
                return;
            }
            let head_len = match h.reader.feed(&h.buf) {
                Ok(Status::Partial) => return,
                Ok(Status::Complete(len)) => len,
                Err(e) => return self.refuse_error(key, e),
            };
            let head = std::mem::take(&mut h.buf);
            let outcome = self.on_head(key, &head, head_len);
            let rest = head.get(head_len..).unwrap_or_default();
            match outcome {
                Outcome::Opened => {
                    // Frames sent along with the upgrade (less than one read).
                    let n = rest.len().min(self.rbuf.len());
                    self.rbuf[..n].copy_from_slice(&rest[..n]);
                    self.core.pool.give(head);
                    if n > 0 {
                        self.on_frames(key, 0, n);
                    }
                    return;
                }
                Outcome::Deferred => {
                    self.keep(key, rest);
                    self.core.pool.give(head);
                    return;
                }
                Outcome::Body(body) => {
                    if let Some(conn) = self.core.conns.get_mut(key) {
                        conn.state.begin_body(Body { buf: head, ..body });
                    }
                    return self.on_body_bytes(key);
                }
                Outcome::Relayed => {
                    if !rest.is_empty() {
                        let owner = self.about(key);
                        self.call(owner, Then::Continue, |h, ctx| {
                            h.on_tcp_data(ctx, ConnId(key), rest);
                        });
                    }
                    return self.core.pool.give(head);
                }
                Outcome::Answered(false) => return self.core.pool.give(head),
                Outcome::Answered(true) => {
                    let more = !rest.is_empty();
                    self.keep(key, rest);
                    self.core.pool.give(head);
                    if !more {
                        return;
                    }
                }
            }
        }
    }

    /// Keeps `bytes` as the start of what the connection reads next.
    fn keep(&mut self, key: Key, bytes: &[u8]) {
        let core = &mut self.core;
        let Some(buf) = core.conns.get_mut(key).and_then(|c| c.state.input()) else { return };
        if !bytes.is_empty() {
            if buf.capacity() == 0 {
                *buf = core.pool.take();
            }
            buf.extend_from_slice(bytes);
        }
    }

    /// A whole request head.
    fn on_head(&mut self, key: Key, head: &[u8], head_len: usize) -> Outcome {
        let Some(conn) = self.core.conns.get_mut(key) else { return Outcome::Answered(false) };
        let peer = conn.peer();
        let refuse = match &conn.state {
            ConnState::Head(h) => h.refuse,
            _ => None,
        };
        let limits = self.core.config.http;
        let mut stack = [Header::default(); STACK_SLOTS];
        let mut heap = Vec::new();
        let slots = header_slots(&mut stack, &mut heap, limits.max_headers);
        let req = match http::parse_request(&head[..head_len], slots, &limits) {
            Ok(req) => req,
            Err(e) => {
                self.refuse_error(key, e);
                return Outcome::Answered(false);
            }
        };
        let path = self.core.shared_path(req.path());
        if let Some(c) = self.core.conns.get_mut(key) {
            c.path = Some(path);
        }
        let classified = match handshake::classify(&req) {
            Ok(c) => c,
            Err(e) => {
                self.refuse_error(key, e);
                return Outcome::Answered(false);
            }
        };
        if refuse.is_some() || self.core.draining {
            let r = if self.core.draining {
                Response::shutting_down()
            } else {
                let mut r = Response::text(refuse.unwrap_or(503), "too many connections\n");
                r.headers.push(("Retry-After".into(), RETRY_AFTER.as_bytes().to_vec()));
                r
            };
            let reason = std::str::from_utf8(&r.body).unwrap_or_default().trim_end();
            info!("refused", peer = peer, path = req.path(), status = r.status, reason = reason);
            self.core.respond(key, &r);
            return Outcome::Answered(false);
        }
        let up = match classified {
            Classified::Upgrade(up) => up,
            Classified::Plain => {
                let expects_continue = match (http::host(&req), expectation(&req)) {
                    (Err(e), _) | (_, Err(e)) => {
                        self.refuse_error(key, e);
                        return Outcome::Answered(false);
                    }
                    (Ok(_), Ok(c)) => c,
                };
                let framing = match request_framing(&req) {
                    Err(e) => {
                        self.refuse_error(key, e);
                        return Outcome::Answered(false);
                    }
                    Ok(f) => f,
                };
                // A relayed body streams on as it comes: no limit on its size applies here.
                let relayed = self.relay(key, &req, framing);
                match framing {
                    _ if relayed => {}
                    Framing::None => return Outcome::Answered(self.serve(key, &req, &[])),
                    Framing::Length(n) if n > self.core.config.max_body_size as u64 => {
                        self.refuse_error(key, BodyError::TooLarge);
                        return Outcome::Answered(false);
                    }
                    _ => {}
                }
                // RFC 9110 §10.1.1: content will follow and none has come yet: ask for it now
                // (a final status that the head alone decides is sent above).
                let content = matches!(framing, Framing::Chunked)
                    || matches!(framing, Framing::Length(n) if n > 0);
                if expects_continue && content && head.len() == head_len {
                    let core = &mut self.core;
                    if let Some(c) = core.conns.get_mut(key) {
                        c.out.push_copy(&[CONTINUE], &mut core.pool);
                        core.mark_dirty(key);
                    }
                }
                if relayed {
                    return Outcome::Relayed;
                }
                return Outcome::Body(Body {
                    buf: Vec::new(),
                    head_len,
                    framing,
                    decoder: ChunkedDecoder::new(),
                    pos: head_len,
                    decoded: Vec::new(),
                });
            }
        };
        let asked = api::Request {
            id: ConnId(key),
            peer,
            method: req.method,
            target: up.target,
            path: up.path,
            query: up.query,
            host: up.host,
            origin: up.origin,
            headers: up.headers,
            body: &[],
        };
        let decision =
            self.call(self.about(key), Then::Continue, |h, ctx| h.on_upgrade(ctx, &asked));
        match decision {
            Decision::Reject(r) => {
                info!("upgrade refused", peer = peer, path = up.path, status = r.status);
                self.core.respond(key, &r);
                Outcome::Answered(false)
            }
            Decision::Defer => {
                let config = &self.core.config;
                let pmd = config.compression.and_then(|c| {
                    let (mut state, value) = c.accept(up.fields(), config.ws.max_message_size)?;
                    state.answer = Some(value);
                    Some(state)
                });
                if let Some(c) = self.core.conns.get_mut(key) {
                    c.state.defer(up.key, &mut self.core.pool);
                    // Agreed when the handler accepts (`Core::accept_deferred`).
                    if let ConnState::Deferred(d) = &mut c.state {
                        d.pmd = pmd;
                    }
                }
                Outcome::Deferred
            }
            Decision::Accept { protocol, headers } => {
                let mut extra: Vec<(&str, &[u8])> =
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
                // RFC 7692 §5: the first offer this end can accept, answered in the 101.
                let config = &self.core.config;
                let pmd = config
                    .compression
                    .and_then(|c| c.accept(up.fields(), config.ws.max_message_size));
                if let Some((_, value)) = &pmd {
                    extra.push(("Sec-WebSocket-Extensions", value.as_bytes()));
                }
                let bytes = write_with(|out| {
                    handshake::write_accept(out, up.key, protocol.as_deref(), &extra)
                });
                self.open(key, &bytes, pmd.map(|(state, _)| *state));
                Outcome::Opened
            }
        }
    }

    /// Offers a plain request's head to the handler (`on_request_head`) before its body is
    /// read; returns whether it relays the exchange. Then the connection is a byte stream of the
    /// handler's (`ConnState::Tcp`, as a dialled one) until `Context::http_exchange_done`.
    fn relay(&mut self, key: Key, req: &Request<'_, '_>, framing: Framing) -> bool {
        let Some(conn) = self.core.conns.get(key) else { return false };
        let asked = plain_request(key, conn.peer(), req, &[]);
        let keep_alive = self.keeps_alive(req);
        let head = ClientHead { framing, keep_alive, http10: req.minor_version == 0 };
        // A byte stream of the handler's while it is asked, so it can answer at once.
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return false };
        let relaying = ConnState::Tcp(Tcp { connected: true, inbound: true, ..Tcp::default() });
        let mut stashed = std::mem::replace(&mut conn.state, relaying);
        let claimed = self
            .call(self.about(key), Then::Continue, |h, ctx| h.on_request_head(ctx, &asked, head));
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return claimed };
        if !claimed {
            conn.state = stashed;
            return false;
        }
        stashed.release(&mut core.pool);
        if matches!(conn.state, ConnState::Tcp(_)) {
            // No deadline of the head's applies while the handler relays.
            let ws = core.config.ws.without_handshake_timeout();
            conn.ws = Connection::new(Role::Server, ws, core.now);
        }
        true
    }

    /// RFC 9112 §9.3: an HTTP/1.1 connection persists unless either side says close.
    fn keeps_alive(&self, req: &Request<'_, '_>) -> bool {
        req.minor_version == 1
            && !req.fields().has_token("connection", "close")
            && !self.core.draining
    }

    /// Bytes of a request body: when it is whole, the request is served.
    fn on_body_bytes(&mut self, key: Key) {
        let max = self.core.config.max_body_size;
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return };
        let ConnState::Body(state) = &mut conn.state else { return };
        let state = &mut **state;
        let end = match state.framing {
            Framing::Length(n) => {
                let end = state.head_len.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                if state.buf.len() < end {
                    return;
                }
                end
            }
            Framing::Chunked => {
                if state.decoded.capacity() == 0 {
                    state.decoded = core.pool.take();
                }
                let input = state.buf.get(state.pos..).unwrap_or_default();
                match state.decoder.feed(input, &mut state.decoded, max) {
                    Ok(used) => state.pos += used,
                    Err(e) => return self.refuse_error(key, e),
                }
                if !state.decoder.is_done() {
                    // The raw bytes are bounded too: chunk extensions and trailers cost memory.
                    if state.buf.len() - state.head_len
                        > max.saturating_mul(2).saturating_add(64 << 10)
                    {
                        self.refuse_error(key, BodyError::TooLarge);
                    }
                    return;
                }
                state.pos
            }
            Framing::None => state.head_len,
        };
        let Some(state) = conn.state.end_body(&core.config.http) else { return };
        let Body { buf: head, decoded, head_len, framing, .. } = *state;
        let limits = self.core.config.http;
        let mut stack = [Header::default(); STACK_SLOTS];
        let mut heap = Vec::new();
        let slots = header_slots(&mut stack, &mut heap, limits.max_headers);
        let keep_alive = match http::parse_request(&head[..head_len], slots, &limits) {
            Ok(req) => {
                let body = match framing {
                    Framing::Chunked => &decoded[..],
                    _ => head.get(head_len..end).unwrap_or_default(),
                };
                self.serve(key, &req, body)
            }
            Err(e) => {
                self.refuse_error(key, e);
                false
            }
        };
        if keep_alive {
            self.keep(key, head.get(end..).unwrap_or_default());
        }
        self.core.pool.give(head);
        self.core.pool.give(decoded);
        let more =
            |c: &mut crate::server::conn::Conn| c.state.input().is_some_and(|b| !b.is_empty());
        if keep_alive && self.core.conns.get_mut(key).is_some_and(more) {
            self.on_head_bytes(key);
        }
    }

    /// Hands a plain request to the handler and queues its response. Returns whether the
    /// connection stays open for another request (after a deferred answer, when it comes).
    fn serve(&mut self, key: Key, req: &Request<'_, '_>, body: &[u8]) -> bool {
        let Some(conn) = self.core.conns.get(key) else { return false };
        let peer = conn.peer();
        let keep_alive = self.keeps_alive(req);
        // While the handler runs, the connection streams into a queue of its own: a handler
        // that answers with a streamed response writes its first bytes (server-sent events:
        // `retry:` and the replay after `Last-Event-ID`) before its head is queued, and they
        // must follow the head.
        let (queued, stashed, eof) = match self.core.conns.get_mut(key) {
            Some(c) => {
                let stashed = c.state.begin_serve();
                // A client that half-closed still gets its answers (RFC 9112 §9.6), streamed
                // ones too: `eof` says only whether the handler ended the stream meanwhile.
                (std::mem::take(&mut c.out), stashed, std::mem::take(&mut c.eof))
            }
            None => return false,
        };
        let asked = plain_request(key, peer, req, body);
        let r = self.call(self.about(key), Then::Continue, |h, ctx| h.on_request(ctx, &asked));
        let Some(conn) = self.core.conns.get_mut(key) else { return false };
        let mut early = std::mem::replace(&mut conn.out, queued);
        // A streamed response the handler wrote whole already (`Context::finish_stream`).
        let finished = conn.state.served_whole();
        // Or ended it short (`Context::end_stream`: a slow reader, a replay overtaken).
        let ended = conn.eof;
        conn.eof |= eof;
        self.core.stats.http_requests += 1;
        if r.defer {
            // The answer comes with `Context::respond`; what was written meanwhile is no answer.
            // Kept alive, what follows the request waits for it (`ConnState::Awaiting`).
            debug!(
                "http",
                peer = peer,
                method = req.method,
                path = req.path(),
                status = "deferred"
            );
            early.drop_unstarted(&mut self.core.pool);
            let head = req.method == "HEAD";
            conn.state.await_answer(stashed, head, keep_alive, &mut self.core.pool);
            let ws_config = self.core.config.ws.without_handshake_timeout();
            conn.ws = Connection::new(Role::Server, ws_config, self.core.now);
            self.core.mark_dirty(key);
            return keep_alive;
        }
        debug!("http", peer = peer, method = req.method, path = req.path(), status = r.status);
        // A streamed body whose length the handler gave, on a kept-alive connection: the next
        // request waits for it (`ConnState::body_owed`).
        let sized =
            r.stream && r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
        let after = match (r.stream, keep_alive) {
            _ if sized && keep_alive => After::Sized,
            (true, _) => After::Stream,
            (false, true) => After::KeepAlive,
            (false, false) => After::Close,
        };
        let extra: Vec<(&str, &[u8])> =
            r.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        let mut bytes =
            write_with(|out| handshake::write_http_response(out, r.status, &extra, &r.body, after));
        // RFC 9110 §9.3.2: the answer to HEAD is the head of the answer to GET, without the
        // body (its Content-Length stays); a kept-alive client would read the body as the next
        // response.
        if req.method == "HEAD" && !r.stream && !matches!(r.status, 100..=199 | 204 | 304) {
            bytes.truncate(bytes.len().saturating_sub(r.body.len()));
        }
        let now = self.core.now;
        let ws_config = self.core.config.ws;
        let Some(conn) = self.core.conns.get_mut(key) else { return false };
        if r.status >= 400 {
            crate::server::stats::Stats::count(&mut self.core.stats.handshakes_rejected, r.status);
        }
        conn.out.push_copy(&[&bytes], &mut self.core.pool);
        if matches!(after, After::Stream | After::Sized) && !early.is_empty() {
            let mut first = Vec::with_capacity(early.len());
            let _ = early.write_to(&mut first, &mut self.core.pool);
            conn.out.push_owned(first, &mut self.core.pool);
        }
        early.drop_unstarted(&mut self.core.pool);
        // A streamed body of a given length then closes (`Connection: close`); kept alive, the
        // next request is read (after a body owed), with a fresh deadline for it.
        conn.state.end_serve(stashed, after, sized, finished, ended);
        match after {
            After::Stream => {
                conn.opened_at = At::new(now);
                conn.ws = Connection::new(Role::Server, ws_config.without_handshake_timeout(), now);
            }
            After::KeepAlive | After::Sized => {
                conn.ws = Connection::new(Role::Server, ws_config, now)
            }
            After::Close => {}
        }
        self.core.mark_dirty(key);
        matches!(after, After::KeepAlive | After::Sized)
    }

    /// Opens the WebSocket (its 101 is `response`), with permessage-deflate if agreed.
    /// Returns what the client sent after a deferred upgrade's head.
    pub(super) fn open(&mut self, key: Key, response: &[u8], pmd: Option<Pmd>) -> Vec<u8> {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_mut(key) else { return Vec::new() };
        conn.out.push_copy(&[response], &mut core.pool);
        // A deferred upgrade's was negotiated at its request (`Core::accept_deferred`).
        let pmd = pmd.or_else(|| match &mut conn.state {
            ConnState::Deferred(d) => d.pmd.take().map(|p| *p),
            _ => None,
        });
        if pmd.is_some() {
            conn.ws.set_compression(true);
        }
        conn.ws.open(core.now);
        let early = conn.state.open_ws(&mut core.pool);
        if let Some(w) = conn.state.ws() {
            // A state that lasts nothing between messages is made per message.
            let pmd = pmd.filter(|p| !p.transient);
            w.ext = pmd.map(|pmd| Box::new(WsExt { pmd: Some(pmd), streaming: false }));
        }
        // Accept to 101: `opened_at` was the accept time until now (the clock, not the turn's
        // `now`: most handshakes end in the turn their request came in).
        core.stats
            .handshake_seconds
            .observe(core.start.elapsed().saturating_sub(conn.opened_at.get()));
        conn.opened_at = At::new(core.now);
        core.stats.connections_open += 1;
        core.stats.connections_total += 1;
        info!("open", id = ConnId(key), peer = conn.peer(), path = conn.path());
        core.mark_dirty(key);
        self.call(self.about(key), Then::Continue, |h, ctx| h.on_open(ctx, ConnId(key)));
        early
    }

    pub(super) fn refuse_error(&mut self, key: Key, e: impl Into<HandshakeError>) {
        let e = e.into();
        let Some(conn) = self.core.conns.get(key) else { return };
        info!(
            "request refused",
            peer = conn.peer(),
            status = e.status(),
            reason = e.reason(),
            rule = e.rfc()
        );
        let bytes = write_with(|out| handshake::write_error(out, e));
        self.core.queue_response(key, e.status(), &bytes);
    }

    /// A deferred upgrade was accepted: send the 101, open, and read what the client sent
    /// meanwhile.
    pub(super) fn open_deferred(&mut self, key: Key, response: &[u8]) {
        let early = self.open(key, response, None);
        let n = early.len().min(self.rbuf.len());
        self.rbuf[..n].copy_from_slice(&early[..n]);
        self.core.pool.give(early);
        if n > 0 {
            self.on_frames(key, 0, n);
        }
        self.read_again(key);
    }
}

/// A plain request as the handler gets it.
fn plain_request<'a>(
    key: Key,
    peer: std::net::SocketAddr,
    req: &Request<'a, 'a>,
    body: &'a [u8],
) -> api::Request<'a> {
    api::Request {
        id: ConnId(key),
        peer,
        method: req.method,
        target: req.target,
        path: req.path(),
        query: req.query(),
        host: req.header("host").unwrap_or_default(),
        origin: req.header("origin"),
        headers: req.headers,
        body,
    }
}
