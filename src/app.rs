//! What the `weir` binary serves: the hub at `/ws`, WebSocket echo on the configured paths, the
//! reverse-proxy routes, `--exec` processes and `--agent`s (`/ws/agents/NAME`, `GET /api/agents`),
//! `--broadcast` paths (`POST /api/broadcast/PATH`), and `GET /healthz` with the HTTP API and the
//! console.
//!
//! The access policy ([`Auth`]) is checked here, once, before any app sees a request or an
//! upgrade, and the message rate of every WebSocket but the hub's (which answers each command
//! over the rate in-band) is counted here too.
//!
//! Each connection and process is tagged with the app that owns it when it is upgraded (or
//! made: a route's upstream connection, an agent's or an exec route's process), and every
//! callback is routed by its tag ([`Context::tag`]): no app is asked whether an id is its own.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use crate::access::Auth;
use crate::agent::{self, Agents};
use crate::broadcast::{self, Broadcast};
use crate::exec::Exec;
use crate::http::Api;
use crate::hub::Hub;
use crate::hub::rate::{AddrBuckets, Bucket, Verdict};
use crate::proto::relay::ClientHead;
use crate::proto::{CloseCode, MessageKind};
use crate::proxy::Proxy;
use crate::server::{
    ConnId, ConnectError, Connected, Context, Decision, Handler, IdMap, ProcId, Request, Response,
    Server, Stream, Tag, id_map,
};
use crate::tunnel::controller::Controller;
use crate::{http, info};

mod api;

/// The hub's WebSocket clients.
const HUB: Tag = Tag(1);
/// Echo connections.
const ECHO: Tag = Tag(2);
/// A route's client side.
const PROXY_CLIENT: Tag = Tag(3);
/// A route's upstream connection.
const PROXY_UPSTREAM: Tag = Tag(4);
/// An exec route's connections and processes.
const EXEC: Tag = Tag(5);
/// Agents' dashboards and processes.
const AGENTS: Tag = Tag(6);
/// Plain HTTP requests (the HTTP API's streams belong to the hub).
const HTTP: Tag = Tag(7);
/// Broadcast rooms' clients.
const BROADCAST: Tag = Tag(8);
/// The hub's links to Redis (`--redis`): plain TCP connections.
const REDIS: Tag = Tag(20);
/// Tunnel agents' WebSockets (the controller's side).
const TUNNEL: Tag = Tag(9);
/// Public clients of a tunnel route.
const TUNNEL_CLIENT: Tag = Tag(10);

/// The WebSocket endpoint kinds `/metrics` counts open connections of
/// (`weir_endpoint_connections_open`): a client WebSocket's kind is its tag, kept by the runtime
/// from its upgrade to its close (a route's upstream side is not a client's, and not counted).
const KINDS: [(Tag, &str); 7] = [
    (HUB, "hub"),
    (ECHO, "echo"),
    (PROXY_CLIENT, "route"),
    (EXEC, "exec"),
    (AGENTS, "agent"),
    (BROADCAST, "broadcast"),
    (TUNNEL_CLIENT, "tunnel_route"),
];

/// Open client WebSockets by kind: counted at `on_open` and at `on_close` (which the runtime
/// calls once for each WebSocket that opened), by tag.
#[derive(Debug, Default)]
struct OpenByKind {
    open: [u64; KINDS.len()],
}

impl OpenByKind {
    fn slot(tag: Tag) -> Option<usize> {
        KINDS.iter().position(|&(t, _)| t == tag)
    }

    fn opened(&mut self, tag: Tag) {
        if let Some(i) = Self::slot(tag) {
            self.open[i] += 1;
        }
    }

    fn closed(&mut self, tag: Tag) {
        if let Some(i) = Self::slot(tag) {
            self.open[i] = self.open[i].saturating_sub(1);
        }
    }

    /// `(label, open)` for each kind.
    fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        KINDS.iter().map(|&(_, label)| label).zip(self.open)
    }
}

/// The binary's routes.
#[derive(Debug)]
pub struct App {
    echo_paths: Vec<String>,
    proxy: Option<Proxy>,
    hub: Option<(String, Hub)>,
    exec: Option<Exec>,
    agents: Option<Agents>,
    broadcast: Option<Broadcast>,
    tunnels: Option<Controller>,
    /// `--rate` for `POST /api/broadcast/PATH`, per client address.
    http_broadcasts: AddrBuckets,
    api: Api,
    access: Auth,
    /// Messages per second and burst for each client WebSocket that is not the hub's (0: off).
    rate: (u32, u32),
    /// Those connections' buckets, from their first message to their close; `true` once one
    /// was closed for the rate (what it still sends is dropped).
    buckets: IdMap<ConnId, (Bucket, bool)>,
    /// Open client WebSockets by kind, for `/metrics`.
    open: OpenByKind,
}

/// Runs the binary's server until it stops ([`Server::run`]).
///
/// Here rather than in `main.rs`: a generic is compiled again in every crate that instantiates
/// it, so the runtime (`Server::run` and the loop under it) would be in the binary twice, once
/// for this server and once for `weir client` and `weir tunnel` (docs/performance.md, "Binary
/// size").
///
/// # Errors
/// The poll itself fails.
pub fn run(server: Server<App>) -> io::Result<()> {
    server.run()
}

impl App {
    /// Echo on each of `echo_paths`.
    pub fn new(echo_paths: Vec<String>) -> Self {
        Self {
            echo_paths,
            proxy: None,
            hub: None,
            exec: None,
            agents: None,
            broadcast: None,
            tunnels: None,
            http_broadcasts: AddrBuckets::new(0, 0),
            api: Api::default(),
            access: Auth::default(),
            rate: (0, 0),
            buckets: id_map(),
            open: OpenByKind::default(),
        }
    }

    /// Checks `access` on every request and upgrade, and limits each client WebSocket to
    /// `rate` messages a second with bursts of `burst` (`rate` 0: no limit).
    pub fn with_access(mut self, access: Auth, rate: u32, burst: u32) -> Self {
        self.access = access;
        self.rate = (rate, burst);
        self.http_broadcasts = AddrBuckets::new(rate, burst);
        self
    }

    /// Whether a message from `id` may go on: `false` once it is over the rate, which closes
    /// it (1008), and for what it sends after that. The hub's clients and the proxy's upstream
    /// connections are not counted here.
    fn within_rate(&mut self, ctx: &mut Context<'_>, id: ConnId) -> bool {
        let (rate, burst) = self.rate;
        if rate == 0 {
            return true;
        }
        let now = ctx.now();
        let (bucket, closed) = self.buckets.entry(id).or_insert((Bucket::new(burst, now), false));
        if *closed {
            return false;
        }
        // A relayed message cannot be refused in-band: the first over the rate closes.
        if bucket.take(rate, burst, now) == Verdict::Allow {
            return true;
        }
        *closed = true;
        info!("rate limit exceeded, closing", id = id);
        ctx.close(id, CloseCode::POLICY_VIOLATION, "rate limit exceeded");
        false
    }

    /// Runs a process per connection on the exec routes.
    pub fn with_exec(mut self, exec: Exec) -> Self {
        self.exec = Some(exec);
        self
    }

    /// Supervises agents and serves them at `/ws/agents/NAME` and `GET /api/agents`.
    pub fn with_agents(mut self, agents: Agents) -> Self {
        self.agents = Some(agents);
        self
    }

    /// Serves `--broadcast` paths and `POST /api/broadcast/PATH`.
    pub fn with_broadcast(mut self, broadcast: Broadcast) -> Self {
        self.broadcast = Some(broadcast);
        self
    }

    /// Serves the hub at `path`.
    pub fn with_hub(mut self, path: &str, hub: Hub) -> Self {
        self.hub = Some((path.to_string(), hub));
        self
    }

    /// The hub, if it is served.
    pub fn hub(&self) -> Option<&Hub> {
        self.hub.as_ref().map(|(_, h)| h)
    }

    /// The hub, if it is served.
    fn hub_mut(&mut self) -> Option<&mut Hub> {
        self.hub.as_mut().map(|(_, h)| h)
    }

    /// Adds reverse-proxy routes (they win over echo paths they overlap).
    pub fn with_proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The proxy, if routes are configured.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// Takes tunnel agents and serves the routes into their tunnels.
    pub fn with_tunnels(mut self, controller: Controller) -> Self {
        self.tunnels = Some(controller);
        self
    }
}

impl Handler for App {
    fn on_request(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Response {
        let (id, path) = (req.id, req.path);
        // A tunnel host's paths are its service's, none weir's own (RFC 9110 §15.6.2): its
        // requests reach here only refused by the access policy (`on_request_head` took the rest).
        if self.tunnels.as_ref().is_some_and(|t| t.is_tunnel_host(req.host)) {
            if let Err(r) = self.access.check_request(req) {
                return r.text_response();
            }
            info!("tunnel host: request not relayed", id = id, path = path);
            return Response::text(502, "the tunnel did not take the request\n");
        }
        if !self.access.is_open_request(path) {
            if let Err(r) = self.access.check_request(req) {
                // The channel and broadcast APIs answer in their JSON form.
                return if path.starts_with("/api/channels/")
                    || path.starts_with(broadcast::API_PREFIX)
                {
                    http::refusal(r)
                } else {
                    r.text_response()
                };
            }
        }
        let exec_path = self.exec.as_ref().is_some_and(|e| e.route_for(path).is_some());
        let broadcast_path = self.broadcast.as_ref().is_some_and(|b| b.room_for(path).is_some());
        if exec_path || broadcast_path || self.echo_paths.iter().any(|p| p == path) {
            return Response::text(426, "this is a WebSocket endpoint\n");
        }
        if let Some(b) = self.broadcast.as_mut().filter(|_| path.starts_with(broadcast::API_PREFIX))
        {
            let (rates, now) = (&mut self.http_broadcasts, ctx.now());
            return b.on_request(ctx, req, || rates.take(req.peer.ip(), now));
        }
        if let (Some(agents), "/api/agents") = (self.agents.as_ref(), path) {
            return agents.http_list(req);
        }
        ctx.set_tag(id, HTTP);
        if path == "/metrics" {
            // The connection asking streams while its request is handled (a streamed answer
            // writes before its head is queued): it is a plain HTTP one.
            let (http, streams) = ctx.http_connections();
            let (http, streams) = (http + 1, streams.saturating_sub(1));
            let mut counts: Vec<(&'static str, u64)> = self.open.counts().collect();
            counts.extend([("event_stream", streams), ("http", http)]);
            self.api.set_endpoint_counts(counts);
            self.api.set_routes(self.proxy.as_ref().map(api::route_figures));
        }
        if path == "/metrics" || path == "/api/tunnels" {
            self.api.set_tunnels(self.tunnels.as_ref().map(api::tunnel_figures));
        }
        let hub = self.hub.as_mut().map(|(_, h)| h as &mut dyn http::Channels);
        self.api.serve(ctx, req, hub)
    }

    fn on_stream_closed(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let (HTTP, Some(h)) = (ctx.tag(id), self.hub_mut()) {
            h.on_stream_closed(id);
        }
    }

    fn on_upgrade(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Decision {
        let id = req.id;
        // Agents authenticate with their own tokens (--tunnel-token-file), not the policy's.
        if let Some(t) = self.tunnels.as_mut().filter(|t| t.is_tunnel_path(req.host, req.path)) {
            ctx.set_tag(id, TUNNEL);
            return t.on_agent_upgrade(req);
        }
        // A route wins over the hub's path: only the hub itself takes a token after the upgrade.
        let routed = self.proxy.as_ref().is_some_and(|p| p.route_for(req.path).is_some())
            || self.tunnels.as_ref().is_some_and(|t| t.pick(req.host, req.path).is_some());
        let hub_path = !routed && self.hub.as_ref().is_some_and(|(p, _)| req.path == p.as_str());
        let mut authed = true;
        if !self.access.is_public(req.path) {
            // The hub's clients may authenticate after the upgrade, within --auth-timeout.
            match self.access.check_upgrade(req, hub_path) {
                Ok(a) => authed = a,
                Err(r) => return Decision::Reject(r.text_response()),
            }
        }
        if let Some(t) = self.tunnels.as_mut() {
            if let Some(pick) = t.pick(req.host, req.path) {
                ctx.set_tag(id, TUNNEL_CLIENT);
                return t.on_client_upgrade(ctx, &pick, req);
            }
        }
        if let Some(proxy) = self.proxy.as_mut() {
            if let Some(route) = proxy.route_for(req.path) {
                ctx.set_tag(id, PROXY_CLIENT);
                ctx.tag_new(PROXY_UPSTREAM);
                return proxy.on_upgrade(ctx, route, req);
            }
        }
        if let Some((path, hub)) = self.hub.as_mut() {
            if req.path == path.as_str() {
                ctx.set_tag(id, HUB);
                hub.on_upgrade(ctx, id, req.peer, authed);
                return Decision::accept();
            }
        }
        if let Some(b) = self.broadcast.as_mut() {
            if let Some(room) = b.room_for(req.path) {
                ctx.set_tag(id, BROADCAST);
                return b.on_upgrade(id, room);
            }
        }
        if let Some(agents) = self.agents.as_mut() {
            if req.path.starts_with(agent::PATH_PREFIX) {
                ctx.set_tag(id, AGENTS);
                return agents.on_upgrade(req);
            }
        }
        if let Some(exec) = self.exec.as_mut() {
            if exec.route_for(req.path).is_some() {
                ctx.set_tag(id, EXEC);
                return exec.on_upgrade(ctx, req);
            }
        }
        if self.echo_paths.iter().any(|p| p == req.path) {
            ctx.set_tag(id, ECHO);
            Decision::accept()
        } else {
            Decision::Reject(Response::text(404, "no WebSocket endpoint at this path\n"))
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let tag = ctx.tag(id);
        self.open.opened(tag);
        match tag {
            HUB => self.hub_mut().into_iter().for_each(|h| h.on_open(ctx, id)),
            PROXY_CLIENT => self.proxy.iter_mut().for_each(|p| p.on_open(ctx, id)),
            AGENTS => self.agents.iter_mut().for_each(|a| a.on_open(ctx, id)),
            BROADCAST => self.broadcast.iter_mut().for_each(|b| b.on_open(id)),
            TUNNEL => self.tunnels.iter_mut().for_each(|t| t.on_agent_open(ctx, id)),
            TUNNEL_CLIENT => self.tunnels.iter_mut().for_each(|t| t.on_client_open(ctx, id)),
            _ => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        let tag = ctx.tag(id);
        if let (HUB, Some(h)) = (tag, self.hub_mut()) {
            return h.on_message(ctx, id, kind, data);
        }
        if let (TUNNEL, Some(t)) = (tag, self.tunnels.as_mut()) {
            return t.on_agent_message(ctx, id, kind, data);
        }
        if !self.within_rate(ctx, id) {
            return;
        }
        match tag {
            EXEC => self.exec.iter_mut().for_each(|e| e.on_message(ctx, id, data)),
            AGENTS => self.agents.iter_mut().for_each(|a| a.on_message(ctx, id, kind, data)),
            BROADCAST => self.broadcast.iter_mut().for_each(|b| b.on_message(ctx, id, kind, data)),
            // Echo. A failed send is a closing or slow connection: the runtime has dealt with it.
            _ => {
                let _ = ctx.send(id, kind, data);
            }
        }
    }

    fn on_message_owned(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: Vec<u8>,
    ) {
        // A message gathered across reads goes where one from a single read goes: only the
        // echo takes it by value.
        if matches!(ctx.tag(id), HUB | EXEC | AGENTS | BROADCAST | TUNNEL) {
            return self.on_message(ctx, id, kind, &data);
        }
        if !self.within_rate(ctx, id) {
            return;
        }
        // Echo without copying the message.
        let _ = ctx.send_owned(id, kind, data);
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        // Agents' restart back-off is checked on the tick too, and tunnels' open deadlines.
        let agents = self.agents.as_ref().map(|_| Duration::from_millis(250));
        let proxy = self.proxy.as_ref().map(|_| Duration::from_millis(250));
        let tunnels = self.tunnels.as_ref().map(Controller::tick_interval);
        [self.hub().and_then(Hub::tick_interval), agents, proxy, tunnels]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if let Some((_, h)) = self.hub.as_mut() {
            // What it dials are its Redis links.
            ctx.tag_new(REDIS);
            h.on_tick(ctx);
        }
        if let Some(a) = self.agents.as_mut() {
            // What it starts is the agents'.
            ctx.tag_new(AGENTS);
            a.on_tick(ctx);
        }
        if let Some(p) = self.proxy.as_mut() {
            p.on_tick(ctx);
        }
        if let Some(t) = self.tunnels.as_mut() {
            t.on_tick(ctx);
        }
    }

    fn on_request_head(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        head: ClientHead,
    ) -> bool {
        // A tunnel host's requests, and a tunnel route's, are the tunnel's (the access policy
        // first: refused, `on_request` answers them).
        if let Some(t) = self.tunnels.as_mut().filter(|t| t.pick(req.host, req.path).is_some()) {
            if !self.access.is_open_request(req.path) && self.access.check_request(req).is_err() {
                return false;
            }
            ctx.set_tag(req.id, TUNNEL_CLIENT);
            return t.on_request_head(ctx, req, head);
        }
        let Some(proxy) = self.proxy.as_mut() else { return false };
        let Some(route) = proxy.route_for(req.path) else { return false };
        // Refused by the access policy: `on_request` answers it as any other request.
        if !self.access.is_open_request(req.path) && self.access.check_request(req).is_err() {
            return false;
        }
        ctx.set_tag(req.id, PROXY_CLIENT);
        ctx.tag_new(PROXY_UPSTREAM);
        proxy.on_request_head(ctx, route, req, head)
    }

    fn on_tcp_data(&mut self, ctx: &mut Context<'_>, id: ConnId, bytes: &[u8]) {
        match ctx.tag(id) {
            PROXY_CLIENT | PROXY_UPSTREAM => {
                self.proxy.iter_mut().for_each(|p| p.on_tcp_data(ctx, id, bytes));
            }
            REDIS => self.hub_mut().into_iter().for_each(|h| h.on_redis_data(ctx, id, bytes)),
            TUNNEL_CLIENT => self.tunnels.iter_mut().for_each(|t| t.on_tcp_data(ctx, id, bytes)),
            _ => {}
        }
    }

    fn on_tcp_eof(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        match (ctx.tag(id), self.proxy.as_mut()) {
            (PROXY_CLIENT | PROXY_UPSTREAM, Some(p)) => p.on_tcp_eof(ctx, id),
            (TUNNEL_CLIENT, _) => self.tunnels.iter_mut().for_each(|t| t.on_tcp_eof(ctx, id)),
            (REDIS, _) => {
                // Redis closed the link: nothing more will be answered on it.
                ctx.tcp_close(id);
                if let Some(h) = self.hub_mut() {
                    h.on_redis_closed(ctx, id, "closed by Redis");
                }
            }
            _ => ctx.tcp_shutdown_write(id),
        }
    }

    fn on_tcp_closed(&mut self, ctx: &mut Context<'_>, id: ConnId, error: Option<&io::Error>) {
        match ctx.tag(id) {
            PROXY_CLIENT | PROXY_UPSTREAM => {
                self.proxy.iter_mut().for_each(|p| p.on_tcp_closed(ctx, id, error));
            }
            TUNNEL_CLIENT => self.tunnels.iter_mut().for_each(|t| t.on_tcp_closed(ctx, id)),
            REDIS => {
                if let Some(h) = self.hub_mut() {
                    let why = error.map_or_else(|| "closed".to_string(), ToString::to_string);
                    h.on_redis_closed(ctx, id, &why);
                }
            }
            _ => {}
        }
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        // On shutdown children get SIGTERM, then SIGKILL after the longest grace configured.
        let grace = [
            self.exec.as_ref().map(Exec::kill_grace),
            self.agents.as_ref().map(Agents::kill_grace),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(g) = grace {
            ctx.set_process_shutdown_grace(g);
        }
        if let Some(a) = self.agents.as_mut() {
            ctx.tag_new(AGENTS);
            a.on_start(ctx);
        }
    }

    fn on_process_output(
        &mut self,
        ctx: &mut Context<'_>,
        id: ProcId,
        stream: Stream,
        data: &[u8],
    ) {
        match ctx.process_tag(id) {
            EXEC => self.exec.iter_mut().for_each(|e| e.on_process_output(ctx, id, stream, data)),
            AGENTS => {
                self.agents.iter_mut().for_each(|a| a.on_process_output(ctx, id, stream, data))
            }
            _ => {}
        }
    }

    fn on_process_exit(&mut self, ctx: &mut Context<'_>, id: ProcId, status: ExitStatus) {
        match ctx.process_tag(id) {
            EXEC => self.exec.iter_mut().for_each(|e| e.on_process_exit(ctx, id, status)),
            AGENTS => self.agents.iter_mut().for_each(|a| a.on_process_exit(ctx, id, status)),
            _ => {}
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
        // A client's message counts when its last piece comes; what the upstream sends does
        // not count.
        let tag = ctx.tag(id);
        let client = tag == PROXY_CLIENT || tag == TUNNEL_CLIENT;
        if client && fin && !self.within_rate(ctx, id) {
            return;
        }
        if client && self.buckets.get(&id).is_some_and(|&(_, closed)| closed) {
            return;
        }
        if let (PROXY_CLIENT | PROXY_UPSTREAM, Some(p)) = (tag, self.proxy.as_mut()) {
            p.on_message_piece(ctx, id, kind, data, fin);
        }
        if let (TUNNEL_CLIENT, Some(t)) = (tag, self.tunnels.as_mut()) {
            t.on_client_piece(ctx, id, kind, data, fin);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        self.buckets.remove(&id);
        let tag = ctx.tag(id);
        self.open.closed(tag);
        match tag {
            HUB => self.hub_mut().into_iter().for_each(|h| h.on_close(id)),
            EXEC => self.exec.iter_mut().for_each(|e| e.on_close(ctx, id)),
            AGENTS => self.agents.iter_mut().for_each(|a| a.on_close(id)),
            BROADCAST => self.broadcast.iter_mut().for_each(|b| b.on_close(id)),
            PROXY_CLIENT | PROXY_UPSTREAM => {
                self.proxy.iter_mut().for_each(|p| p.on_close(ctx, id, code, reason));
            }
            TUNNEL => self.tunnels.iter_mut().for_each(|t| t.on_agent_close(ctx, id, code)),
            TUNNEL_CLIENT => {
                self.tunnels.iter_mut().for_each(|t| t.on_client_close(ctx, id, code, reason));
            }
            _ => {}
        }
    }

    fn on_peer_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        match ctx.tag(id) {
            HUB => self.hub_mut().into_iter().for_each(|h| h.on_peer_close(ctx, id, code, reason)),
            PROXY_CLIENT | PROXY_UPSTREAM => {
                self.proxy.iter_mut().for_each(|p| p.on_peer_close(ctx, id, code, reason));
            }
            TUNNEL_CLIENT => {
                self.tunnels.iter_mut().for_each(|t| t.on_client_peer_close(ctx, id, code, reason));
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, id: ConnId, up: &Connected<'_>) {
        if let (PROXY_UPSTREAM, Some(p)) = (ctx.tag(id), self.proxy.as_mut()) {
            p.on_connected(ctx, id, up.protocol);
        }
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, id: ConnId, error: &ConnectError) {
        match (ctx.tag(id), self.proxy.as_mut()) {
            (PROXY_UPSTREAM, Some(p)) => p.on_connect_failed(ctx, id, error),
            (REDIS, _) => {
                let why = error.to_string();
                self.hub_mut().into_iter().for_each(|h| h.on_redis_closed(ctx, id, &why));
            }
            _ => {}
        }
    }

    fn on_tcp_connected(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        match ctx.tag(id) {
            REDIS => self.hub_mut().into_iter().for_each(|h| h.on_redis_connected(ctx, id)),
            PROXY_UPSTREAM => self.proxy.iter_mut().for_each(|p| p.on_tcp_connected(ctx, id)),
            _ => {}
        }
    }

    fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        match ctx.tag(id) {
            // The hub's clients, and the HTTP API's cursors and streams.
            HUB | HTTP => self.hub_mut().into_iter().for_each(|h| h.on_drained(ctx, id)),
            PROXY_CLIENT | PROXY_UPSTREAM => {
                self.proxy.iter_mut().for_each(|p| p.on_drained(ctx, id));
            }
            EXEC => self.exec.iter_mut().for_each(|e| e.on_drained(ctx, id)),
            TUNNEL | TUNNEL_CLIENT => self.tunnels.iter_mut().for_each(|t| t.on_drained(ctx, id)),
            _ => {}
        }
    }
}
