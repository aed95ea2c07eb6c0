//! Dashboard events: a dashboard's live feed (sessions, agents, cron runs) over `/ws`, behind
//! HTTP Basic authentication on the handshake.
//!
//! A client that passes Basic auth gets `{"type":"auth.success","payload":{"user":U,
//! "clientId":N},"timestamp":T}`; its `{"type":"ping"}` is answered `{"type":"pong",
//! "timestamp":T}`, anything else `{"type":"error","payload":{"message":WHY}}`. `POST
//! /api/events` (Basic auth too) with `{"type":T,"payload":P}` sends `{"type":T,"payload":P,
//! "timestamp":...}` to every client. A ping goes out after 30 s of silence and a client that has
//! not answered within 60 s is dropped (`DASHBOARD_PING_MS`, `DASHBOARD_TIMEOUT_MS`). SIGTERM
//! or SIGINT closes every client with 1001, then exits.
//!
//! Built with `--features tls` and given `DASHBOARD_TLS_CERT` and `DASHBOARD_TLS_KEY` (PEM
//! files), it serves HTTPS and WSS only, as the original did on its HTTPS server; without them,
//! plain HTTP. Run `DASHBOARD_USER=admin DASHBOARD_PASSWORD=secret cargo run --example
//! dashboard_events -- 127.0.0.1:3001`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use weir::access::Auth;
use weir::json::{self, Limits, Value};
use weir::log::rfc3339;
use weir::proto::{CloseCode, MessageKind};
use weir::server::{Config, ConnId, Context, Decision, Handler, Request, Response, Server};

const LIMITS: Limits = Limits { max_depth: 32, max_len: 64 << 10 };

struct Dashboard {
    auth: Auth,
    user: String,
    clients: BTreeSet<ConnId>,
}

/// `{"type":"error","payload":{"message":WHY}}`.
fn error(why: &str) -> String {
    json::object(|w| {
        w.str("type", "error").object("payload").str("message", why);
        w
    })
}

impl Handler for Dashboard {
    fn on_request(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Response {
        let body = req.body;
        if (req.method, req.path) != ("POST", "/api/events") {
            return Response::text(404, "not found\n");
        }
        if let Err(refusal) = self.auth.check_request(req) {
            return refusal.text_response();
        }
        let parsed = json::parse_and_find_raw(body, &["payload"], &LIMITS);
        let event = match &parsed {
            Ok((v, payload)) => match v.get("type").and_then(Value::as_str) {
                Some(kind) => json::object(|w| {
                    w.str("type", kind).raw("payload", payload.unwrap_or("null").trim());
                    w.str("timestamp", &rfc3339(SystemTime::now()))
                }),
                None => return Response::text(400, "an event is {\"type\":T,\"payload\":P}\n"),
            },
            Err(e) => return Response::text(400, format!("{e}\n")),
        };
        let n = ctx.broadcast(self.clients.iter().copied(), MessageKind::Text, event.as_bytes());
        Response::with_type(202, "application/json", format!("{{\"delivered\":{n}}}").into())
    }

    fn on_upgrade(&mut self, _: &mut Context<'_>, req: &Request<'_>) -> Decision {
        if req.path != "/ws" {
            return Decision::Reject(Response::text(404, "not found\n"));
        }
        // Basic credentials on the handshake (RFC 7617); a 401 carries the challenge.
        match self.auth.check_upgrade(req, false) {
            Ok(_) => Decision::accept(),
            Err(refusal) => Decision::Reject(refusal.text_response()),
        }
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        self.clients.insert(id);
        let hello = json::object(|w| {
            w.str("type", "auth.success")
                .object("payload")
                .str("user", &self.user)
                .u64("clientId", id.as_u64());
            w.str("timestamp", &rfc3339(SystemTime::now()))
        });
        let _ = ctx.send(id, MessageKind::Text, hello.as_bytes());
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, _: MessageKind, data: &[u8]) {
        let reply = match json::parse_with(data, &LIMITS) {
            Ok(v) if v.get("type").and_then(Value::as_str) == Some("ping") => {
                let now = rfc3339(SystemTime::now());
                json::object(|w| w.str("type", "pong").str("timestamp", &now))
            }
            Ok(_) => error("only {\"type\":\"ping\"} is accepted from a client"),
            Err(e) => error(&e.to_string()),
        };
        let _ = ctx.send(id, MessageKind::Text, reply.as_bytes());
    }

    fn on_close(&mut self, _: &mut Context<'_>, id: ConnId, _: CloseCode, _: &str) {
        self.clients.remove(&id);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3001".into());
    let var = |name: &str| {
        std::env::var(name).map_err(|_| std::io::Error::other(format!("{name} is not set")))
    };
    let (user, password) = (var("DASHBOARD_USER")?, var("DASHBOARD_PASSWORD")?);
    let ms = |name: &str, default| var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (ping, timeout) = (ms("DASHBOARD_PING_MS", 30_000), ms("DASHBOARD_TIMEOUT_MS", 60_000));
    let mut config = Config {
        listen: vec![addr.parse().map_err(std::io::Error::other)?],
        handle_signals: true,
        ..Config::default()
    };
    // HTTPS and WSS only when given a certificate (a build without `tls` refuses to start).
    let pem = |name: &str| var(name).ok().map(std::path::PathBuf::from);
    (config.tls_cert, config.tls_key) = (pem("DASHBOARD_TLS_CERT"), pem("DASHBOARD_TLS_KEY"));
    if config.tls_cert.is_some() || config.tls_key.is_some() {
        config.listen_tls = std::mem::take(&mut config.listen);
    }
    // The `ws` pattern: a ping every 30 s, a client silent past 60 s terminated.
    config.ws.ping_interval = Some(Duration::from_millis(ping));
    config.ws.pong_timeout = Duration::from_millis(timeout.saturating_sub(ping).max(1));
    let auth = Auth { basic: Some(format!("{user}:{password}")), ..Auth::default() };
    Server::bind(config, Dashboard { auth, user, clients: BTreeSet::new() })?.run()
}
