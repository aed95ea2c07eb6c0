//! The reverse proxy: WebSocket connections under a path prefix are carried to an upstream
//! server, both ways, message pieces streamed as they arrive.
//!
//! - The upstream handshake comes first (the client's upgrade is deferred): the client's
//!   subprotocol offer and end-to-end headers go upstream ([`headers`]), and the client gets
//!   the subprotocol the upstream chose. An upstream that refuses has its status relayed; one
//!   that cannot be reached is 502; one that is slow is 504 after `--upstream-timeout`.
//! - The upstream's path is the route's base with the rest of the client's path appended; a rest
//!   with a `.` or `..` segment, which could leave the base, is refused with 400 ([`target`]).
//! - Close codes and reasons are relayed; ping and pong are per hop (each side is kept alive
//!   by weir's own heartbeats).
//! - Flow control instead of loss: when one side's queue passes [`HIGH_WATER`], weir stops
//!   reading the other side until the queue drains to [`LOW_WATER`].
//! - Plain HTTP requests under a route go to the same upstream (`plain.rs`), one upstream TCP
//!   connection per exchange, bodies streamed both ways ([`crate::proto::relay`]).

pub mod headers;
mod plain;
pub mod target;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::proto::{CloseCode, MessageKind};
use crate::server::url::WsUrl;
use crate::server::{ConnId, ConnectError, ConnectRequest, Context, Decision, Request, Response};
use crate::{info, warn};

/// Queue size past which the other side of a link stops being read.
pub const HIGH_WATER: usize = 1 << 20;
/// Queue size at which reading resumes.
pub const LOW_WATER: usize = 256 << 10;

/// One `--route`.
#[derive(Debug)]
pub struct Route {
    /// The path prefix it serves.
    pub prefix: String,
    /// Where its connections go.
    pub upstream: WsUrl,
    addr: SocketAddr,
    /// What went through it.
    pub stats: RouteStats,
}

/// Counters of one route.
#[derive(Debug, Default, Clone, Copy)]
pub struct RouteStats {
    /// Client connections proxied (upstream handshake done).
    pub connections: u64,
    /// Of those, the ones whose link is open now (a gauge).
    pub open: u64,
    /// Upstream connections that failed (refused, unreachable, timed out).
    pub upstream_failures: u64,
    /// Messages from clients to the upstream.
    pub messages_up: u64,
    /// Messages from the upstream to clients.
    pub messages_down: u64,
    /// Payload bytes from clients to the upstream.
    pub bytes_up: u64,
    /// Payload bytes from the upstream to clients.
    pub bytes_down: u64,
    /// Plain HTTP requests relayed (or answered 502/504 for the upstream).
    pub http_requests: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    other: ConnId,
    side: Side,
    route: usize,
}

/// The proxy's routes and live links.
#[derive(Debug)]
pub struct Proxy {
    routes: Vec<Route>,
    links: HashMap<ConnId, Link>,
    /// `--upstream-timeout`: an upstream's connect (and a WebSocket upstream's handshake).
    timeout: Duration,
    /// `--response-timeout`: a plain request's upstream, to begin its response.
    response_timeout: Duration,
    /// Plain HTTP exchanges being relayed (`plain.rs`).
    http: plain::Relays,
}

impl Proxy {
    /// Routes from `(prefix, ws-url)` pairs; upstream names are resolved now, never on the loop.
    /// `timeout` bounds an upstream's connect (and a WebSocket upstream's handshake),
    /// `response_timeout` a plain request's wait for its response head.
    ///
    /// # Errors
    /// A URL that is not `ws://`, or a host that does not resolve.
    pub fn new(
        routes: &[(String, String)],
        timeout: Duration,
        response_timeout: Duration,
    ) -> io::Result<Self> {
        let mut out = Vec::new();
        for (prefix, url) in routes {
            let upstream = WsUrl::parse(url)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {e}")))?;
            let addr = upstream.authority().to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{url}: no address"))
            })?;
            out.push(Route {
                prefix: prefix.clone(),
                upstream,
                addr,
                stats: RouteStats::default(),
            });
        }
        Ok(Self {
            routes: out,
            links: HashMap::new(),
            timeout,
            response_timeout,
            http: plain::Relays::default(),
        })
    }

    /// The routes, with their counters.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request path: the longest prefix that matches at a segment boundary.
    pub fn route_for(&self, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let p = r.prefix.trim_end_matches('/');
                path == r.prefix || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|(_, r)| r.prefix.len())
            .map(|(i, _)| i)
    }

    /// A client upgrade on `route`: connect upstream first, decide later.
    pub fn on_upgrade(
        &mut self,
        ctx: &mut Context<'_>,
        route: usize,
        req: &Request<'_>,
    ) -> Decision {
        let (client, peer) = (req.id, req.peer);
        let Some(r) = self.routes.get(route) else {
            return Decision::Reject(Response::text(404, "no route\n"));
        };
        let rest = req.path.get(r.prefix.trim_end_matches('/').len()..).unwrap_or("");
        let Ok(target) = target::upstream_target(&r.upstream.target, rest, req.query) else {
            return Decision::Reject(Response::text(400, "a . or .. path segment\n"));
        };
        let request = ConnectRequest {
            addr: r.addr,
            host: r.upstream.host_header(),
            target,
            protocols: req.protocols().map(str::to_string).collect(),
            headers: headers::forward(req.headers, peer, req.host),
            timeout: Some(self.timeout),
        };
        let connected = if r.upstream.tls {
            ctx.connect_tls(request, &r.upstream.host)
        } else {
            ctx.connect(request)
        };
        match connected {
            Ok(up) => {
                // The two ids together, so a client's lines and its upstream's can be related.
                info!("proxy: linked", client = client, upstream = up, route = r.prefix);
                self.links.insert(up, Link { other: client, side: Side::Upstream, route });
                self.links.insert(client, Link { other: up, side: Side::Client, route });
                Decision::Defer
            }
            Err(e) => {
                warn!("upstream connect failed", route = r.prefix, error = e);
                self.routes[route].stats.upstream_failures += 1;
                Decision::Reject(Response::text(502, "upstream unreachable\n"))
            }
        }
    }

    /// The client's side opened (after [`Proxy::on_connected`] accepted it).
    pub fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        ctx.set_streaming(id, true);
        ctx.set_manual_close(id, true);
    }

    /// The upstream handshake is done: answer the client with the upstream's subprotocol.
    pub fn on_connected(&mut self, ctx: &mut Context<'_>, up: ConnId, protocol: Option<&str>) {
        let Some(link) = self.links.get(&up).copied() else { return };
        if ctx.peer_addr(link.other).is_none() {
            // The client left while the upstream was connecting.
            self.links.remove(&up);
            self.links.remove(&link.other);
            ctx.close(up, CloseCode::GOING_AWAY, "client went away");
            return;
        }
        if ctx.draining() {
            // SIGTERM came while the upstream was connecting: the client, still in its
            // handshake, gets 503 as any request in its handshake at shutdown, and the upstream
            // 1001 (RFC 6455 §7.4.1), rather than a link opened for nothing to close.
            self.links.remove(&up);
            self.links.remove(&link.other);
            ctx.close(up, CloseCode::GOING_AWAY, "server shutting down");
            info!("proxy: refused", client = link.other, upstream = up, reason = "shutting down");
            ctx.reject(link.other, &Response::shutting_down());
            return;
        }
        ctx.set_streaming(up, true);
        ctx.set_manual_close(up, true);
        ctx.accept(link.other, protocol, &[]);
        if let Some(r) = self.routes.get_mut(link.route) {
            r.stats.connections += 1;
            r.stats.open += 1;
        }
    }

    /// The upstream could not be reached or refused: the client gets the matching status.
    pub fn on_connect_failed(&mut self, ctx: &mut Context<'_>, up: ConnId, error: &ConnectError) {
        if self.http_connect_failed(ctx, up, error) {
            return;
        }
        let Some(link) = self.links.remove(&up) else { return };
        self.links.remove(&link.other);
        let route = self.routes.get_mut(link.route);
        let prefix = route.as_ref().map_or("", |r| r.prefix.as_str()).to_string();
        if let Some(r) = route {
            r.stats.upstream_failures += 1;
        }
        let response = match (error.refusal_status(), error) {
            (Some(status), _) => {
                Response::text(status, format!("the upstream refused the upgrade ({status})\n"))
            }
            (None, ConnectError::Timeout) => {
                Response::text(504, "the upstream did not answer in time\n")
            }
            // RFC 9110 §15.6.3: unreachable, or an invalid answer (an interim status too).
            (None, _) => Response::text(502, "the upstream cannot be reached\n"),
        };
        info!("upstream failed", route = prefix, status = response.status, error = error);
        ctx.reject(link.other, &response);
    }

    /// A piece of a message from one side: on to the other, pausing this side while the other's
    /// queue is above the high-water mark.
    pub fn on_message_piece(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) {
        let Some(link) = self.links.get(&id).copied() else { return };
        if ctx.send_piece(link.other, kind, data, fin).is_err() {
            return; // the other side is closing; its close is relayed when it ends
        }
        if let Some(r) = self.routes.get_mut(link.route) {
            let (msgs, bytes) = match link.side {
                Side::Client => (&mut r.stats.messages_up, &mut r.stats.bytes_up),
                Side::Upstream => (&mut r.stats.messages_down, &mut r.stats.bytes_down),
            };
            *msgs += u64::from(fin);
            *bytes += data.len() as u64;
        }
        if ctx.queued_bytes(link.other) > HIGH_WATER {
            ctx.pause_reading(id);
            ctx.notify_drained(link.other, LOW_WATER);
        }
    }

    /// A side's queue drained: read its partner again.
    pub fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(other) = self.http.partner(id) {
            ctx.resume_reading(other);
        }
        if let Some(link) = self.links.get(&id) {
            ctx.resume_reading(link.other);
        }
    }

    /// One side sent its close frame: the other side gets the same code and reason. Each side
    /// is answered only when the other has answered (both are in manual-close mode), so the
    /// messages still in flight towards the side that closed are delivered, not dropped.
    pub fn on_peer_close(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        if let Some(link) = self.links.get(&id) {
            let (code, reason) = relayed(code, reason);
            ctx.close(link.other, code, reason);
        }
    }

    /// One side is gone. If it went without a close frame, the other side is closed now.
    pub fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        let Some(link) = self.links.remove(&id) else { return };
        let (code, reason) = relayed(code, reason);
        if self.links.remove(&link.other).is_none() {
            return;
        }
        // The first side of a link to go ends it. (`on_close` comes only for an open
        // WebSocket, and the client's opens only after `on_connected` counted the link.)
        if let Some(r) = self.routes.get_mut(link.route) {
            r.stats.open = r.stats.open.saturating_sub(1);
        }
        ctx.close(link.other, code, reason);
        // A client that never opened (still deferred) has nothing to close: refuse it.
        ctx.reject(link.other, &Response::text(502, "the upstream closed\n"));
    }
}

/// The close code and reason to pass on: codes that may not be sent are mapped (1005, no
/// code, to 1000; 1006, gone without a close frame, to 1011).
fn relayed(code: CloseCode, reason: &str) -> (CloseCode, &str) {
    match code {
        c if c.is_valid_on_wire() => (c, reason),
        CloseCode::NO_STATUS => (CloseCode::NORMAL, reason),
        _ => (CloseCode::INTERNAL_ERROR, "the other side went away without a close frame"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_at_a_segment_boundary_wins() {
        let routes = [
            ("/app".to_string(), "ws://127.0.0.1:1/".to_string()),
            ("/app/admin".to_string(), "ws://127.0.0.1:2/".to_string()),
            ("/".to_string(), "ws://127.0.0.1:3/".to_string()),
        ];
        let p = Proxy::new(&routes, Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        assert_eq!(p.route_for("/app"), Some(0));
        assert_eq!(p.route_for("/app/chat"), Some(0));
        assert_eq!(p.route_for("/app/admin/x"), Some(1));
        assert_eq!(p.route_for("/apple"), Some(2));
        assert_eq!(p.route_for("/other"), Some(2));
    }
}
