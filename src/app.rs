//! What the `weir` binary serves: the hub at `/ws`, WebSocket echo on the configured paths, the
//! reverse-proxy routes, and `GET /healthz`. (The HTTP API and the console join here.)

use std::net::SocketAddr;

use crate::http::Api;
use crate::hub::Hub;
use crate::proto::handshake::UpgradeRequest;
use crate::proto::http::Request;
use crate::proto::{CloseCode, MessageKind};
use crate::proxy::Proxy;
use crate::server::{ConnId, ConnectError, Context, Decision, Handler, Response};

/// The binary's routes.
#[derive(Debug)]
pub struct App {
    echo_paths: Vec<String>,
    proxy: Option<Proxy>,
    hub: Option<(String, Hub)>,
    api: Api,
}

impl App {
    /// Echo on each of `echo_paths`.
    pub fn new(echo_paths: Vec<String>) -> Self {
        Self { echo_paths, proxy: None, hub: None, api: Api::default() }
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
        _peer: SocketAddr,
    ) -> Response {
        if self.echo_paths.iter().any(|p| p == req.path()) {
            return Response::text(426, "this is a WebSocket endpoint\n");
        }
        let hub = self.hub.as_mut().map(|(_, h)| h);
        self.api.serve(ctx, id, req, body, hub, self.proxy.as_ref())
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
        if let Some(proxy) = self.proxy.as_mut() {
            if let Some(route) = proxy.route_for(req.path) {
                return proxy.on_upgrade(ctx, id, route, req, peer);
            }
        }
        if let Some((path, hub)) = self.hub.as_mut() {
            if req.path == path.as_str() {
                return match hub.on_upgrade(ctx, id, req, peer) {
                    Ok(()) => Decision::accept(),
                    Err(r) => Decision::Reject(r),
                };
            }
        }
        if self.echo_paths.iter().any(|p| p == req.path) {
            Decision::accept()
        } else {
            Decision::Reject(Response::text(404, "no WebSocket endpoint at this path\n"))
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if let Some(h) = self.hub_client(id) {
            h.on_open(ctx, id);
        } else if let Some(p) = self.proxied(id) {
            p.on_open(ctx, id);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if let Some(h) = self.hub_client(id) {
            return h.on_message(ctx, id, kind, data);
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
        if let Some(h) = self.hub_client(id) {
            return h.on_message(ctx, id, kind, &data);
        }
        // Echo without copying the message.
        let _ = ctx.send_owned(id, kind, data);
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.hub().and_then(Hub::tick_interval)
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if let Some((_, h)) = self.hub.as_mut() {
            h.on_tick(ctx);
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
        if let Some(p) = self.proxied(id) {
            p.on_message_piece(ctx, id, kind, data, fin);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
        if let Some(h) = self.hub_client(id) {
            h.on_close(id);
        }
        if let Some(p) = self.proxied(id) {
            p.on_close(ctx, id, code, reason);
        }
    }

    fn on_peer_close(&mut self, ctx: &mut Context<'_>, id: ConnId, code: CloseCode, reason: &str) {
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
        if let Some(p) = self.proxied(id) {
            p.on_drained(ctx, id);
        }
    }
}
