//! What the `weir` binary serves: WebSocket echo on the configured paths and `GET /healthz`.
//! (The hub, the HTTP API and the console join here as they land.)

use std::net::SocketAddr;

use crate::proto::MessageKind;
use crate::proto::handshake::UpgradeRequest;
use crate::proto::http::Request;
use crate::server::{ConnId, Context, Decision, Handler, Response};

/// The binary's routes.
#[derive(Debug, Clone)]
pub struct App {
    echo_paths: Vec<String>,
}

impl App {
    /// Echo on each of `echo_paths`.
    pub fn new(echo_paths: Vec<String>) -> Self {
        Self { echo_paths }
    }
}

impl Handler for App {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_, '_>,
        _peer: SocketAddr,
    ) -> Response {
        match (req.method, req.path()) {
            ("GET" | "HEAD", "/healthz") if ctx.draining() => Response::text(503, "draining\n"),
            ("GET" | "HEAD", "/healthz") => Response::text(200, "ok\n"),
            (_, "/healthz") => {
                let mut r = Response::text(405, "method not allowed\n");
                r.headers.push(("Allow".into(), b"GET, HEAD".to_vec()));
                r
            }
            (_, path) if self.echo_paths.iter().any(|p| p == path) => {
                Response::text(426, "this is a WebSocket endpoint\n")
            }
            _ => Response::text(404, "not found\n"),
        }
    }

    fn on_upgrade(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &UpgradeRequest<'_, '_>,
        _peer: SocketAddr,
    ) -> Decision {
        if self.echo_paths.iter().any(|p| p == req.path) {
            Decision::accept()
        } else {
            Decision::Reject(Response::text(404, "no WebSocket endpoint at this path\n"))
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        // A failed send is a closing or slow connection: the runtime has dealt with it.
        let _ = ctx.send(id, kind, data);
    }
}
