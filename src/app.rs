//! What the `weir` binary serves: the hub at `/ws`, WebSocket echo on the configured paths, the
//! reverse-proxy routes, `--exec` processes and `--agent`s (`/ws/agents/NAME`, `GET /api/agents`),
//! `--broadcast` paths (`POST /api/broadcast/PATH`), and `GET /healthz` with the HTTP API and the
//! console.
//!
//! The access policy ([`Auth`]) is checked here, once, before any app sees a request or an
//! upgrade, and the message rate of every WebSocket but the hub's (which answers each command
//! over the rate in-band) is counted here too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::time::Duration;

use crate::access::Auth;
use crate::agent::{self, Agents};
use crate::broadcast::{self, Broadcast};
use crate::exec::Exec;
use crate::http::Api;
use crate::hub::Hub;
use crate::hub::rate::{AddrBuckets, Bucket, Verdict};
use crate::proto::handshake::UpgradeRequest;
use crate::proto::http::Request;
use crate::proto::{CloseCode, MessageKind};
use crate::proxy::Proxy;
use crate::server::{ConnId, ConnectError, Context, Decision, Handler, ProcId, Response, Stream};
use crate::{http, info};

/// The WebSocket endpoint kinds `/metrics` counts open connections of
/// (`weir_endpoint_connections_open`).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Hub,
    Echo,
    Route,
    Exec,
    Agent,
    Broadcast,
}

/// Their labels, in the order of [`Kind`].
const KINDS: [&str; 6] = ["hub", "echo", "route", "exec", "agent", "broadcast"];

/// Open client WebSockets by kind. Each one's kind is kept from `on_open` to `on_close`, not
/// asked of the apps at its close: an app may let go of a connection before (an `--exec`
/// client whose program ended).
#[derive(Debug, Default)]
struct OpenByKind {
    kinds: HashMap<ConnId, Kind>,
    open: [u64; KINDS.len()],
}

impl OpenByKind {
    fn opened(&mut self, id: ConnId, kind: Kind) {
        self.kinds.insert(id, kind);
        self.open[kind as usize] += 1;
    }

    fn closed(&mut self, id: ConnId) {
        if let Some(k) = self.kinds.remove(&id) {
            self.open[k as usize] -= 1;
        }
    }

    /// `(label, open)` for each kind.
    fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        KINDS.into_iter().zip(self.open)
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
    /// `--rate` for `POST /api/broadcast/PATH`, per client address.
    http_broadcasts: AddrBuckets,
    api: Api,
    access: Auth,
    /// Messages per second and burst for each client WebSocket that is not the hub's (0: off).
    rate: (u32, u32),
    /// Those connections' buckets, from their first message to their close; `true` once one
    /// was closed for the rate (what it still sends is dropped).
    buckets: HashMap<ConnId, (Bucket, bool)>,
    /// Open client WebSockets by kind, for `/metrics`.
    open: OpenByKind,
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
            http_broadcasts: AddrBuckets::new(0, 0),
            api: Api::default(),
            access: Auth::default(),
            rate: (0, 0),
            buckets: HashMap::new(),
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

    /// The hub, if this connection is one of its.
    fn hub_client(&mut self, id: ConnId) -> Option<&mut Hub> {
        self.hub.as_mut().map(|(_, h)| h).filter(|h| h.owns(id))
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

    /// Which endpoint an open client WebSocket is on.
    fn kind_of(&self, id: ConnId) -> Kind {
        if self.hub().is_some_and(|h| h.owns(id)) {
            Kind::Hub
        } else if self.proxy.as_ref().is_some_and(|p| p.is_client(id)) {
            Kind::Route
        } else if self.exec.as_ref().is_some_and(|e| e.owns(id)) {
            Kind::Exec
        } else if self.agents.as_ref().is_some_and(|a| a.owns(id)) {
            Kind::Agent
        } else if self.broadcast.as_ref().is_some_and(|b| b.owns(id)) {
            Kind::Broadcast
        } else {
            Kind::Echo
        }
    }

    /// The proxy, if this connection is one of its.
    fn proxied(&mut self, id: ConnId) -> Option<&mut Proxy> {
        self.proxy.as_mut().filter(|p| p.owns(id))
    }
}

impl Handler for App {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        req: &Request<'_, '_>,
        body: &[u8],
        peer: SocketAddr,
    ) -> Response {
        if !self.access.is_open_request(req.path()) {
            if let Err(r) = self.access.check_request(req, peer) {
                // The channel and broadcast APIs answer in their JSON form.
                let path = req.path();
                return if path.starts_with("/api/channels/")
                    || path.starts_with(broadcast::API_PREFIX)
                {
                    http::refusal(r)
                } else {
                    r.text_response()
                };
            }
        }
        let exec_path = self.exec.as_ref().is_some_and(|e| e.route_for(req.path()).is_some());
        let broadcast_path =
            self.broadcast.as_ref().is_some_and(|b| b.room_for(req.path()).is_some());
        if exec_path || broadcast_path || self.echo_paths.iter().any(|p| p == req.path()) {
            return Response::text(426, "this is a WebSocket endpoint\n");
        }
        if let Some(b) =
            self.broadcast.as_mut().filter(|_| req.path().starts_with(broadcast::API_PREFIX))
        {
            let (rates, now) = (&mut self.http_broadcasts, ctx.now());
            return b.on_request(ctx, req, body, || rates.take(peer.ip(), now));
        }
        if let (Some(agents), "/api/agents") = (self.agents.as_ref(), req.path()) {
            return agents.http_list(req);
        }
        if req.path() == "/metrics" {
            // The connection asking streams while its request is handled (a streamed answer
            // writes before its head is queued): it is a plain HTTP one.
            let (http, streams) = ctx.http_connections();
            let (http, streams) = (http + 1, streams.saturating_sub(1));
            let mut counts: Vec<(&'static str, u64)> = self.open.counts().collect();
            counts.extend([("event_stream", streams), ("http", http)]);
            self.api.set_endpoint_counts(counts);
        }
        let hub = self.hub.as_mut().map(|(_, h)| h);
        self.api.serve(ctx, id, req, peer, body, hub, self.proxy.as_ref())
    }

    fn on_stream_closed(&mut self, _ctx: &mut Context<'_>, id: ConnId) {
        if let Some((_, h)) = self.hub.as_mut() {
            h.on_stream_closed(id);
        }
    }

    fn on_upgrade(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        req: &UpgradeRequest<'_, '_>,
        peer: SocketAddr,
    ) -> Decision {
        // A route wins over the hub's path: only the hub itself takes a token after the upgrade.
        let routed = self.proxy.as_ref().is_some_and(|p| p.route_for(req.path).is_some());
        let hub_path = !routed && self.hub.as_ref().is_some_and(|(p, _)| req.path == p.as_str());
        let mut authed = true;
        if !self.access.is_public(req.path) {
            // The hub's clients may authenticate after the upgrade, within --auth-timeout.
            match self.access.check_upgrade(req, peer, hub_path) {
                Ok(a) => authed = a,
                Err(r) => return Decision::Reject(r.text_response()),
            }
        }
        if let Some(proxy) = self.proxy.as_mut() {
            if let Some(route) = proxy.route_for(req.path) {
                return proxy.on_upgrade(ctx, id, route, req, peer);
            }
        }
        if let Some((path, hub)) = self.hub.as_mut() {
            if req.path == path.as_str() {
                hub.on_upgrade(ctx, id, peer, authed);
                return Decision::accept();
            }
        }
        if let Some(b) = self.broadcast.as_mut() {
            if let Some(room) = b.room_for(req.path) {
                return b.on_upgrade(id, room);
            }
        }
        if let Some(agents) = self.agents.as_mut() {
            if req.path.starts_with(agent::PATH_PREFIX) {
                return agents.on_upgrade(id, req, peer);
            }
        }
        if let Some(exec) = self.exec.as_mut() {
            if exec.route_for(req.path).is_some() {
                return exec.on_upgrade(ctx, id, req, peer);
            }
        }
        if self.echo_paths.iter().any(|p| p == req.path) {
            Decision::accept()
        } else {
            Decision::Reject(Response::text(404, "no WebSocket endpoint at this path\n"))
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let kind = self.kind_of(id);
        self.open.opened(id, kind);
        if let Some(h) = self.hub_client(id) {
            h.on_open(ctx, id);
        } else if let Some(p) = self.proxied(id) {
            p.on_open(ctx, id);
        } else if let Some(a) = self.agents.as_mut().filter(|a| a.owns(id)) {
            a.on_open(ctx, id);
        } else if let Some(b) = self.broadcast.as_mut().filter(|b| b.owns(id)) {
            b.on_open(id);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if let Some(h) = self.hub_client(id) {
            return h.on_message(ctx, id, kind, data);
        }
        if !self.within_rate(ctx, id) {
            return;
        }
        if let Some(e) = self.exec.as_mut().filter(|e| e.owns(id)) {
            return e.on_message(ctx, id, data);
        }
        if let Some(a) = self.agents.as_mut().filter(|a| a.owns(id)) {
            return a.on_message(ctx, id, kind, data);
        }
        if let Some(b) = self.broadcast.as_mut().filter(|b| b.owns(id)) {
            return b.on_message(ctx, id, kind, data);
        }
        // Echo. A failed send is a closing or slow connection: the runtime has dealt with it.
        let _ = ctx.send(id, kind, data);
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
        let routed = self.hub_client(id).is_some()
            || self.exec.as_ref().is_some_and(|e| e.owns(id))
            || self.agents.as_ref().is_some_and(|a| a.owns(id))
            || self.broadcast.as_ref().is_some_and(|b| b.owns(id));
        if routed {
            return self.on_message(ctx, id, kind, &data);
        }
        if !self.within_rate(ctx, id) {
            return;
        }
        // Echo without copying the message.
        let _ = ctx.send_owned(id, kind, data);
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        // Agents' restart back-off is checked on the tick too.
        let agents = self.agents.as_ref().map(|_| Duration::from_millis(250));
        self.hub().and_then(Hub::tick_interval).or(agents)
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if let Some((_, h)) = self.hub.as_mut() {
            h.on_tick(ctx);
        }
        if let Some(a) = self.agents.as_mut() {
            a.on_tick(ctx);
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
        if let Some(e) = self.exec.as_mut().filter(|e| e.owns_process(id)) {
            e.on_process_output(ctx, id, stream, data);
        } else if let Some(a) = self.agents.as_mut() {
            a.on_process_output(ctx, id, stream, data);
        }
    }

    fn on_process_exit(&mut self, ctx: &mut Context<'_>, id: ProcId, status: ExitStatus) {
        if let Some(e) = self.exec.as_mut().filter(|e| e.owns_process(id)) {
            e.on_process_exit(ctx, id, status);
        } else if let Some(a) = self.agents.as_mut() {
            a.on_process_exit(ctx, id, status);
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
        let client = self.proxy.as_ref().is_some_and(|p| p.is_client(id));
        if client && fin && !self.within_rate(ctx, id) {
            return;
        }
        if client && self.buckets.get(&id).is_some_and(|&(_, closed)| closed) {
            return;
        }
        if let Some(p) = self.proxied(id) {
            p.on_message_piece(ctx, id, kind, data, fin);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        self.buckets.remove(&id);
        self.open.closed(id);
        if let Some(h) = self.hub_client(id) {
            h.on_close(id);
        }
        if let Some(e) = self.exec.as_mut() {
            e.on_close(ctx, id);
        }
        if let Some(a) = self.agents.as_mut() {
            a.on_close(id);
        }
        if let Some(b) = self.broadcast.as_mut() {
            b.on_close(id);
        }
        if let Some(p) = self.proxied(id) {
            p.on_close(ctx, id, code, reason);
        }
    }

    fn on_peer_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        if let Some(h) = self.hub_client(id) {
            h.on_peer_close(ctx, id, code, reason);
        }
        if let Some(p) = self.proxied(id) {
            p.on_peer_close(ctx, id, code, reason);
        }
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, id: ConnId, protocol: Option<&str>) {
        if let Some(p) = self.proxied(id) {
            p.on_connected(ctx, id, protocol);
        }
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, id: ConnId, error: &ConnectError) {
        if let Some(p) = self.proxied(id) {
            p.on_connect_failed(ctx, id, error);
        }
    }

    fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some((_, h)) = self.hub.as_mut() {
            h.on_drained(ctx, id);
        }
        if let Some(p) = self.proxied(id) {
            p.on_drained(ctx, id);
        }
        if let Some(e) = self.exec.as_mut() {
            e.on_drained(ctx, id);
        }
    }
}
