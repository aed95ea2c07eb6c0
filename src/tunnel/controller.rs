//! The controller: agents dial `--tunnel-path` with a bearer token (`--tunnel-token-file`) and
//! a name; a public upgrade on `--route PATH=tunnel://NAME/TARGET` goes down NAME's tunnel as an
//! `OPEN` for TARGET, and the client gets its 101 (with the service's subprotocol and headers)
//! only once the service's 101 came back, as the proxy defers its client's.
//!
//! - One live tunnel per name: a newer one replaces the older, whose streams end (their
//!   clients get 1001) and which is closed with 1000.
//! - No agent connected for a route: 502, logged. An agent's refusal: its status, or 502
//!   (`connect_failed`, `unknown_target`), 503 (`refused`: the stream cap), 504 (no answer
//!   within the open deadline). An agent's `OPEN_OK` whose head is no answer to the client's
//!   request (unparseable, longer than a service's could be, interim, a subprotocol not
//!   offered): 502, the stream reset `protocol`.
//! - SIGTERM: an upgrade still in its handshake (its `OPEN` sent, no `OPEN_OK` yet) gets 503 and
//!   `Retry-After`, whether the service's answer comes after the signal or the tunnel closes
//!   first, as any request in its handshake at shutdown; so does a plain request whose response
//!   has not begun.
//! - Request headers go to the service by an allow-list (`FORWARDED`), with `X-Forwarded-For`,
//!   `-Proto` and `-Host` added; response headers from the service's 101 come back but for the
//!   handshake's own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::access::Auth;
use crate::proto::http::{Header, Limits, parse_response};
use crate::proto::relay::{self, ClientHead, Exchange};
use crate::proto::target::has_dot_segment;
use crate::proto::tunnel::{Config, ResetCause, Role, SendError, StreamId, codec::valid_target};
use crate::proto::{CloseCode, MessageKind};
use crate::server::{ConnId, Context, Decision, IdMap, Request, Response, Tag, id_map};
use crate::tunnel::relay::{Tunnel, TunnelStats, Up};
use crate::tunnel::{NAME_HEADER, passed_on};
use crate::{info, warn};

/// Request fields a public client's upgrade passes to the service (compared case-insensitively);
/// the rest are this hop's or the handshake's own (RFC 9110 §7.6.1, RFC 6455 §4.1).
const FORWARDED: &[&str] = &[
    "origin",
    "cookie",
    "authorization",
    "user-agent",
    "accept-language",
    "sec-websocket-protocol",
    "x-request-id",
];

/// What an agent's rebuilt 101 head may take past the longest head a runtime reads: its own
/// `HTTP/1.1 101 Switching Protocols` and `Sec-WebSocket-Protocol: ` lines where the service's
/// could be shorter (`HTTP/1.1 101`, no space after the colon).
const REBUILT_HEAD_SLACK: usize = 64;

/// How long a plain request's service has to begin its response, from the request head or
/// the last piece of its body (504 after), unless `--response-timeout` says otherwise (the
/// forward proxy's plain relay waits as long): longer than a long poll's wait (Socket.IO's
/// `pingInterval`, 25 s, answers an idle poll).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A plain HTTP exchange relayed through a tunnel stream: the HTTP is done here
/// ([`Exchange`], as the forward proxy's plain relay does), the agent only moves bytes between
/// the stream and a TCP connection to its service.
#[derive(Debug)]
struct Plain {
    /// The tunnel's WebSocket.
    tunnel: ConnId,
    exchange: Exchange,
    /// The request's `FIN` went (its body is whole).
    fin_sent: bool,
    /// The response head must have begun by then (504 after).
    deadline: Duration,
    /// What chose the agent, for logs.
    via: String,
}

/// One `--route PATH=tunnel://NAME/TARGET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelRoute {
    /// The path prefix it serves.
    pub prefix: String,
    /// The agent's name.
    pub agent: String,
    /// The target the agent exposes.
    pub target: String,
}

impl TunnelRoute {
    /// Parses `tunnel://NAME/TARGET` for `prefix`.
    ///
    /// # Errors
    /// Not that shape, or a name or target outside 1-64 bytes of `A-Z a-z 0-9 . _ -`.
    pub fn parse(prefix: &str, url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("tunnel://").ok_or("expected tunnel://NAME/TARGET")?;
        let (agent, target) = rest.split_once('/').ok_or("expected tunnel://NAME/TARGET")?;
        for part in [agent, target] {
            if !valid_target(part.as_bytes()) {
                return Err(format!("'{part}': a name is 1-64 of A-Z a-z 0-9 . _ -"));
            }
        }
        Ok(Self { prefix: prefix.into(), agent: agent.into(), target: target.into() })
    }

    fn matches(&self, path: &str) -> bool {
        let p = self.prefix.trim_end_matches('/');
        path == self.prefix || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
    }
}

/// A `--tunnel-host` pattern, `*.DOMAIN`, as the suffix `.domain` (lower-cased) that a public
/// `Host` of `TARGET.NAME.domain` ends with.
///
/// # Errors
/// Not `*.` and then a DNS name (labels of `a-z 0-9 -`, RFC 1123 §2.1).
pub fn host_pattern(v: &str) -> Result<String, String> {
    let domain = v.strip_prefix("*.").ok_or("expected *.DOMAIN, e.g. *.t.example.com")?;
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(String::from("expected *.DOMAIN, DOMAIN labels of a-z 0-9 -"));
    }
    Ok(format!(".{}", domain.to_ascii_lowercase()))
}

/// Where a public upgrade goes: an agent's target, and how much of the path to leave out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The agent's name.
    pub agent: String,
    /// Its target.
    pub target: String,
    /// The length of the path's prefix the service does not get (a route's; 0 for a host).
    pub strip: usize,
    /// What chose it, for logs: the route's prefix or `*.domain`.
    pub via: String,
}

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Where agents dial.
    pub path: String,
    /// The tokens an agent may present.
    pub tokens: Vec<String>,
    /// The public routes into tunnels.
    pub routes: Vec<TunnelRoute>,
    /// Host suffixes into tunnels (`--tunnel-host *.DOMAIN` as `.domain`): a `Host` of
    /// `TARGET.NAME.domain` goes to agent NAME's TARGET with its whole path.
    pub hosts: Vec<String>,
    /// Each tunnel's limits (streams, window, open deadline).
    pub session: Config,
    /// How long a plain request's service has to begin its response (`RESPONSE_TIMEOUT`).
    pub response_timeout: Duration,
}

/// One agent's figures, for `/metrics` and `/api/tunnels`.
#[derive(Debug, Clone)]
pub struct AgentFigures {
    /// Its name.
    pub name: String,
    /// Its tunnel is connected now.
    pub connected: bool,
    /// Streams open now.
    pub streams_open: u64,
    /// Bytes read from its public clients that wait for their streams' credit now.
    pub waiting: u64,
    /// Its counters (over all its tunnels since the start).
    pub stats: TunnelStats,
}

/// Agents' tunnels and the public clients in them.
#[derive(Debug)]
pub struct Controller {
    config: ControllerConfig,
    auth: Auth,
    /// Live tunnels by their WebSocket: a message is routed by ids the runtime hands out,
    /// never by hashing a name.
    tunnels: IdMap<ConnId, Tunnel>,
    /// The live tunnel's WebSocket by agent name (one per name).
    live: HashMap<String, ConnId>,
    /// The agent name of a tunnel's WebSocket.
    names: IdMap<ConnId, String>,
    /// The tunnel's WebSocket of a public client.
    of: IdMap<ConnId, ConnId>,
    /// Counters of tunnels gone, by agent name (so a reconnect does not reset them).
    past: HashMap<String, TunnelStats>,
    /// Plain HTTP exchanges by their client.
    plain: HashMap<ConnId, Plain>,
    /// The subprotocols a public client offered, while its upgrade waits for the service's
    /// answer (only for clients that offered any): the 101 may name no other.
    offers: IdMap<ConnId, Vec<String>>,
    /// One read's response bytes for a client (kept: no allocation per read).
    out: Vec<u8>,
}

impl Controller {
    /// A controller with `config`.
    pub fn new(config: ControllerConfig) -> Self {
        let auth = Auth { tokens: config.tokens.clone(), ..Auth::default() };
        Self {
            config,
            auth,
            tunnels: id_map(),
            live: HashMap::new(),
            names: id_map(),
            of: id_map(),
            past: HashMap::new(),
            plain: HashMap::new(),
            offers: id_map(),
            out: Vec::new(),
        }
    }

    /// Whether an upgrade to `host` and `path` is an agent's dial: `--tunnel-path`, on a host
    /// that is not a tunnel host's (whose every path is its service's).
    pub fn is_tunnel_path(&self, host: &[u8], path: &str) -> bool {
        path == self.config.path && !self.is_tunnel_host(host)
    }

    /// Whether `host` is `TARGET.NAME.domain` under a `--tunnel-host`.
    pub fn is_tunnel_host(&self, host: &[u8]) -> bool {
        self.by_host(host).is_some()
    }

    /// The route for a public path: the longest prefix that matches at a segment boundary.
    pub fn route_for(&self, path: &str) -> Option<usize> {
        let routes = self.config.routes.iter().enumerate();
        routes.filter(|(_, r)| r.matches(path)).max_by_key(|(_, r)| r.prefix.len()).map(|(i, _)| i)
    }

    /// Where a public upgrade to `host` and `path` goes down a tunnel: by its host
    /// (`--tunnel-host`) first, else by the longest `--route` prefix.
    pub fn pick(&self, host: &[u8], path: &str) -> Option<Pick> {
        if let Some((target, agent, via)) = self.by_host(host) {
            // Host names are case-insensitive (RFC 9110 §4.2.3): read lower-cased.
            let (agent, target) = (agent.to_ascii_lowercase(), target.to_ascii_lowercase());
            return Some(Pick { agent, target, strip: 0, via: format!("*{via}") });
        }
        let r = &self.config.routes[self.route_for(path)?];
        Some(Pick {
            agent: r.agent.clone(),
            target: r.target.clone(),
            strip: r.prefix.trim_end_matches('/').len(),
            via: r.prefix.clone(),
        })
    }

    /// `TARGET.NAME.domain` (any case, a port and a final dot ignored) under a `--tunnel-host`:
    /// the target, the name (as written; [`Controller::pick`] lower-cases them, so a name or
    /// target with upper-case letters is not reached by host) and the suffix.
    fn by_host<'h>(&self, host: &'h [u8]) -> Option<(&'h str, &'h str, &str)> {
        let host = std::str::from_utf8(host).ok()?;
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        self.config.hosts.iter().find_map(|suffix| {
            let cut = host.len().checked_sub(suffix.len())?;
            let (labels, end) = (host.get(..cut)?, host.get(cut..)?);
            let (target, name) = labels.split_once('.')?;
            let ok = |s: &str| valid_target(s.as_bytes());
            (end.eq_ignore_ascii_case(suffix) && ok(target) && ok(name)).then_some((
                target,
                name,
                suffix.as_str(),
            ))
        })
    }

    /// The routes.
    pub fn routes(&self) -> &[TunnelRoute] {
        &self.config.routes
    }

    /// An agent dials in: its token (compared in constant time) and its name are checked.
    pub fn on_agent_upgrade(&mut self, req: &Request<'_>) -> Decision {
        let authorization = req.header("authorization");
        if self.auth.check(None, req.host, authorization, None, false) != Ok(true) {
            warn!("tunnel agent refused: bad token", peer = req.peer);
            return Decision::Reject(Response::text(401, "a valid tunnel token is required\n"));
        }
        let name = req.header(NAME_HEADER).unwrap_or_default();
        let Some(name) = std::str::from_utf8(name).ok().filter(|n| valid_target(n.as_bytes()))
        else {
            warn!("tunnel agent refused: bad name", peer = req.peer);
            return Decision::Reject(Response::text(
                400,
                format!("{NAME_HEADER}: 1-64 of A-Z a-z 0-9 . _ -\n"),
            ));
        };
        self.names.insert(req.id, name.to_string());
        Decision::accept()
    }

    /// An agent's tunnel opened: it is the agent's live tunnel now, replacing an older one.
    pub fn on_agent_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(name) = self.names.get(&id).cloned() else { return };
        if let Some(old) = self.live.remove(&name).and_then(|old| self.tunnels.remove(&old)) {
            let old_conn = old.conn;
            info!("tunnel replaced", agent = name, old = old_conn, new = id);
            self.retire(ctx, old, CloseCode::GOING_AWAY, "the agent's tunnel was replaced");
            ctx.close(old_conn, CloseCode::NORMAL, "replaced by a newer tunnel of the agent");
        }
        let tunnel = Tunnel::new(id, Role::Controller, self.config.session, &[]);
        // Every stream sends into it: one write per turn of the loop.
        ctx.set_coalesce(id, true);
        let peer = ctx.peer_addr(id).map(|a| a.to_string()).unwrap_or_default();
        info!("tunnel connected", agent = name, id = id, peer = peer);
        self.tunnels.insert(id, tunnel);
        self.live.insert(name, id);
    }

    /// A tunnel ended: its streams end with it (open clients get `code`, waiting ones 502).
    fn retire(&mut self, ctx: &mut Context<'_>, mut tunnel: Tunnel, code: CloseCode, reason: &str) {
        let name = self.names.remove(&tunnel.conn).unwrap_or_default();
        // Plain clients: 502 if their response has not begun, else cut.
        let plain: Vec<ConnId> =
            self.plain.iter().filter(|(_, p)| p.tunnel == tunnel.conn).map(|(&c, _)| c).collect();
        let draining = ctx.draining();
        for client in plain {
            tunnel.release(ctx, client);
            if draining && self.plain.get(&client).is_some_and(|p| !p.exchange.started()) {
                // The tunnel closes because this server stops: 503, as at shutdown.
                self.plain.remove(&client);
                self.of.remove(&client);
                answer(ctx, client, 503, "server shutting down");
                continue;
            }
            self.refuse_client(ctx, client, ResetCause::CANCEL);
        }
        for conn in tunnel.end(ctx, code, reason) {
            self.of.remove(&conn);
            self.offers.remove(&conn);
            if self.plain.remove(&conn).is_some() {
                answer(ctx, conn, 502, "the tunnel closed");
            } else if draining {
                // The tunnel closes because this server stops: an upgrade still in its
                // handshake is answered as any at shutdown (not the service's failure).
                ctx.reject(conn, &Response::shutting_down());
            } else {
                ctx.reject(conn, &Response::text(502, "the tunnel closed\n"));
            }
        }
        let past = self.past.entry(name).or_default();
        add(past, &tunnel.stats);
    }

    /// A tunnel message from an agent.
    pub fn on_agent_message(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
    ) {
        let Some(tunnel) = self.tunnel_of(id) else { return };
        if kind == MessageKind::Text {
            // The tunnel's messages are binary (docs/tunnel.md).
            ctx.close(id, CloseCode::UNSUPPORTED_DATA, "tunnel messages are binary");
            return;
        }
        match tunnel.handle(ctx, data) {
            Ok(Some(Up::Accepted { stream, conn, head })) => {
                if self.plain.contains_key(&conn) {
                    // The response comes as `DATA`: a head here is no part of the protocol.
                    if !head.is_empty() {
                        return self.refuse_head(
                            ctx,
                            id,
                            stream,
                            conn,
                            "a head for a plain request",
                        );
                    }
                    if let Some(t) = self.tunnel_of(id) {
                        t.opened(stream);
                    }
                    return;
                }
                let head = head.to_vec();
                self.answer_client(ctx, id, stream, conn, &head);
            }
            Ok(Some(Up::Data { stream, conn, data })) => {
                let n = data.len();
                let passed = self.plain_response(ctx, conn, data);
                if let Some(t) = self.tunnel_of(id) {
                    t.delivered(ctx, stream, n);
                }
                match passed {
                    Ok(()) => self.plain_done_if(ctx, conn),
                    Err(e) => self.plain_fail(ctx, conn, e.status(), &e.to_string()),
                }
            }
            Ok(Some(Up::Fin { conn })) => {
                let Some(p) = self.plain.get_mut(&conn) else { return };
                match p.exchange.upstream_eof() {
                    Ok(()) => self.plain_done_if(ctx, conn),
                    Err(e) => self.plain_fail(ctx, conn, e.status(), &e.to_string()),
                }
            }
            Ok(Some(Up::Failed { conn, cause })) => self.refuse_client(ctx, conn, cause),
            // A controller exposes no targets: the session refused any OPEN already.
            Ok(Some(Up::Opened { .. }) | None) => {}
            Err(e) => {
                warn!("tunnel failed", id = id, error = e.name());
                ctx.close(id, e.close_code(), e.reason());
            }
        }
    }

    fn tunnel_of(&mut self, id: ConnId) -> Option<&mut Tunnel> {
        // A tunnel's own WebSocket is its own key; a client's is the tunnel it is linked to.
        let tunnel = self.of.get(&id).copied().unwrap_or(id);
        self.tunnels.get_mut(&tunnel)
    }

    /// The service answered a client's stream: the client gets the 101 (with the service's
    /// subprotocol and headers), or the service's refusal status. A head that is neither (one
    /// that does not parse, an interim status, a subprotocol the client did not offer) is the
    /// agent's fault: the stream is reset (`protocol`) and the client gets 502.
    fn answer_client(
        &mut self,
        ctx: &mut Context<'_>,
        tunnel_id: ConnId,
        stream: StreamId,
        client: ConnId,
        head: &[u8],
    ) {
        let offered = self.offers.remove(&client).unwrap_or_default();
        let Some(tunnel) = self.tunnel_of(tunnel_id) else { return };
        if ctx.peer_addr(client).is_none() {
            // The client left while the service was connecting.
            tunnel.refuse(ctx, stream, ResetCause::CANCEL);
            self.of.remove(&client);
            return;
        }
        if ctx.draining() {
            // SIGTERM came while the service was answering: the client, still in its handshake,
            // gets 503 as any at shutdown (as the forward proxy answers it), rather than a 101
            // for a WebSocket closed 1001 at once; the stream is cancelled.
            tunnel.refuse(ctx, stream, ResetCause::CANCEL);
            self.of.remove(&client);
            info!("tunnel stream refused", client = client, reason = "shutting down");
            return ctx.reject(client, &Response::shutting_down());
        }
        // The agent builds the head from its service's, which its runtime read within
        // `max_head_len`, under a status line and subprotocol line of its own (a few bytes more
        // than the service's could be); a longer one did not come from a service.
        let limits = Limits::default();
        if head.len() > limits.max_head_len + REBUILT_HEAD_SLACK {
            return self.refuse_head(ctx, tunnel_id, stream, client, "a head too large");
        }
        let mut slots = [Header { name: "", value: b"" }; 64];
        let r = match parse_response(head, &mut slots, &limits) {
            Ok(r) => r,
            Err(e) => return self.refuse_head(ctx, tunnel_id, stream, client, e.reason()),
        };
        match r.status {
            101 => {
                let protocol = r.header("sec-websocket-protocol").map(std::str::from_utf8);
                // RFC 6455 §4.1: a subprotocol the client did not offer fails its WebSocket.
                let protocol = match protocol {
                    None => None,
                    Some(Ok(p)) if offered.iter().any(|o| o == p) => Some(p),
                    Some(_) => {
                        let why = "a subprotocol the client did not offer";
                        return self.refuse_head(ctx, tunnel_id, stream, client, why);
                    }
                };
                let headers: Vec<(String, Vec<u8>)> =
                    passed_on(r.headers).map(|h| (h.name.to_string(), h.value.to_vec())).collect();
                ctx.accept(client, protocol, &headers);
                if let Some(tunnel) = self.tunnel_of(tunnel_id) {
                    tunnel.opened(stream);
                }
            }
            // RFC 9110 §15: a final status is 200-599; an interim one (1xx) answers nothing.
            status @ 200..=599 => {
                tunnel.refuse(ctx, stream, ResetCause::CANCEL);
                self.of.remove(&client);
                info!("tunnel service refused", client = client, status = status);
                ctx.reject(
                    client,
                    &Response::text(status, format!("the service refused ({status})\n")),
                );
            }
            _ => self.refuse_head(ctx, tunnel_id, stream, client, "not a final status"),
        }
    }

    /// An agent's `OPEN_OK` head that is no answer to its client's request: the stream is reset
    /// (`protocol`, counted by cause), the line logged, and the client answered 502 (RFC 9110
    /// §15.6.3: an invalid response from the server it reached).
    fn refuse_head(
        &mut self,
        ctx: &mut Context<'_>,
        tunnel_id: ConnId,
        stream: StreamId,
        client: ConnId,
        why: &str,
    ) {
        if let Some(tunnel) = self.tunnel_of(tunnel_id) {
            tunnel.refuse(ctx, stream, ResetCause::PROTOCOL);
        }
        self.of.remove(&client);
        let agent = self.names.get(&tunnel_id).map_or("", String::as_str);
        warn!("tunnel service head refused", agent = agent, client = client, error = why);
        if self.plain.remove(&client).is_some() {
            answer(ctx, client, 502, "the service's answer was invalid");
        } else {
            ctx.reject(client, &Response::text(502, "the service's answer was invalid\n"));
        }
    }

    fn refuse_client(&mut self, ctx: &mut Context<'_>, client: ConnId, cause: ResetCause) {
        self.of.remove(&client);
        self.offers.remove(&client);
        let status = match cause {
            ResetCause::REFUSED => 503,
            ResetCause::OPEN_TIMEOUT => 504,
            _ => 502,
        };
        info!("tunnel stream refused", client = client, cause = cause.name(), status = status);
        if let Some(p) = self.plain.remove(&client) {
            if p.exchange.started() {
                return ctx.tcp_close(client);
            }
            return answer(ctx, client, status, &format!("tunnel: {}", cause.name()));
        }
        ctx.reject(client, &Response::text(status, format!("tunnel: {}\n", cause.name())));
    }

    /// A public upgrade on a tunnel route: an `OPEN` down the agent's tunnel, the client's
    /// answer deferred until the service's.
    pub fn on_client_upgrade(
        &mut self,
        ctx: &mut Context<'_>,
        r: &Pick,
        req: &Request<'_>,
    ) -> Decision {
        let tid = self.live.get(&r.agent).copied();
        let Some(tunnel) = tid.and_then(|t| self.tunnels.get_mut(&t)) else {
            warn!("tunnel route: no agent connected", route = r.via, agent = r.agent);
            return Decision::Reject(Response::text(502, "the tunnel's agent is not connected\n"));
        };
        let rest = req.path.get(r.strip..).unwrap_or("");
        // The rest is appended to the service's path by the agent: it may not climb out of it
        // (RFC 3986 §5.2.4), read as the service might read it.
        if has_dot_segment(rest) {
            info!("tunnel route: a . or .. path segment", client = req.id, route = r.via);
            return Decision::Reject(Response::text(400, "a . or .. path segment\n"));
        }
        let head = request_head(req, rest);
        match tunnel.open(ctx, req.id, &r.target, head.as_bytes(), false) {
            Ok(stream) => {
                info!("tunnel stream", client = req.id, agent = r.agent, stream = stream);
                self.of.insert(req.id, tunnel.conn);
                let offered: Vec<String> = req.protocols().map(String::from).collect();
                if !offered.is_empty() {
                    self.offers.insert(req.id, offered);
                }
                Decision::Defer
            }
            Err(SendError::TooManyStreams) => {
                warn!("tunnel stream cap reached", agent = r.agent);
                Decision::Reject(Response::text(503, "too many streams in the tunnel\n"))
            }
            Err(SendError::TooLong) => {
                Decision::Reject(Response::text(431, "the request head is too long\n"))
            }
            Err(e) => {
                warn!("tunnel stream failed", agent = r.agent, error = format!("{e:?}"));
                Decision::Reject(Response::text(502, "the tunnel failed\n"))
            }
        }
    }

    /// A public client's WebSocket opened: its pieces stream, its close waits for the service's.
    pub fn on_client_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        ctx.set_streaming(id, true);
        ctx.set_manual_close(id, true);
    }

    /// A piece from a public client.
    pub fn on_client_piece(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) {
        if let Some(t) = self.tunnel_of(id) {
            t.piece(ctx, id, kind, data, fin);
        }
    }

    /// A public client's close frame.
    pub fn on_client_peer_close(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        if let Some(t) = self.tunnel_of(id) {
            t.peer_close(ctx, id, code, reason);
        }
    }

    /// A public client is gone.
    pub fn on_client_close(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        code: CloseCode,
        reason: &str,
    ) {
        if let Some(t) = self.tunnel_of(id) {
            t.closed(ctx, id, code, reason);
        }
        self.of.remove(&id);
    }

    /// A tunnel's WebSocket is gone: its streams end.
    pub fn on_agent_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode) {
        let Some(name) = self.names.get(&id).cloned() else { return };
        match self.tunnels.remove(&id) {
            Some(t) => {
                info!("tunnel disconnected", agent = name, id = id, code = code.0);
                self.live.remove(&name);
                self.retire(ctx, t, CloseCode::GOING_AWAY, "the tunnel closed");
            }
            // An older tunnel of the name, already replaced (and retired), or one never open.
            None => {
                self.names.remove(&id);
            }
        }
    }

    /// A socket drained to its mark (a tunnel's, or a client's).
    pub fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(t) = self.tunnel_of(id) {
            t.drained(ctx, id);
        }
    }

    /// Open deadlines.
    pub fn on_tick(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        let mut failed = Vec::new();
        for t in self.tunnels.values_mut() {
            failed.extend(t.tick(ctx, now));
        }
        for (conn, cause) in failed {
            self.refuse_client(ctx, conn, cause);
        }
        let late: Vec<ConnId> = self
            .plain
            .iter()
            .filter(|(_, p)| !p.exchange.started() && now >= p.deadline)
            .map(|(&id, _)| id)
            .collect();
        for client in late {
            self.plain_fail(ctx, client, 504, "the service did not answer in time");
        }
    }

    /// A plain request on a tunnel route or host (`Handler::on_request_head`): a stream
    /// down the agent's tunnel with the request head, its body after it as `DATA`. Returns
    /// whether the tunnel took it (`false`: neither a route nor a host of the tunnel's).
    pub fn on_request_head(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        head: ClientHead,
    ) -> bool {
        let Some(r) = self.pick(req.host, req.path) else { return false };
        let client = req.id;
        let rest = req.path.get(r.strip..).unwrap_or("");
        // As for an upgrade: the rest may not climb out of the service's path (RFC 3986 §5.2.4).
        if has_dot_segment(rest) {
            info!("tunnel route: a . or .. path segment", client = client, route = r.via);
            answer(ctx, client, 400, "a . or .. path segment");
            return true;
        }
        let tid = self.live.get(&r.agent).copied();
        let Some(tunnel) = tid.and_then(|t| self.tunnels.get_mut(&t)) else {
            warn!("tunnel route: no agent connected", route = r.via, agent = r.agent);
            answer(ctx, client, 502, "the tunnel's agent is not connected");
            return true;
        };
        let mut target = String::from(if rest.is_empty() { "/" } else { rest });
        if let Some(q) = req.query {
            target.push('?');
            target.push_str(q);
        }
        let host = String::from_utf8_lossy(req.host);
        let fields = plain_fields(req);
        let (exchange, head) =
            Exchange::new(req.method, &target, &host, &fields, head, Limits::default());
        match tunnel.open(ctx, client, &r.target, &head, true) {
            Ok(stream) => {
                info!("tunnel http", client = client, agent = r.agent, stream = stream);
                let fin_sent = exchange.request_done();
                if fin_sent {
                    tunnel.fin(ctx, client);
                }
                let tunnel = tunnel.conn;
                self.of.insert(client, tunnel);
                let deadline = ctx.now() + self.config.response_timeout;
                let p = Plain { tunnel, exchange, fin_sent, deadline, via: r.via };
                self.plain.insert(client, p);
            }
            Err(SendError::TooManyStreams) => {
                warn!("tunnel stream cap reached", agent = r.agent);
                answer(ctx, client, 503, "too many streams in the tunnel");
            }
            Err(SendError::TooLong) => answer(ctx, client, 431, "the request head is too long"),
            Err(e) => {
                warn!("tunnel stream failed", agent = r.agent, error = format!("{e:?}"));
                answer(ctx, client, 502, "the tunnel failed");
            }
        }
        true
    }

    /// Bytes of a plain request's body from its client: into its stream, `FIN` at its end.
    pub fn on_tcp_data(&mut self, ctx: &mut Context<'_>, id: ConnId, bytes: &[u8]) {
        let Some(p) = self.plain.get_mut(&id) else { return };
        // What goes to the service: the body's bytes, or a chunked body chunked anew.
        let mut up = std::mem::take(&mut self.out);
        up.clear();
        let n = match p.exchange.client_bytes(bytes, &mut up) {
            Ok(n) => n,
            Err(e) => {
                self.out = up;
                return self.plain_fail(ctx, id, e.status(), &e.to_string());
            }
        };
        if n > 0 {
            // An upload in progress is not a silent service: it may answer once it is whole.
            p.deadline = ctx.now() + self.config.response_timeout;
        }
        let fin = p.exchange.request_done() && !std::mem::replace(&mut p.fin_sent, true);
        if let Some(t) = self.tunnels.get_mut(&p.tunnel) {
            t.data(ctx, id, &up);
            if fin {
                t.fin(ctx, id);
            }
        }
        self.out = up;
    }

    /// A plain client finished sending: one that stops inside its body has abandoned it
    /// (RFC 9112 §9.6); one whose request is whole still gets the answer.
    pub fn on_tcp_eof(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if self.plain.get(&id).is_some_and(|p| !p.exchange.request_done()) {
            self.plain_fail(ctx, id, 400, "the client closed inside its request body");
        }
    }

    /// A plain client is gone: its stream ends.
    pub fn on_tcp_closed(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(p) = self.plain.remove(&id) {
            if let Some(t) = self.tunnels.get_mut(&p.tunnel) {
                t.release(ctx, id);
            }
            self.of.remove(&id);
        }
    }

    /// Response bytes from the service, through the exchange, to the client.
    fn plain_response(
        &mut self,
        ctx: &mut Context<'_>,
        client: ConnId,
        data: &[u8],
    ) -> Result<(), relay::RelayError> {
        let Some(p) = self.plain.get_mut(&client) else { return Ok(()) };
        if ctx.draining() {
            p.exchange.close_after();
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let passed = p.exchange.upstream_bytes(data, &mut out);
        if !out.is_empty() && ctx.tcp_write(client, &out).is_err() {
            // Past the queue cap (credit keeps it far from it) or gone.
            ctx.tcp_close(client);
        }
        self.out = out;
        passed
    }

    /// The response is whole: the stream ends and the client's connection serves its next
    /// request (or closes).
    fn plain_done_if(&mut self, ctx: &mut Context<'_>, client: ConnId) {
        if !self.plain.get(&client).is_some_and(|p| p.exchange.response_done()) {
            return;
        }
        let Some(p) = self.plain.remove(&client) else { return };
        let keep_alive = p.exchange.keep_alive() && p.exchange.request_done();
        if let Some(t) = self.tunnels.get_mut(&p.tunnel) {
            t.release(ctx, client);
        }
        self.of.remove(&client);
        ctx.resume_reading(client);
        ctx.set_tag(client, Tag::NONE);
        ctx.http_exchange_done(client, keep_alive);
    }

    /// The exchange failed: the client gets `status` if its response has not started, else its
    /// connection is cut; the stream is reset.
    fn plain_fail(&mut self, ctx: &mut Context<'_>, client: ConnId, status: u16, why: &str) {
        let Some(p) = self.plain.remove(&client) else { return };
        if let Some(t) = self.tunnels.get_mut(&p.tunnel) {
            t.release(ctx, client);
        }
        self.of.remove(&client);
        let started = p.exchange.started();
        info!("tunnel http failed", via = p.via, status = status, started = started, error = why);
        if started {
            ctx.tcp_close(client);
        } else {
            answer(ctx, client, status, why);
        }
    }

    /// How often [`Controller::on_tick`] runs.
    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(250)
    }

    /// Each agent's figures now: connected ones and those seen before.
    pub fn figures(&self) -> Vec<AgentFigures> {
        let mut names: Vec<&String> = self.live.keys().chain(self.past.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let live = self.live.get(name).and_then(|id| self.tunnels.get(id));
                let mut stats = self.past.get(name).cloned().unwrap_or_default();
                if let Some(t) = live {
                    add(&mut stats, &t.stats);
                }
                AgentFigures {
                    name: name.clone(),
                    connected: live.is_some(),
                    streams_open: live.map_or(0, |t| t.open_streams() as u64),
                    waiting: live.map_or(0, |t| t.waiting() as u64),
                    stats,
                }
            })
            .collect()
    }
}

/// Answers a plain client with weir's own response, then closes it.
fn answer(ctx: &mut Context<'_>, client: ConnId, status: u16, text: &str) {
    let _ = ctx.tcp_write(client, &relay::error_response(status, text));
    ctx.http_exchange_done(client, false);
}

/// A plain request's fields for the service: the client's end-to-end ones (RFC 9110 §7.6.1;
/// the framing is the exchange's to write, the `Host` the agent's), names of letters, digits
/// and `-` only, and `X-Forwarded-*` anew.
fn plain_fields(req: &Request<'_>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = passed_on(req.headers)
        .filter(|h| h.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .filter(|h| !h.name.eq_ignore_ascii_case("host"))
        .filter(|h| !h.name.to_ascii_lowercase().starts_with("x-forwarded-"))
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    out.push(("X-Forwarded-For".into(), req.peer.ip().to_string().into_bytes()));
    out.push(("X-Forwarded-Proto".into(), b"http".to_vec()));
    out.push(("X-Forwarded-Host".into(), req.host.to_vec()));
    out
}

fn add(total: &mut TunnelStats, more: &TunnelStats) {
    total.streams += more.streams;
    total.bytes_in += more.bytes_in;
    total.bytes_out += more.bytes_out;
    for (t, m) in total.resets.iter_mut().zip(more.resets) {
        *t += m;
    }
    let (h, m) = (&mut total.open_latency, &more.open_latency);
    for (t, n) in h.counts.iter_mut().zip(m.counts) {
        *t += n;
    }
    h.sum += m.sum;
    h.count += m.count;
}

/// The upgrade request the service gets (HTTP/1.1, RFC 9112 §3): the rest of the client's path
/// and its query, its `Host`, the fields in [`FORWARDED`], and `X-Forwarded-*`.
fn request_head(req: &Request<'_>, rest: &str) -> String {
    let mut head = String::from("GET ");
    head.push_str(if rest.is_empty() { "/" } else { rest });
    if let Some(q) = req.query {
        head.push('?');
        head.push_str(q);
    }
    head.push_str(" HTTP/1.1\r\n");
    let host = String::from_utf8_lossy(req.host);
    for h in req.headers.iter().filter(|h| FORWARDED.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
    {
        if let Ok(value) = std::str::from_utf8(h.value) {
            let _ = write!(head, "{}: {value}\r\n", h.name);
        }
    }
    let _ = write!(
        head,
        "X-Forwarded-For: {}\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: {host}\r\n\r\n",
        req.peer.ip()
    );
    head
}
