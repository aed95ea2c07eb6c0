//! Plain HTTP under a route: the client's connection, taken over at its request head
//! (`Handler::on_request_head`), and one upstream TCP connection per exchange, joined by a
//! [`relay::Exchange`] that does the HTTP. This file only moves bytes between the two sockets,
//! with flow control ([`HIGH_WATER`]/[`LOW_WATER`], as for WebSockets) and the deadlines for the
//! connect (`--upstream-timeout`) and the response head (`--response-timeout`, 60 s by default:
//! a long poll is held until it has news), both 504; the upstream unreachable, closing early or
//! answering garbage is 502 (or, once the response has started, the client's connection is
//! cut: it sees a short body).

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use super::{HIGH_WATER, LOW_WATER, Proxy, headers, target};
use crate::proto::relay::{self, ClientHead, Exchange};
use crate::server::{ConnId, ConnectError, Context, Request};
use crate::{info, warn};

/// The exchanges being relayed, by the client's id, and their upstreams.
#[derive(Debug, Default)]
pub(super) struct Relays {
    by_client: HashMap<ConnId, Relay>,
    /// Upstream id -> client id.
    upstreams: HashMap<ConnId, ConnId>,
    /// What goes to the other side from one read (kept: no allocation per read).
    out: Vec<u8>,
}

#[derive(Debug)]
struct Relay {
    upstream: ConnId,
    route: usize,
    exchange: Exchange,
    /// Whether the upstream's connect is done.
    connected: bool,
    /// Until the upstream is connected, the connect must be done by then (`--upstream-timeout`
    /// from the request head); after, the response head must have come by then
    /// (`--response-timeout` from the connect, and from the last piece of the request's body
    /// passed up while one is sent). 504 after either.
    deadline: Duration,
}

impl Relays {
    /// The other side of a relayed exchange.
    pub(super) fn partner(&self, id: ConnId) -> Option<ConnId> {
        match self.by_client.get(&id) {
            Some(r) => Some(r.upstream),
            None => self.upstreams.get(&id).copied(),
        }
    }
}

impl Proxy {
    /// A plain request on `route`: relayed to the route's upstream. Returns whether the proxy
    /// took the exchange (it always does for a plain-`ws://` route; a `wss://` one is answered
    /// 502, since weir dials no TLS for plain HTTP yet).
    pub fn on_request_head(
        &mut self,
        ctx: &mut Context<'_>,
        route: usize,
        req: &Request<'_>,
        head: ClientHead,
    ) -> bool {
        let client = req.id;
        let Some(r) = self.routes.get_mut(route) else { return false };
        r.stats.http_requests += 1;
        let rest = req.path.get(r.prefix.trim_end_matches('/').len()..).unwrap_or("");
        let Ok(target) = target::upstream_target(&r.upstream.target, rest, req.query) else {
            answer(ctx, client, 400, "a . or .. path segment");
            return true;
        };
        if r.upstream.tls {
            answer(ctx, client, 502, "plain HTTP to a wss:// upstream is not supported");
            return true;
        }
        let up = match ctx.connect_tcp(r.addr) {
            Ok(up) => up,
            Err(e) => {
                warn!("upstream connect failed", route = r.prefix, error = e);
                r.stats.upstream_failures += 1;
                answer(ctx, client, 502, "upstream unreachable");
                return true;
            }
        };
        let fields = headers::forward(req.headers, req.peer, req.host);
        let limits = crate::proto::http::Limits::default();
        let host = r.upstream.host_header();
        let (exchange, head) = Exchange::new(req.method, &target, &host, &fields, head, limits);
        let _ = ctx.tcp_write(up, &head);
        info!("proxy: http", client = client, upstream = up, route = r.prefix, method = req.method);
        let deadline = ctx.now() + self.timeout;
        let relay = Relay { upstream: up, route, exchange, connected: false, deadline };
        self.http.by_client.insert(client, relay);
        self.http.upstreams.insert(up, client);
        true
    }

    /// Bytes from either side of a relayed exchange.
    pub fn on_tcp_data(&mut self, ctx: &mut Context<'_>, id: ConnId, bytes: &[u8]) {
        if let Some(r) = self.http.by_client.get_mut(&id) {
            let up = r.upstream;
            let mut out = std::mem::take(&mut self.http.out);
            out.clear();
            let n = match r.exchange.client_bytes(bytes, &mut out) {
                Ok(n) => n,
                Err(e) => {
                    self.http.out = out;
                    return self.fail(ctx, id, e.status(), &e.to_string());
                }
            };
            if n > 0 && r.connected {
                // An upload in progress is not a silent upstream: it may answer once it is whole.
                r.deadline = ctx.now() + self.response_timeout;
            }
            if let Some(s) = self.routes.get_mut(r.route) {
                s.stats.bytes_up += n as u64;
            }
            self.pass(ctx, id, up, &out);
            self.http.out = out;
        } else if let Some(&client) = self.http.upstreams.get(&id) {
            let Some(r) = self.http.by_client.get_mut(&client) else { return };
            let mut out = std::mem::take(&mut self.http.out);
            out.clear();
            if ctx.draining() {
                r.exchange.close_after();
            }
            let passed = r.exchange.upstream_bytes(bytes, &mut out);
            if let Some(s) = self.routes.get_mut(r.route) {
                s.stats.bytes_down += out.len() as u64;
            }
            match passed {
                Ok(()) => self.pass(ctx, id, client, &out),
                Err(e) => self.fail(ctx, client, e.status(), &e.to_string()),
            }
            self.http.out = out;
        } else {
            return;
        }
        self.finish_if_done(ctx, id);
    }

    /// Queues `bytes` from `from` to `to`, and stops reading `from` while `to`'s queue is
    /// above the high-water mark.
    fn pass(&mut self, ctx: &mut Context<'_>, from: ConnId, to: ConnId, bytes: &[u8]) {
        if ctx.tcp_write(to, bytes).is_err() {
            // Past the queue cap (the mark below keeps it far from it) or gone.
            let client = self.http.upstreams.get(&from).copied().unwrap_or(from);
            return self.fail(ctx, client, 502, "the other side is gone");
        }
        if ctx.queued_bytes(to) > HIGH_WATER {
            ctx.pause_reading(from);
            ctx.notify_drained(to, LOW_WATER);
        }
    }

    /// An upstream's connect is done: the request goes now, and its response head is due
    /// within `--response-timeout`.
    pub fn on_tcp_connected(&mut self, ctx: &mut Context<'_>, up: ConnId) {
        let Some(&client) = self.http.upstreams.get(&up) else { return };
        if let Some(r) = self.http.by_client.get_mut(&client) {
            r.connected = true;
            r.deadline = ctx.now() + self.response_timeout;
        }
    }

    /// A side finished sending.
    pub fn on_tcp_eof(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(&client) = self.http.upstreams.get(&id) {
            let Some(r) = self.http.by_client.get_mut(&client) else { return };
            if let Err(e) = r.exchange.upstream_eof() {
                return self.fail(ctx, client, e.status(), &e.to_string());
            }
            self.finish_if_done(ctx, client);
        } else if let Some(r) = self.http.by_client.get(&id) {
            // RFC 9112 §9.6: a client that half-closes after its request still gets the answer;
            // one that stops inside its body has abandoned it.
            if !r.exchange.request_done() {
                self.fail(ctx, id, 400, "the client closed inside its request body");
            }
        }
    }

    /// A side is gone (after it connected).
    pub fn on_tcp_closed(&mut self, ctx: &mut Context<'_>, id: ConnId, error: Option<&io::Error>) {
        if let Some(r) = self.http.by_client.remove(&id) {
            // The client went away: its upstream has nobody to answer.
            self.http.upstreams.remove(&r.upstream);
            ctx.tcp_close(r.upstream);
        } else if let Some(&client) = self.http.upstreams.get(&id) {
            let why = error.map_or("the upstream closed".to_string(), ToString::to_string);
            self.fail(ctx, client, 502, &why);
        }
    }

    /// An upstream connect failed: 502, or 504 when it timed out. Returns whether it was one
    /// of the plain exchanges'.
    pub(super) fn http_connect_failed(
        &mut self,
        ctx: &mut Context<'_>,
        up: ConnId,
        error: &ConnectError,
    ) -> bool {
        let Some(&client) = self.http.upstreams.get(&up) else { return false };
        let status = if *error == ConnectError::Timeout { 504 } else { 502 };
        self.fail(ctx, client, status, &error.to_string());
        true
    }

    /// Exchanges whose upstream is late get 504 (its connect past `--upstream-timeout`, its
    /// response head past `--response-timeout`), or 408 when it is the client's body that
    /// stopped coming.
    pub fn on_tick(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        let late: Vec<ConnId> = self
            .http
            .by_client
            .iter()
            .filter(|(_, r)| !r.exchange.started() && now >= r.deadline)
            .map(|(&id, _)| id)
            .collect();
        for client in late {
            let Some(r) = self.http.by_client.get(&client) else { continue };
            // The upstream took all it was sent of a body that stopped coming: the client is the
            // late one (RFC 9110 §15.5.9: 408), not the upstream (504, an upstream failure).
            let (status, why) = if !r.connected {
                (504, "the upstream did not connect in time")
            } else if !r.exchange.request_done() && ctx.queued_bytes(r.upstream) == 0 {
                (408, "the client did not send its body in time")
            } else {
                (504, "the upstream did not answer in time")
            };
            self.fail(ctx, client, status, why);
        }
    }

    /// The response is whole: the upstream is closed and the client's connection serves the
    /// next request (or closes, when it asked to, pipelined, or its body was cut short).
    fn finish_if_done(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let client = self.http.upstreams.get(&id).copied().unwrap_or(id);
        let Some(r) = self.http.by_client.get(&client) else { return };
        if !r.exchange.response_done() {
            return;
        }
        let keep_alive = r.exchange.keep_alive() && r.exchange.request_done();
        let up = r.upstream;
        self.forget(client);
        ctx.tcp_close(up);
        ctx.resume_reading(client);
        ctx.set_tag(client, crate::server::Tag::NONE);
        ctx.http_exchange_done(client, keep_alive);
    }

    /// The exchange failed: the client gets `status` if its response has not started, else its
    /// connection is cut; the upstream is closed.
    fn fail(&mut self, ctx: &mut Context<'_>, client: ConnId, status: u16, why: &str) {
        let Some(r) = self.http.by_client.get(&client) else { return };
        let (up, started, route) = (r.upstream, r.exchange.started(), r.route);
        self.forget(client);
        ctx.tcp_close(up);
        let prefix = self.routes.get_mut(route).map_or(String::new(), |r| {
            r.stats.upstream_failures += u64::from(status >= 500);
            r.prefix.clone()
        });
        info!("upstream failed", route = prefix, status = status, started = started, error = why);
        if started {
            ctx.tcp_close(client);
        } else {
            answer(ctx, client, status, why);
        }
    }

    fn forget(&mut self, client: ConnId) {
        if let Some(r) = self.http.by_client.remove(&client) {
            self.http.upstreams.remove(&r.upstream);
        }
    }
}

/// Answers a client whose exchange the proxy took with weir's own response, then closes it.
fn answer(ctx: &mut Context<'_>, client: ConnId, status: u16, text: &str) {
    let _ = ctx.tcp_write(client, &relay::error_response(status, text));
    ctx.http_exchange_done(client, false);
}
