//! The event server: a REST server's event stream, served to WebSocket and server-sent-event
//! clients alike, with the WebSocket made two-way.
//!
//! - `GET /api/v1/events`: server-sent events; `GET /api/v1/ws`: the WebSocket.
//! - `POST /api/v1/events` (a JSON body): a server event, fanned out to every client of either
//!   kind as `{"type":"server_event","seq":N,"data":BODY}`.
//! - A WebSocket client sends `{"type":T,"id":ID,"payload":P}` (nothing else, bounded sizes):
//!   it gets `{"type":"ack","id":ID}`, and every client gets
//!   `{"type":"client_event","client":N,"data":MESSAGE}`. Anything else gets
//!   `{"type":"error","id":ID|null,"error":WHY}` and goes to nobody.
//!
//! Run `cargo run --example event_server -- 127.0.0.1:5052`; docs/examples.md says more.

use std::collections::BTreeSet;
use std::rc::Rc;

use weir::json::{self, Limits, Value};
use weir::proto::{CloseCode, MessageKind};
use weir::server::{Config, ConnId, Context, Decision, Handler, Request, Response, Server};

/// The largest WebSocket message (1009 past it, before it is buffered).
const MAX_MESSAGE: usize = 64 << 10;
/// The longest `type`, in bytes.
const MAX_TYPE: usize = 64;
/// The longest string `id`, in bytes.
const MAX_ID: usize = 128;
/// The longest `payload`, as JSON text.
const MAX_PAYLOAD: usize = 16 << 10;
/// The deepest nesting of a message.
const LIMITS: Limits = Limits { max_depth: 32, max_len: MAX_MESSAGE };

#[derive(Default)]
struct Events {
    ws: BTreeSet<ConnId>,
    sse: BTreeSet<ConnId>,
    seq: u64,
}

impl Events {
    /// One event to every client: the same JSON as a WebSocket message and as an SSE block.
    fn fan_out(&mut self, ctx: &mut Context<'_>, event: &str) -> usize {
        self.seq += 1;
        // A line break ends an SSE data line; in JSON, outside strings, it is only whitespace.
        let data = event.replace(['\r', '\n'], " ");
        let block: Rc<[u8]> = format!("id: {}\ndata: {data}\n\n", self.seq).into_bytes().into();
        ctx.broadcast(self.ws.iter().copied(), MessageKind::Text, event.as_bytes())
            + ctx.stream_broadcast(self.sse.iter().copied(), &block)
    }
}

/// Checks a message against the schema: the JSON text of its `id` (to ack), or why not, with
/// the id when it has a usable one.
fn validate(data: &[u8]) -> Result<String, (Option<String>, String)> {
    let (msg, payload) =
        json::parse_and_find_raw(data, &["payload"], &LIMITS).map_err(|e| (None, e.to_string()))?;
    let short = match msg.get("id") {
        Some(Value::String(s)) => s.len() <= MAX_ID,
        Some(Value::Number(n)) => n.as_i64().is_some(),
        _ => true,
    };
    let id = json::command_id(&msg).ok().flatten().filter(|_| short);
    let fail = |why: &str| Err((id.clone(), why.to_owned()));
    let Some(members) = msg.as_object() else { return fail("a message is an object") };
    for (i, (key, _)) in members.iter().enumerate() {
        if !["type", "id", "payload"].contains(&key.as_str()) {
            return fail(&format!("unknown member {key:?}: type, id and payload only"));
        }
        if members[..i].iter().any(|(k, _)| k == key) {
            return fail(&format!("{key:?} given twice"));
        }
    }
    match msg.get("type").and_then(Value::as_str) {
        Some(t) if !t.is_empty() && t.len() <= MAX_TYPE => {}
        _ => return fail("type must be a string of 1 to 64 bytes"),
    }
    let Some(id) = id.clone() else {
        return fail("id must be a string of at most 128 bytes or a 64-bit integer");
    };
    match payload {
        None => fail("payload is missing"),
        Some(p) if p.len() > MAX_PAYLOAD => fail("payload is longer than 16 KiB"),
        Some(_) => Ok(id),
    }
}

impl Handler for Events {
    fn on_request(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Response {
        let id = req.id;
        let body = req.body;
        match (req.method, req.path) {
            ("GET", "/api/v1/events") => {
                self.sse.insert(id);
                Response::streaming(200, "text/event-stream")
            }
            ("POST", "/api/v1/events") => {
                if let Err(e) = json::parse_with(body, &LIMITS) {
                    return Response::text(400, format!("{e}\n"));
                }
                // Valid JSON is UTF-8 (RFC 8259 §8.1).
                let data = std::str::from_utf8(body).unwrap_or_default();
                let seq = self.seq + 1;
                let event = json::object(|w| {
                    w.str("type", "server_event").u64("seq", seq).raw("data", data.trim())
                });
                let n = self.fan_out(ctx, &event);
                let json = format!("{{\"delivered\":{n}}}").into_bytes();
                Response::with_type(202, "application/json", json)
            }
            _ => Response::text(404, "not found\n"),
        }
    }

    fn on_upgrade(&mut self, _: &mut Context<'_>, req: &Request<'_>) -> Decision {
        match req.path {
            "/api/v1/ws" => Decision::accept(),
            _ => Decision::Reject(Response::text(404, "not found\n")),
        }
    }

    fn on_open(&mut self, _: &mut Context<'_>, id: ConnId) {
        self.ws.insert(id);
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if kind == MessageKind::Binary {
            // RFC 6455 §7.4.1: 1003, a type of data the endpoint cannot accept.
            return ctx.close(id, CloseCode::UNSUPPORTED_DATA, "JSON text only");
        }
        match validate(data) {
            Ok(msg_id) => {
                let ack = json::object(|w| w.str("type", "ack").raw("id", &msg_id));
                let _ = ctx.send(id, MessageKind::Text, ack.as_bytes());
                // A text message is UTF-8 (the runtime checked it: RFC 6455 §8.1).
                let text = std::str::from_utf8(data).unwrap_or_default();
                let event = json::object(|w| {
                    w.str("type", "client_event")
                        .u64("client", id.as_u64())
                        .raw("data", text.trim())
                });
                self.fan_out(ctx, &event);
            }
            Err((msg_id, why)) => {
                weir::info!("bad message", conn = id.as_u64(), error = why);
                let msg_id = msg_id.as_deref().unwrap_or("null");
                let error =
                    json::object(|w| w.str("type", "error").raw("id", msg_id).str("error", &why));
                let _ = ctx.send(id, MessageKind::Text, error.as_bytes());
            }
        }
    }

    fn on_close(&mut self, _: &mut Context<'_>, id: ConnId, _: CloseCode, _: &str) {
        self.ws.remove(&id);
    }

    fn on_stream_closed(&mut self, _: &mut Context<'_>, id: ConnId) {
        self.sse.remove(&id);
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5052".into());
    let mut config = Config {
        listen: vec![addr.parse().map_err(std::io::Error::other)?],
        handle_signals: true,
        max_body_size: MAX_MESSAGE,
        ..Config::default()
    };
    config.ws.max_message_size = MAX_MESSAGE as u64;
    Server::bind(config, Events::default())?.run()
}
