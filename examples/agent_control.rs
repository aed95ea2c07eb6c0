//! Agent control: a dashboard steers running agent processes over `/ws/agents/:name`.
//!
//! A client gets `{"type":"connected","agent":NAME}`, then sends `{"type":"command","command":C,
//! "request_id":R,"data":{...}}` for `get_state`, `pause` (SIGSTOP), `resume` (SIGCONT), `kill`
//! (SIGKILL) and `send_input` (`data.input` to the agent's stdin), answered `{"type":"response",
//! "request_id":R,...}` or `{"type":"error","request_id":R,"error":WHY}`. Every client of an agent
//! gets its `output` and `status` changes. `GET /api/ws/stats` counts the connections. A ping after
//! 54 s of silence, and 60 s in all for its pong (`AGENT_HEARTBEAT_MS`, `AGENT_PONG_WAIT_MS`).
//!
//! Run `cargo run --example agent_control -- 127.0.0.1:8151 'ticker=sh -c "while :; do date;
//! sleep 1; done"'`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::time::Duration;

use weir::json::{self, Limits, Value};
use weir::proto::{CloseCode, MessageKind};
use weir::server::Stream;
use weir::server::words::split_command;
use weir::server::{Config, ConnId, Decision, Handler, ProcId, Request, Response, Server, Signal};

/// A connection's data, which the runtime keeps (`Context::data`): the name of its agent.
type Ctx<'a> = weir::server::Context<'a, Rc<str>>;

#[derive(Default)]
struct Agent {
    command: (String, Vec<String>),
    proc: Option<ProcId>,
    status: &'static str,
    started_at: String,
    exit: Option<String>,
    clients: BTreeSet<ConnId>,
}

#[derive(Default)]
struct Control {
    agents: BTreeMap<String, Agent>,
}

impl Agent {
    /// `{"type":KIND,"agent":NAME,...}` to every client of the agent.
    fn tell(&self, ctx: &mut Ctx<'_>, name: &str, kind: &str, data: &str) {
        let msg = json::object(|w| w.str("type", kind).str("agent", name).raw("data", data));
        ctx.broadcast(self.clients.iter().copied(), MessageKind::Text, msg.as_bytes());
    }

    fn state(&self, ctx: &Ctx<'_>, name: &str) -> String {
        json::object(|w| {
            w.str("name", name).str("status", self.status).str("started_at", &self.started_at);
            if let Some(pid) = self.proc.and_then(|p| ctx.process_pid(p)) {
                w.u64("pid", pid.into());
            }
            w.value("exit", &self.exit.as_deref().map_or(Value::Null, Value::from))
        })
    }

    /// Runs a command; the answer's `data`, or why not.
    fn run(&mut self, ctx: &mut Ctx<'_>, name: &str, msg: &Value) -> Result<String, String> {
        if msg.get("type").and_then(Value::as_str) != Some("command") {
            return Err("expected {\"type\":\"command\",\"command\":...}".into());
        }
        let command = msg.get("command").and_then(Value::as_str).unwrap_or_default();
        let running = || format!("agent {name:?} is not running ({})", self.status);
        let (signal, status) = match command {
            "get_state" => return Ok(self.state(ctx, name)),
            "pause" => (Signal::Stop, "paused"),
            "resume" => (Signal::Cont, "running"),
            "kill" => (Signal::Kill, "killed"),
            "send_input" => {
                let input = msg.get("data").and_then(|d| d.get("input")).and_then(Value::as_str);
                let input = input.ok_or("data.input must be a string")?;
                let proc = self.proc.ok_or_else(running)?;
                ctx.process_write(proc, input.as_bytes()).map_err(|e| e.to_string())?;
                return Ok(format!("{{\"written\":{}}}", input.len()));
            }
            _ => return Err(format!("unknown command {command:?}")),
        };
        let proc = self.proc.ok_or_else(running)?;
        ctx.process_signal(proc, signal).map_err(|e| e.to_string())?;
        let data = json::object(|w| w.str("status", status));
        if status != "killed" {
            self.status = status;
            self.tell(ctx, name, "status", &data);
        }
        Ok(data)
    }
}

impl Handler<Rc<str>> for Control {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let now = weir::log::rfc3339(std::time::SystemTime::now());
        for (name, a) in &mut self.agents {
            let mut cmd = Command::new(&a.command.0);
            cmd.args(&a.command.1);
            match ctx.spawn(cmd) {
                Ok(p) => (a.proc, a.status, a.started_at) = (Some(p), "running", now.clone()),
                Err(e) => weir::error!("agent did not start", agent = name, error = e),
            }
        }
    }

    fn on_request(&mut self, _: &mut Ctx<'_>, req: &Request<'_>) -> Response {
        if (req.method, req.path) != ("GET", "/api/ws/stats") {
            return Response::text(404, "not found\n");
        }
        let body = json::object(|w| {
            let total = self.agents.values().map(|a| a.clients.len() as u64).sum();
            let mut agents = w.u64("total_connections", total).object("agents");
            self.agents
                .iter()
                .fold(&mut agents, |o, (name, a)| o.u64(name, a.clients.len() as u64));
            drop(agents);
            w
        });
        Response::with_type(200, "application/json", body.into_bytes())
    }

    fn on_upgrade(&mut self, ctx: &mut Ctx<'_>, req: &Request<'_>) -> Decision {
        let name = req.path.strip_prefix("/ws/agents/").unwrap_or_default();
        let (Some(agent), Some(data)) = (self.agents.get_mut(name), ctx.data(req.id)) else {
            return Decision::Reject(Response::text(404, "no such agent\n"));
        };
        // A client of the agent from here: `on_open` follows an accept at once.
        agent.clients.insert(req.id);
        *data = Rc::from(name);
        Decision::accept()
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        let Some(name) = ctx.data(id).cloned() else { return };
        let hello = json::object(|w| w.str("type", "connected").str("agent", &name));
        let _ = ctx.send(id, MessageKind::Text, hello.as_bytes());
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, _: MessageKind, data: &[u8]) {
        let Some(name) = ctx.data(id).cloned() else { return };
        let Some(agent) = self.agents.get_mut(&*name) else { return };
        let msg = json::parse_with(data, &Limits { max_depth: 16, max_len: 64 << 10 });
        let field = |k| msg.as_ref().ok().and_then(|m| m.get(k)).cloned().unwrap_or_default();
        let answer = match &msg {
            Ok(msg) => agent.run(ctx, &name, msg),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = &answer {
            weir::info!("command refused", conn = id.as_u64(), agent = name, error = why);
        }
        let reply = json::object(|w| {
            w.str("type", if answer.is_ok() { "response" } else { "error" }).str("agent", &name);
            w.value("command", &field("command")).value("request_id", &field("request_id"));
            match &answer {
                Ok(data) => w.raw("data", data),
                Err(why) => w.str("error", why),
            }
        });
        let _ = ctx.send(id, MessageKind::Text, reply.as_bytes());
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>, id: ConnId, _: CloseCode, _: &str) {
        ctx.data(id).and_then(|name| self.agents.get_mut(&**name)).map(|a| a.clients.remove(&id));
    }

    fn on_process_output(&mut self, ctx: &mut Ctx<'_>, id: ProcId, stream: Stream, data: &[u8]) {
        let Some((name, a)) = self.agents.iter().find(|(_, a)| a.proc == Some(id)) else { return };
        let text = String::from_utf8_lossy(data);
        let data = json::object(|w| w.str("stream", stream.name()).str("text", &text));
        a.tell(ctx, name, "output", &data);
    }

    fn on_process_exit(&mut self, ctx: &mut Ctx<'_>, id: ProcId, status: ExitStatus) {
        let agent = self.agents.iter_mut().find(|(_, a)| a.proc == Some(id));
        let Some((name, a)) = agent else { return };
        (a.proc, a.status, a.exit) = (None, "exited", Some(status.to_string()));
        let data = a.state(ctx, name);
        a.tell(ctx, name, "status", &data);
    }
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8151".into());
    let mut control = Control::default();
    for arg in args {
        let (name, cmd) = arg.split_once('=').ok_or_else(|| io::Error::other("NAME=COMMAND"))?;
        let command = split_command(cmd).map_err(io::Error::other)?;
        let agent = Agent { command, status: "not started", ..Agent::default() };
        control.agents.insert(name.into(), agent);
    }
    let ms = |var, default| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (beat, wait) = (ms("AGENT_HEARTBEAT_MS", 54_000), ms("AGENT_PONG_WAIT_MS", 60_000));
    let mut config = Config { handle_signals: true, ..Config::default() };
    config.listen = vec![addr.parse().map_err(io::Error::other)?];
    // gorilla/websocket's pattern: a ping every 54 s, and 60 s in all for its pong.
    config.ws.ping_interval = Some(Duration::from_millis(beat));
    config.ws.pong_timeout = Duration::from_millis(wait.saturating_sub(beat).max(1));
    Server::bind(config, control)?.run()
}
