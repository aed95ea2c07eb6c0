//! `--broadcast PATH`: every message a client sends to PATH goes to every other client on PATH
//! (with `PATH=all`, to the sender too), text or binary as it was sent, and
//! `POST /api/broadcast/PATH` feeds the same clients from plain HTTP.
//!
//! A message is encoded as a frame once and that frame is shared by every receiver's queue (the
//! hub's fan-out path, `Context::broadcast`); with `=all`, consecutive messages to a path in one
//! batch of work reach each client as one queued piece (`Context::broadcast_set`). Everything
//! else is the runtime's and `App`'s, as on any endpoint: the access policy (checked before the
//! upgrade or request gets here), `--rate` per connection, and `--queue-cap`: a client that does
//! not read is closed as a slow reader (1008) and nobody else notices.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::info;
use crate::json::ObjectWriter;
use crate::proto::MessageKind;
use crate::server::{ConnId, Context, Decision, Request, Response};

/// Where the HTTP feed is served: `POST /api/broadcast/room` feeds `--broadcast /room`.
pub const API_PREFIX: &str = "/api/broadcast/";

/// One `--broadcast` value: `PATH`, or `PATH=all` for the sender to get its own messages too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPath {
    /// The request path, starting with `/`.
    pub path: String,
    /// Whether a client gets the messages it sends itself.
    pub to_sender: bool,
}

impl BroadcastPath {
    /// `PATH`, `PATH=others` (the same) or `PATH=all`.
    ///
    /// # Errors
    /// Any other option after `=`. (The path itself is checked as every flag's path is.)
    pub fn parse(v: &str) -> Result<Self, String> {
        let (path, to_sender) = match v.rsplit_once('=') {
            None => (v, false),
            Some((path, "others")) => (path, false),
            Some((path, "all")) => (path, true),
            Some((_, other)) => {
                return Err(format!("unknown option '{other}' (PATH, PATH=others or PATH=all)"));
            }
        };
        Ok(Self { path: path.to_string(), to_sender })
    }
}

/// One path's clients.
#[derive(Debug)]
struct Room {
    path: Box<str>,
    to_sender: bool,
    /// Open clients, in an `Rc` for `Context::broadcast_set` (changed with `Rc::make_mut`).
    members: Rc<BTreeSet<ConnId>>,
}

/// The broadcast paths and their clients.
#[derive(Debug)]
pub struct Broadcast {
    rooms: Vec<Room>,
    /// Each client's room, from its upgrade to its close.
    by_conn: HashMap<ConnId, usize>,
}

impl Broadcast {
    /// Serves `paths` (a path given twice is served once, as its first).
    pub fn new(paths: &[BroadcastPath]) -> Self {
        let mut rooms: Vec<Room> = Vec::new();
        for p in paths {
            if !rooms.iter().any(|r| *r.path == *p.path) {
                rooms.push(Room {
                    path: p.path.as_str().into(),
                    to_sender: p.to_sender,
                    members: Rc::default(),
                });
            }
        }
        Self { rooms, by_conn: HashMap::new() }
    }

    /// The room served at `path`, if it is a broadcast path.
    pub fn room_for(&self, path: &str) -> Option<usize> {
        self.rooms.iter().position(|r| *r.path == *path)
    }

    /// Whether a connection is one of this app's.
    pub fn owns(&self, id: ConnId) -> bool {
        self.by_conn.contains_key(&id)
    }

    /// An upgrade to room `room` (the access policy let it in).
    pub fn on_upgrade(&mut self, id: ConnId, room: usize) -> Decision {
        self.by_conn.insert(id, room);
        Decision::accept()
    }

    /// The client is open: it receives from now on.
    pub fn on_open(&mut self, id: ConnId) {
        if let Some(r) = self.by_conn.get(&id).and_then(|&i| self.rooms.get_mut(i)) {
            // Copies the set only if a gathered broadcast still holds it.
            Rc::make_mut(&mut r.members).insert(id);
        }
    }

    /// A message from a client: to the others on its path (and to itself with `=all`).
    pub fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
    ) {
        // Once this end has sent its close frame (slow reader, rate, shutdown), what the client
        // still sends (RFC 6455 §5.5.1 lets it arrive) is not passed on.
        if !ctx.is_open(id) {
            return;
        }
        let Some(r) = self.by_conn.get(&id).and_then(|&i| self.rooms.get(i)) else { return };
        if r.to_sender {
            ctx.broadcast_set(&r.members, kind, data);
        } else if r.members.len() > 1 {
            ctx.broadcast(r.members.iter().copied().filter(|&m| m != id), kind, data);
        }
    }

    /// The client is gone.
    pub fn on_close(&mut self, id: ConnId) {
        if let Some(r) = self.by_conn.remove(&id).and_then(|i| self.rooms.get_mut(i)) {
            Rc::make_mut(&mut r.members).remove(&id);
        }
    }

    /// `POST /api/broadcast/PATH` (the access policy let it through): the body is one message
    /// to every client on `/PATH`, binary if the `Content-Type` is `application/octet-stream`,
    /// else text; answered `{"delivered": N}`, the clients it was queued to. Its size is bounded
    /// by the runtime (`--max-publish-size`, 413 beyond). `refusals` takes a token from the
    /// client address's `--rate` bucket: 0 if it had one, else how many times in a row it was
    /// refused.
    pub fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Request<'_>,
        refusals: impl FnOnce() -> u32,
    ) -> Response {
        if !req.path.starts_with(API_PREFIX) {
            return error(404, "not_found", "not found");
        }
        if req.method != "POST" {
            let mut r = Response::text(405, "method not allowed\n");
            r.headers.push(("Allow".into(), b"POST".to_vec()));
            return r;
        }
        // Every POST takes a token, a malformed one too, as an HTTP publish does.
        match refusals() {
            0 => {}
            strikes => {
                if strikes == 1 {
                    info!("broadcast: http broadcasts over the rate", path = req.path);
                }
                let mut r = error(429, "rate_limited", "too many broadcasts; slow down");
                // RFC 9110 §10.2.3: whole seconds; a token comes back within one at any --rate.
                r.headers.push(("Retry-After".into(), b"1".to_vec()));
                return r;
            }
        }
        let path = &req.path[API_PREFIX.len() - 1..];
        let Some(room) = self.rooms.iter().find(|r| *r.path == *path) else {
            return error(404, "not_found", &format!("no broadcast path {path}"));
        };
        let binary = req.header("content-type").is_some_and(|t| {
            let media = t.split(|&b| b == b';').next().unwrap_or_default();
            media.trim_ascii().eq_ignore_ascii_case(b"application/octet-stream")
        });
        let kind = if binary { MessageKind::Binary } else { MessageKind::Text };
        // RFC 6455 §8.1: a text message is UTF-8.
        if !binary && std::str::from_utf8(req.body).is_err() {
            info!("broadcast: http body is not UTF-8", path = path);
            return error(
                400,
                "invalid_params",
                "a text message must be UTF-8; send binary as Content-Type: application/octet-stream",
            );
        }
        let n = ctx.broadcast(room.members.iter().copied(), kind, req.body);
        let mut out = String::with_capacity(24);
        let mut w = ObjectWriter::new(&mut out);
        w.u64("delivered", n as u64);
        w.finish();
        Response::with_type(200, "application/json", out.into_bytes())
    }

    /// Clients connected to broadcast paths (from their upgrade to their close).
    pub fn connections(&self) -> usize {
        self.by_conn.len()
    }
}

/// An HTTP error in the API's JSON form.
fn error(status: u16, code: &str, message: &str) -> Response {
    Response::with_type(status, "application/json", crate::json::error_object(code, message).into())
}

#[cfg(test)]
mod tests {
    use super::BroadcastPath;

    #[test]
    fn paths_and_their_option() {
        let p = |v| BroadcastPath::parse(v);
        assert_eq!(p("/room"), Ok(BroadcastPath { path: "/room".into(), to_sender: false }));
        assert_eq!(p("/room=others"), Ok(BroadcastPath { path: "/room".into(), to_sender: false }));
        assert_eq!(p("/a=b=all"), Ok(BroadcastPath { path: "/a=b".into(), to_sender: true }));
        assert!(p("/room=me").unwrap_err().contains("unknown option 'me'"));
    }
}
