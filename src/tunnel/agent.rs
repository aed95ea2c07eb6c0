//! `weir tunnel URL`: the agent. It dials the controller (one outbound WebSocket, kept alive by
//! the runtime's pings), registers its name with its bearer token, and connects each stream the
//! controller opens to the service behind the stream's target; only the targets given with
//! `--expose` are ever dialled (any other gets `RESET unknown_target` from the session: no open
//! proxy). After any failure it dials again with jittered exponential back-off. Each state
//! change is logged.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::proto::body::request_framing;
use crate::proto::http::{Header, Limits, parse_request};
use crate::proto::relay::Body;
use crate::proto::target::has_dot_segment;
use crate::proto::tunnel::{Config, ResetCause, Role, StreamId};
use crate::proto::{CloseCode, MessageKind};
use crate::server::url::WsUrl;
use crate::server::{
    Config as ServerConfig, ConnId, ConnectError, ConnectRequest, Connected, Context, Handler,
    Server,
};
use crate::tunnel::relay::{Tunnel, Up};
use crate::tunnel::{AgentOptions, NAME_HEADER, passed_on, read_token_file};
use crate::{error, info, warn};

/// The first wait before dialling again (its half is always waited).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// How long a dial (connect and handshake) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a service's connect and handshake may take: less than the controller's open
/// deadline (10 s), so that its client hears `connect_failed` (502) rather than 504.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(8);
/// The tunnel is pinged after this long without traffic (RFC 6455 §5.5.2).
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// While bytes wait for credit, `tunnel waiting for credit` is logged at most this often.
const WAITING_LOG_EVERY: Duration = Duration::from_secs(10);

/// A target and the service behind it.
#[derive(Debug)]
struct Expose {
    name: String,
    url: WsUrl,
    addr: SocketAddr,
}

/// The agent's state: dialling, waiting to dial again, or connected.
#[derive(Debug)]
pub struct Agent {
    url: WsUrl,
    addr: SocketAddr,
    name: String,
    token: String,
    exposes: Vec<Expose>,
    reconnect_max: Duration,
    /// The tunnel's WebSocket while it is being dialled.
    dialing: Option<ConnId>,
    tunnel: Option<Tunnel>,
    /// Failed dials (or lost tunnels) in a row.
    failures: u32,
    /// When to dial again.
    next_dial: Option<Duration>,
    /// Services being connected: their stream.
    connecting: HashMap<ConnId, StreamId>,
    /// Plain HTTP streams' TCP connections to their services, connected or not: their stream,
    /// and where the request's body is (nothing after it is written to the service).
    plain: HashMap<ConnId, (StreamId, Body)>,
    /// A chunked request body's data, decoded to find its end.
    scratch: Vec<u8>,
    /// When `tunnel waiting for credit` was last logged, and whether `tunnel credit caught
    /// up` is owed (bytes waited when it was logged).
    waiting_logged: (Option<Duration>, bool),
}

/// Resolves `authority` now (never on the loop).
fn resolve(authority: &str) -> io::Result<SocketAddr> {
    authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{authority}: no address")))
}

/// Opens an outbound WebSocket to `url`, over TLS for `wss://`.
fn connect(ctx: &mut Context<'_>, url: &WsUrl, request: ConnectRequest) -> io::Result<ConnId> {
    if url.tls { ctx.connect_tls(request, &url.host) } else { ctx.connect(request) }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

impl Agent {
    /// An agent from its options: URLs parsed, names resolved, the token read.
    ///
    /// # Errors
    /// A URL that is not `ws://`/`wss://`, a name that does not resolve, a plain `ws://`
    /// controller off loopback without `allow_plain`, an unreadable token file.
    pub fn new(opts: &AgentOptions) -> io::Result<Self> {
        let url = WsUrl::parse(&opts.url).map_err(|e| invalid(format!("{}: {e}", opts.url)))?;
        let addr = resolve(&url.authority())?;
        if !url.tls && !addr.ip().is_loopback() && !opts.allow_plain {
            return Err(invalid(format!(
                "{}: plain ws:// to a controller off loopback sends the token and the traffic \
                 in clear; use wss://, or --allow-plain",
                opts.url
            )));
        }
        let token = read_token_file(&opts.token_file)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", opts.token_file)))?
            .swap_remove(0);
        let mut exposes = Vec::new();
        for (name, target) in &opts.exposes {
            // One target serves both kinds: http:// names the same service as ws://.
            let ws = target.strip_prefix("http://").map(|rest| format!("ws://{rest}"));
            let url = WsUrl::parse(ws.as_deref().unwrap_or(target))
                .map_err(|e| invalid(format!("{target}: {e}")))?;
            let addr = resolve(&url.authority())?;
            exposes.push(Expose { name: name.clone(), url, addr });
        }
        Ok(Self {
            url,
            addr,
            name: opts.name.clone(),
            token,
            exposes,
            reconnect_max: opts.reconnect_max,
            dialing: None,
            tunnel: None,
            failures: 0,
            next_dial: None,
            connecting: HashMap::new(),
            plain: HashMap::new(),
            scratch: Vec::new(),
            waiting_logged: (None, false),
        })
    }

    fn dial(&mut self, ctx: &mut Context<'_>) {
        self.next_dial = None;
        let request = ConnectRequest {
            addr: self.addr,
            host: self.url.host_header(),
            target: self.url.target.clone(),
            protocols: Vec::new(),
            headers: vec![
                ("Authorization".into(), format!("Bearer {}", self.token).into_bytes()),
                (NAME_HEADER.into(), self.name.clone().into_bytes()),
            ],
            timeout: Some(DIAL_TIMEOUT),
        };
        match connect(ctx, &self.url, request) {
            Ok(id) => {
                info!("tunnel dialing", controller = self.url.authority(), id = id);
                self.dialing = Some(id);
            }
            Err(e) => {
                warn!("tunnel dial failed", controller = self.url.authority(), error = e);
                self.retry(ctx);
            }
        }
    }

    /// The counterpart of the controller's `weir_tunnel_waiting_bytes`, in the agent's log (it has no
    /// `/metrics`): a line when bytes begin to wait for credit, again at most every
    /// [`WAITING_LOG_EVERY`] while they do, and one when none waits any more. A stalled stream
    /// that keeps to the rules holds none (docs/tunnel.md), so a line means a controller that
    /// grants little credit, or a message inflated past it.
    fn log_waiting(&mut self, now: Duration) {
        let Some(t) = self.tunnel.as_ref() else { return };
        let (at, owed) = self.waiting_logged;
        let bytes = t.waiting();
        if bytes > 0 && at.is_none_or(|at| now >= at + WAITING_LOG_EVERY) {
            warn!("tunnel waiting for credit", bytes = bytes, streams = t.open_streams());
            self.waiting_logged = (Some(now), true);
        } else if bytes == 0 && owed {
            info!("tunnel credit caught up");
            self.waiting_logged.1 = false;
        }
    }

    /// Waits before the next dial: half of `min(max, first * 2^failures)` plus a random part
    /// of the other half, so agents cut off together do not all come back at once.
    fn retry(&mut self, ctx: &mut Context<'_>) {
        if ctx.draining() {
            return;
        }
        let cap = FIRST_BACKOFF.saturating_mul(1 << self.failures.min(16)).min(self.reconnect_max);
        self.failures = self.failures.saturating_add(1);
        let half = cap / 2;
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX).max(1);
        let wait = half + Duration::from_micros(random % spread);
        info!("tunnel retry", after_ms = wait.as_millis(), failures = self.failures);
        self.next_dial = Some(ctx.now() + wait);
    }

    /// The tunnel is gone: its streams end (services closed with 1001), and a dial follows.
    fn lost(&mut self, ctx: &mut Context<'_>, reason: &str) {
        if let Some(mut t) = self.tunnel.take() {
            for conn in t.end(ctx, CloseCode::GOING_AWAY, reason) {
                self.connecting.remove(&conn);
                if self.plain.remove(&conn).is_some() {
                    ctx.tcp_close(conn);
                } else {
                    ctx.close(conn, CloseCode::GOING_AWAY, reason);
                }
            }
            self.plain.clear();
        }
        // What waited went with the tunnel ("tunnel disconnected" says so).
        self.waiting_logged.1 = false;
        self.retry(ctx);
    }

    fn on_tunnel_message(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        let Some(tunnel) = self.tunnel.as_mut() else { return };
        match tunnel.handle(ctx, data) {
            Ok(Some(Up::Opened { stream, target, websocket, head })) => {
                self.open_service(ctx, stream, target, websocket, head);
            }
            Ok(Some(Up::Failed { conn, .. })) if self.plain.remove(&conn).is_some() => {
                ctx.tcp_close(conn);
            }
            Ok(Some(Up::Failed { conn, .. })) => {
                self.connecting.remove(&conn);
                ctx.close(conn, CloseCode::GOING_AWAY, "the tunnel stream ended");
            }
            Ok(Some(Up::Data { stream, conn, data })) => {
                let n = data.len();
                // RFC 9112 §6.3: the request's body ends where its framing says. Bytes after
                // it would be another request on the service's connection, one whose path the
                // agent never checked: none is written, and the stream is reset.
                let body = match self.plain.get_mut(&conn) {
                    Some((_, body)) => body.take(data, &mut self.scratch),
                    None => Ok(n),
                };
                let taken = body.unwrap_or(0);
                if ctx.tcp_write(conn, &data[..taken]).is_err() {
                    tunnel.release(ctx, conn);
                    self.plain.remove(&conn);
                    ctx.tcp_close(conn);
                } else if body != Ok(n) {
                    let why = if body.is_err() { "bad_request_body" } else { "past_request_body" };
                    warn!("tunnel http stream reset", stream = stream, error = why);
                    tunnel.refuse(ctx, stream, ResetCause::PROTOCOL);
                    self.plain.remove(&conn);
                    ctx.tcp_close(conn);
                }
                tunnel.delivered(ctx, stream, n);
            }
            // The request is whole: the service's connection stays open for its answer.
            Ok(Some(Up::Accepted { .. } | Up::Fin { .. }) | None) => {}
            Err(e) => {
                let id = tunnel.conn;
                warn!("tunnel failed", error = e.name());
                ctx.close(id, e.close_code(), e.reason());
            }
        }
    }

    /// The controller opened a stream to `target`: connect its service.
    fn open_service(
        &mut self,
        ctx: &mut Context<'_>,
        stream: StreamId,
        target: &str,
        websocket: bool,
        head: &[u8],
    ) {
        let Some(tunnel) = self.tunnel.as_mut() else { return };
        let Some(expose) = self.exposes.iter().find(|e| e.name == target) else {
            // The session takes OPENs only for the exposed targets; never dial another.
            tunnel.refuse(ctx, stream, ResetCause::UNKNOWN_TARGET);
            return;
        };
        let mut slots = [Header { name: "", value: b"" }; 64];
        let Ok(req) = parse_request(head, &mut slots, &Limits::default()) else {
            warn!("tunnel stream refused: unreadable head", stream = stream);
            tunnel.refuse(ctx, stream, ResetCause::PROTOCOL);
            return;
        };
        // A controller may not climb out of the service's path either (RFC 3986 §5.2.4), nor
        // name anything but a path.
        let rest = req.target.split('?').next().unwrap_or_default();
        if !rest.starts_with('/') || has_dot_segment(rest) {
            warn!("tunnel stream refused: not a path under the service's", stream = stream);
            tunnel.refuse(ctx, stream, ResetCause::PROTOCOL);
            return;
        }
        // The service's path is its URL's with the rest of the client's appended (its query
        // after the client's).
        let (base, query) = match expose.url.target.split_once('?') {
            Some((base, q)) => (base, Some(q)),
            None => (expose.url.target.as_str(), None),
        };
        let mut path = format!("{}{}", base.trim_end_matches('/'), req.target);
        if let Some(q) = query {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(q);
        }
        if !websocket {
            // RFC 9112 §6.3: the body is framed as the head says, or the request is refused
            // (both framings, or a coding other than chunked, read differently by services).
            let Ok(framing) = request_framing(&req) else {
                warn!("tunnel stream refused: unreadable body framing", stream = stream);
                tunnel.refuse(ctx, stream, ResetCause::PROTOCOL);
                return;
            };
            if expose.url.tls {
                warn!("tunnel stream refused: plain HTTP to a wss:// service", stream = stream);
                tunnel.refuse(ctx, stream, ResetCause::CONNECT_FAILED);
                return;
            }
            // The request head anew for the service: its path and `Host`, the fields the
            // controller wrote but its `Host` (RFC 9112 §3.2).
            let mut out =
                format!("{} {path} HTTP/1.1\r\nHost: {}\r\n", req.method, expose.url.host_header())
                    .into_bytes();
            for h in req.headers.iter().filter(|h| !h.name.eq_ignore_ascii_case("host")) {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            match ctx.connect_tcp(expose.addr) {
                Ok(conn) => {
                    info!("tunnel http stream", stream = stream, target = target, service = conn);
                    // Written once it is connected.
                    let _ = ctx.tcp_write(conn, &out);
                    tunnel.attach_plain(ctx, stream, conn);
                    self.plain.insert(conn, (stream, Body::new(framing)));
                }
                Err(e) => {
                    warn!("tunnel service connect failed", target = target, error = e);
                    tunnel.refuse(ctx, stream, ResetCause::CONNECT_FAILED);
                }
            }
            return;
        }
        let protocols: Vec<String> = req
            .fields()
            .all("sec-websocket-protocol")
            .flat_map(|v| v.split(|&b| b == b','))
            .filter_map(|p| std::str::from_utf8(p.trim_ascii()).ok())
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        let headers = req
            .headers
            .iter()
            .filter(|h| !h.name.eq_ignore_ascii_case("host"))
            .filter(|h| !h.name.to_ascii_lowercase().starts_with("sec-websocket-"))
            .filter(|h| !["connection", "upgrade"].iter().any(|n| h.name.eq_ignore_ascii_case(n)))
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let request = ConnectRequest {
            addr: expose.addr,
            host: expose.url.host_header(),
            target: path,
            protocols,
            headers,
            timeout: Some(SERVICE_TIMEOUT),
        };
        match connect(ctx, &expose.url, request) {
            Ok(conn) => {
                info!("tunnel stream", stream = stream, target = target, service = conn);
                tunnel.attach(ctx, stream, conn);
                self.connecting.insert(conn, stream);
            }
            Err(e) => {
                warn!("tunnel service connect failed", target = target, error = e);
                tunnel.refuse(ctx, stream, ResetCause::CONNECT_FAILED);
            }
        }
    }
}

impl Handler for Agent {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.dial(ctx);
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if ctx.draining() {
            if self.tunnel.is_none() && self.dialing.is_none() {
                ctx.stop();
            }
            return;
        }
        if self.next_dial.is_some_and(|at| at <= ctx.now()) {
            self.dial(ctx);
        }
        if let Some(t) = self.tunnel.as_mut() {
            let now = ctx.now();
            for (conn, _) in t.tick(ctx, now) {
                ctx.close(conn, CloseCode::GOING_AWAY, "open timeout");
            }
        }
        self.log_waiting(ctx.now());
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, id: ConnId, up: &Connected<'_>) {
        if self.dialing == Some(id) {
            self.dialing = None;
            self.failures = 0;
            info!("tunnel connected", controller = self.url.authority(), name = self.name);
            let targets: Vec<&str> = self.exposes.iter().map(|e| e.name.as_str()).collect();
            self.tunnel = Some(Tunnel::new(id, Role::Agent, Config::default(), &targets));
            // Every stream sends into it: one write per turn of the loop.
            ctx.set_coalesce(id, true);
            return;
        }
        let Some(stream) = self.connecting.remove(&id) else {
            // Its stream ended while it connected.
            ctx.close(id, CloseCode::GOING_AWAY, "the tunnel stream ended");
            return;
        };
        let Some(tunnel) = self.tunnel.as_mut() else { return };
        ctx.set_streaming(id, true);
        ctx.set_manual_close(id, true);
        // The service's 101, its own fields with it (seed 003), no longer than the one it sent
        // (which the runtime bounded as any head, `max_head_len` and `max_headers`).
        let mut head = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        if let Some(p) = up.protocol {
            head.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            head.extend_from_slice(p.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        for h in passed_on(up.headers) {
            head.extend_from_slice(h.name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(h.value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        tunnel.accept(ctx, stream, &head);
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, id: ConnId, e: &ConnectError) {
        if self.dialing == Some(id) {
            self.dialing = None;
            match e {
                ConnectError::Refused { status: 401 } => {
                    error!("tunnel refused: the controller does not take this token", status = 401);
                }
                _ => warn!("tunnel dial failed", controller = self.url.authority(), error = e),
            }
            self.retry(ctx);
            return;
        }
        if let Some((stream, _)) = self.plain.remove(&id) {
            info!("tunnel http service failed", stream = stream, error = e);
            if let Some(t) = self.tunnel.as_mut() {
                t.refuse(ctx, stream, ResetCause::CONNECT_FAILED);
            }
            return;
        }
        let Some(stream) = self.connecting.remove(&id) else { return };
        let Some(tunnel) = self.tunnel.as_mut() else { return };
        info!("tunnel service failed", stream = stream, error = e);
        // The service's own refusal reaches the client as its status; an interim status
        // (RFC 9110 §15.2) is no refusal the controller could pass on: connect_failed.
        match e.refusal_status() {
            Some(status) => {
                let head = format!("HTTP/1.1 {status} Refused\r\n\r\n");
                tunnel.answer(ctx, stream, head.as_bytes());
            }
            None => tunnel.refuse(ctx, stream, ResetCause::CONNECT_FAILED),
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if self.tunnel.as_ref().is_some_and(|t| t.conn == id) {
            if kind == MessageKind::Text {
                ctx.close(id, CloseCode::UNSUPPORTED_DATA, "tunnel messages are binary");
                return;
            }
            self.on_tunnel_message(ctx, data);
        }
    }

    fn on_message_piece(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) {
        if let Some(t) = self.tunnel.as_mut() {
            t.piece(ctx, id, kind, data, fin);
        }
    }

    fn on_peer_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        if let Some(t) = self.tunnel.as_mut().filter(|t| t.conn != id) {
            t.peer_close(ctx, id, code, reason);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        if self.tunnel.as_ref().is_some_and(|t| t.conn == id) {
            info!("tunnel disconnected", code = code.0, reason = reason);
            self.lost(ctx, "the tunnel closed");
            return;
        }
        if let Some(t) = self.tunnel.as_mut() {
            t.closed(ctx, id, code, reason);
        }
    }

    fn on_tcp_connected(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let (Some(&(stream, _)), Some(t)) = (self.plain.get(&id), self.tunnel.as_mut()) else {
            return ctx.tcp_close(id);
        };
        // The response comes as `DATA`; the controller reads its head there.
        t.accept(ctx, stream, b"");
    }

    fn on_tcp_data(&mut self, ctx: &mut Context<'_>, id: ConnId, bytes: &[u8]) {
        if let Some(t) = self.tunnel.as_mut() {
            t.data(ctx, id, bytes);
        }
    }

    fn on_tcp_eof(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        // The service's response is over (it was asked to close after it).
        if let Some(t) = self.tunnel.as_mut() {
            t.fin(ctx, id);
        }
        ctx.tcp_shutdown_write(id);
    }

    fn on_tcp_closed(&mut self, ctx: &mut Context<'_>, id: ConnId, error: Option<&io::Error>) {
        let Some((stream, _)) = self.plain.remove(&id) else { return };
        if let Some(e) = error {
            info!("tunnel http service closed", stream = stream, error = e);
        }
        if let Some(t) = self.tunnel.as_mut() {
            // A FIN sent and nothing waiting: the controller ends the stream; else it is reset.
            t.release_if_cut(ctx, id);
        }
    }

    fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(t) = self.tunnel.as_mut() {
            t.drained(ctx, id);
        }
    }
}

/// Runs the agent until SIGTERM or SIGINT (its streams and tunnel closed with 1001).
///
/// # Errors
/// The options are refused (see [`Agent::new`]), or the loop cannot start.
pub fn run(opts: &AgentOptions) -> io::Result<()> {
    let agent = Agent::new(opts)?;
    let ws = crate::proto::Config { ping_interval: Some(PING_INTERVAL), ..Default::default() };
    let config = ServerConfig {
        listen: Vec::new(),
        handle_signals: true,
        tls_ca: opts.tls_ca.clone().map(Into::into),
        tls_insecure: opts.insecure,
        ws,
        ..ServerConfig::default()
    };
    info!(
        "tunnel agent starting",
        name = agent.name,
        controller = agent.url.authority(),
        targets = agent.exposes.len()
    );
    Server::bind(config, agent)?.run()
}
