//! The checkpoint service: sessions of checkpoints behind a JSON-RPC-style WebSocket API,
//! kept in an append-only file so that they survive a restart.
//!
//! A command `{"id":ID,"method":M,"params":{...}}` is answered `{"id":ID,"success":true,
//! "result":{...}}` or `{"id":ID,"success":false,"error":WHY}`; a subscriber of a session gets
//! `{"event_type":"checkpoint_created","data":{"checkpoint_id","session_id","timestamp"}}`.
//! Methods: `authenticate {token}`, `create_session {name}`, `checkpoint {session_id, label?,
//! data?}`, `list_checkpoints {session_id}`, `subscribe {session_id}`, `metrics`.
//!
//! Run `CHECKPOINT_TOKEN=secret cargo run --example checkpoints -- 127.0.0.1:8080 cp.jsonl`
//! (no token: no authentication; `CHECKPOINT_MAX_CONNECTIONS`, default 100).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use weir::access::constant_time_eq;
use weir::json::{self, Limits, Value};
use weir::proto::{CloseCode, MessageKind};
use weir::server::{Config, ConnId, Context, Decision, Handler, Request, Response, Server};

/// A connection's data, which the runtime keeps (`Context::data`): whether it gave the token.
type Ctx<'a> = Context<'a, bool>;

/// Bounds on a command (and on a record of the file).
const LIMITS: Limits = Limits { max_depth: 32, max_len: 64 << 10 };
/// The largest record of a checkpoint (its data, label and ids), as JSON text.
const MAX_RECORD: usize = 16 << 10;
/// The most checkpoints of a session: a list of them (16 MiB at most) fits in one answer.
const MAX_PER_SESSION: usize = 1_000;
/// The largest store, file and memory, in bytes of records.
const MAX_STORE: u64 = 64 << 20;

#[derive(Default)]
struct Session {
    /// The records of its checkpoints, as written to the file.
    checkpoints: Vec<String>,
    subscribers: BTreeSet<ConnId>,
}

struct Service {
    file: File,
    /// The file's length after its last whole record.
    len: u64,
    sessions: BTreeMap<String, Session>,
    checkpoints: u64,
    token: Option<String>,
    commands: u64,
}

impl Service {
    /// Opens the file and replays its records. A last record without its newline was torn by a
    /// crash in the middle of an append: it is cut off. Any other damage is an error.
    fn open(path: &str, token: Option<String>) -> io::Result<Self> {
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            weir::warn!("torn last record ignored", file = path, bytes = text.len() - whole);
            file.set_len(whole as u64)?;
        }
        let (sessions, len) = (BTreeMap::new(), whole as u64);
        let mut s = Self { file, len, sessions, checkpoints: 0, token, commands: 0 };
        for (n, line) in text[..whole].split_inclusive(|&b| b == b'\n').enumerate() {
            if let Err(e) = s.apply(line) {
                return Err(io::Error::other(format!("{path}: line {}: {e}", n + 1)));
            }
        }
        Ok(s)
    }

    /// Applies a record (from the file, or just written to it).
    fn apply(&mut self, line: &[u8]) -> Result<(), String> {
        let record = json::parse_with(line, &LIMITS).map_err(|e| e.to_string())?;
        if let Some(id) = record.get("session").and_then(Value::as_str) {
            self.sessions.insert(id.to_owned(), Session::default());
            return Ok(());
        }
        let session = record.get("session_id").and_then(Value::as_str).unwrap_or_default();
        let Some(s) = self.sessions.get_mut(session) else { return Err("not a record".into()) };
        s.checkpoints.push(String::from_utf8_lossy(line).trim_end().to_owned());
        self.checkpoints += 1;
        Ok(())
    }

    /// Appends a record and syncs it to disk before it counts (and before it is answered).
    fn commit(&mut self, record: &str) -> Result<(), String> {
        let line = format!("{record}\n");
        if self.len + line.len() as u64 > MAX_STORE {
            return Err("the store is full (64 MiB)".into());
        }
        let written = self.file.write_all(line.as_bytes()).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len); // No half record left for the next append.
            weir::error!("append failed", error = e);
            return Err(format!("storage: {e}"));
        }
        self.len += line.len() as u64;
        self.apply(record.as_bytes())
    }

    fn call(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, cmd: &Value) -> Result<String, String> {
        let method = cmd.get("method").and_then(Value::as_str).unwrap_or_default();
        let params = cmd.get("params").unwrap_or(&NULL);
        let param =
            |k: &str| params.get(k).and_then(Value::as_str).ok_or(format!("params.{k}: a string"));
        if method != "authenticate" && self.token.is_some() && !ctx.data(conn).is_some_and(|a| *a) {
            return Err("authenticate first".into());
        }
        let session = param("session_id").unwrap_or_default();
        let no_session = || format!("no session {session:?} (params.session_id)");
        Ok(match method {
            "authenticate" => {
                let given = param("token").unwrap_or_default().as_bytes();
                if !self.token.as_ref().is_none_or(|t| constant_time_eq(t.as_bytes(), given)) {
                    return Err("invalid token".into());
                }
                *ctx.data(conn).ok_or("gone")? = true;
                r#"{"authenticated":true}"#.into()
            }
            "create_session" => {
                let (name, id) = (param("name")?, format!("s-{}", self.sessions.len() + 1));
                self.commit(&json::object(|w| w.str("session", &id).str("name", name)))?;
                json::object(|w| w.str("session_id", &id).str("name", name))
            }
            "checkpoint" => {
                let s = self.sessions.get(session).ok_or_else(no_session)?;
                if s.checkpoints.len() >= MAX_PER_SESSION {
                    return Err(format!("session {session:?} is full (1,000 checkpoints)"));
                }
                let label = params.get("label").and_then(Value::as_str).unwrap_or_default();
                let id = format!("cp-{}", self.checkpoints + 1);
                let now = weir::log::rfc3339(std::time::SystemTime::now());
                let result = json::object(|w| {
                    w.str("checkpoint_id", &id).str("session_id", session).str("timestamp", &now)
                });
                let data = params.get("data").unwrap_or(&NULL);
                let record = json::object(|w| {
                    w.str("checkpoint_id", &id).str("session_id", session).str("timestamp", &now);
                    w.str("label", label).value("data", data)
                });
                if record.len() > MAX_RECORD {
                    return Err("a checkpoint is at most 16 KiB".into());
                }
                self.commit(&record)?;
                let e = json::object(|w| {
                    w.str("event_type", "checkpoint_created").raw("data", &result)
                });
                let subscribers = self.sessions[session].subscribers.iter().copied();
                ctx.broadcast(subscribers, MessageKind::Text, e.as_bytes());
                result
            }
            "list_checkpoints" => {
                let s = self.sessions.get(session).ok_or_else(no_session)?;
                let list = format!("[{}]", s.checkpoints.join(","));
                json::object(|w| w.str("session_id", session).raw("checkpoints", &list))
            }
            "subscribe" => {
                self.sessions.get_mut(session).ok_or_else(no_session)?.subscribers.insert(conn);
                json::object(|w| w.str("subscribed", session))
            }
            "metrics" => json::object(|w| {
                w.u64("connections", ctx.stats().connections_open).u64("commands", self.commands);
                w.u64("sessions", self.sessions.len() as u64).u64("checkpoints", self.checkpoints)
            }),
            _ => return Err(format!("unknown method: {method:?}")),
        })
    }
}

static NULL: Value = Value::Null;

impl Handler<bool> for Service {
    fn on_upgrade(&mut self, _: &mut Ctx<'_>, req: &Request<'_>) -> Decision {
        match req.path {
            "/" => Decision::accept(),
            _ => Decision::Reject(Response::text(404, "not found\n")),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, _: MessageKind, data: &[u8]) {
        self.commands += 1;
        let cmd = json::parse_with(data, &LIMITS);
        let answer = cmd.as_ref().map_err(|e| e.to_string()).and_then(|c| self.call(ctx, id, c));
        if let Err(why) = &answer {
            weir::info!("command refused", conn = id.as_u64(), error = why);
        }
        let out = json::object(|w| {
            let cmd_id = cmd.as_ref().ok().and_then(|c| c.get("id")).unwrap_or(&NULL);
            w.value("id", cmd_id).bool("success", answer.is_ok());
            match &answer {
                Ok(result) => w.raw("result", result),
                Err(why) => w.str("error", why),
            }
        });
        let _ = ctx.send(id, MessageKind::Text, out.as_bytes());
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, id: ConnId, _: CloseCode, _: &str) {
        for s in self.sessions.values_mut() {
            s.subscribers.remove(&id);
        }
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let path = args.next().unwrap_or_else(|| "checkpoints.jsonl".into());
    let max = std::env::var("CHECKPOINT_MAX_CONNECTIONS").map_or(Ok(100), |v| v.parse());
    let mut config = Config { handle_signals: true, ..Config::default() };
    config.listen = vec![addr.parse().map_err(io::Error::other)?];
    config.max_connections = max.map_err(io::Error::other)?;
    let service = Service::open(&path, std::env::var("CHECKPOINT_TOKEN").ok())?;
    Server::bind(config, service)?.run()
}
