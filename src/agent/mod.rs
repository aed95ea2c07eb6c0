//! `--agent NAME=PROGRAM [ARGS...]`: a supervised process that many people watch and steer over
//! WebSocket at `/ws/agents/NAME`, with the hub's command envelope (`{"id", "method",
//! "params"}`, answers with `ok`, `{"event": ...}` events). `docs/protocol.md` is the reference.
//!
//! weir starts each agent at boot and restarts it by the policy (`never`, `on-failure`,
//! `always`) with an exponential back-off. Every client gets the agent's `output` lines and a
//! `status` event on each change of state; a new client gets the last lines first. Every command
//! is written to the log as an audit line.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::{self, ObjectWriter, Value};
use crate::proto::MessageKind;
use crate::server::lines::{Lines, MAX_LINE};
use crate::server::{
    ConnId, Context, Decision, InputError, ProcId, Request, Response, Signal, Stream,
};
use crate::{info, warn};

/// Where agents are served: `/ws/agents/NAME`.
pub const PATH_PREFIX: &str = "/ws/agents/";
/// Most bytes of output lines an agent keeps for new clients, whatever the line count.
const MAX_LOG_BYTES: usize = 4 << 20;
/// The first restart's delay; each failure in a row doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// When a supervised agent is started again after it ends on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never.
    Never,
    /// When it exits with a non-zero code or is killed by a signal.
    OnFailure,
    /// Whenever it ends.
    Always,
}

impl RestartPolicy {
    /// `never`, `on-failure` or `always`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "never" => Some(Self::Never),
            "on-failure" => Some(Self::OnFailure),
            "always" => Some(Self::Always),
            _ => None,
        }
    }
}

/// One `--agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The name in `/ws/agents/NAME`.
    pub name: String,
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl AgentSpec {
    /// Parses `NAME=PROGRAM [ARGS...]` (the part after `=` split into words as for `--exec`).
    ///
    /// # Errors
    /// No `=`, a name that is not letters, digits, `-`, `_` or `.`, no program, or an
    /// unterminated quote.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (name, command) = value.split_once('=').ok_or("expected NAME=PROGRAM [ARGS...]")?;
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(String::from("the name must be letters, digits, '-', '_' or '.'"));
        }
        let (program, args) = crate::server::words::split_command(command)?;
        Ok(Self { name: name.to_string(), program, args })
    }
}

/// The agents' settings.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The agents.
    pub agents: Vec<AgentSpec>,
    /// The restart policy.
    pub restart: RestartPolicy,
    /// Output lines kept for new clients.
    pub log_lines: usize,
    /// SIGTERM to SIGKILL on `restart`.
    pub kill_grace: Duration,
}

/// An agent's state, as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Paused,
    /// Ended on its own (perhaps to be restarted).
    Exited,
    /// Ended by a command (`kill`), or never started.
    Stopped,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
        }
    }
}

/// What a command asked of the running process, for when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    None,
    Stop,
    Restart,
}

#[derive(Debug)]
struct Agent {
    spec: AgentSpec,
    proc: Option<ProcId>,
    pid: Option<u32>,
    state: State,
    started_at_ms: Option<u64>,
    /// When the last start was attempted (one that failed to spawn included), on the loop's clock.
    started: Duration,
    exit_code: Option<i32>,
    exit_signal: Option<i32>,
    restarts: u64,
    runs: u64,
    intent: Intent,
    restart_at: Option<Duration>,
    failures: u32,
    log: VecDeque<(Stream, Rc<str>)>,
    log_bytes: usize,
    stdout: Lines,
    stderr: Lines,
    watchers: Vec<ConnId>,
}

/// A watching client.
#[derive(Debug)]
struct Watcher {
    agent: usize,
    name: Rc<str>,
    peer: SocketAddr,
}

/// The supervisor and the agents' WebSocket endpoints.
#[derive(Debug)]
pub struct Agents {
    config: AgentsConfig,
    agents: Vec<Agent>,
    watchers: HashMap<ConnId, Watcher>,
    by_proc: HashMap<ProcId, usize>,
}

type Outcome = Result<String, Refusal>;

impl Agents {
    /// The agents, not started yet ([`Agents::on_start`] starts them).
    pub fn new(config: AgentsConfig) -> Self {
        let agents = config
            .agents
            .iter()
            .map(|spec| Agent {
                spec: spec.clone(),
                proc: None,
                pid: None,
                state: State::Stopped,
                started_at_ms: None,
                started: Duration::ZERO,
                exit_code: None,
                exit_signal: None,
                restarts: 0,
                runs: 0,
                intent: Intent::None,
                restart_at: None,
                failures: 0,
                log: VecDeque::new(),
                log_bytes: 0,
                stdout: Lines::new(MAX_LINE),
                stderr: Lines::new(MAX_LINE),
                watchers: Vec::new(),
            })
            .collect();
        Self { config, agents, watchers: HashMap::new(), by_proc: HashMap::new() }
    }

    /// The SIGTERM-to-SIGKILL grace.
    pub fn kill_grace(&self) -> Duration {
        self.config.kill_grace
    }

    /// Starts every agent.
    pub fn on_start(&mut self, ctx: &mut Context<'_>) {
        for i in 0..self.agents.len() {
            self.start(ctx, i);
        }
    }

    /// Starts the agent's process; on failure it counts as a failed run.
    fn start(&mut self, ctx: &mut Context<'_>, i: usize) {
        let Some(a) = self.agents.get_mut(i) else { return };
        a.restart_at = None;
        a.intent = Intent::None;
        let mut cmd = Command::new(&a.spec.program);
        cmd.args(&a.spec.args);
        // weir's own settings (WEIR_TOKEN among them) are not the agent's business.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("WEIR_") {
                cmd.env_remove(k);
            }
        }
        if a.runs > 0 {
            a.restarts += 1;
        }
        a.runs += 1;
        // Every attempt starts a run: one that cannot even spawn is a run of no length, so it
        // never resets the back-off (which measures from here, not from weir's start).
        a.started = ctx.now();
        match ctx.spawn(cmd) {
            Ok(proc) => {
                a.proc = Some(proc);
                a.pid = ctx.process_pid(proc);
                a.state = State::Running;
                a.started_at_ms = Some(now_ms());
                a.exit_code = None;
                a.exit_signal = None;
                self.by_proc.insert(proc, i);
                info!("agent: started", agent = a.spec.name, pid = a.pid.unwrap_or(0));
            }
            Err(e) => {
                warn!(
                    "agent: cannot start",
                    agent = a.spec.name,
                    program = a.spec.program,
                    error = e
                );
                a.state = State::Exited;
                a.exit_code = None;
                a.exit_signal = None;
                self.schedule_restart(ctx, i, false);
            }
        }
        self.broadcast_status(ctx, i);
    }

    /// Back-off restarts that are due.
    pub fn on_tick(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        for i in 0..self.agents.len() {
            if self.agents[i].restart_at.is_some_and(|t| now >= t) && !ctx.draining() {
                self.start(ctx, i);
            }
        }
    }

    fn schedule_restart(&mut self, ctx: &mut Context<'_>, i: usize, success: bool) {
        let policy = self.config.restart;
        let Some(a) = self.agents.get_mut(i) else { return };
        let wanted = match policy {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Always => true,
        };
        if !wanted || ctx.draining() {
            return;
        }
        if ctx.now().saturating_sub(a.started) >= STABLE_RUN {
            a.failures = 0;
        }
        let delay = FIRST_BACKOFF.saturating_mul(1 << a.failures.min(6)).min(MAX_BACKOFF);
        a.failures = a.failures.saturating_add(1);
        a.restart_at = Some(ctx.now() + delay);
        info!("agent: restart scheduled", agent = a.spec.name, delay_ms = delay.as_millis());
    }

    /// An upgrade to `/ws/agents/NAME`.
    pub fn on_upgrade(&mut self, req: &Request<'_>) -> Decision {
        let (id, peer) = (req.id, req.peer);
        let name = req.path.strip_prefix(PATH_PREFIX).unwrap_or_default();
        let Some(i) = self.agents.iter().position(|a| a.spec.name == name) else {
            return Decision::Reject(Response::text(404, "no such agent\n"));
        };
        // The id the logs use for this connection, as the hub names its clients.
        let client: Rc<str> = Rc::from(id.to_string());
        self.watchers.insert(id, Watcher { agent: i, name: client, peer });
        self.agents[i].watchers.push(id);
        Decision::accept()
    }

    /// Greets a client: its name, the agent's state and its last output lines.
    pub fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(w) = self.watchers.get(&id) else { return };
        let Some(a) = self.agents.get(w.agent) else { return };
        // The newest lines whose message fits in half the queue cap: a log larger than the
        // cap would cut the watcher off before its first message (and its 101 with it).
        let budget = ctx.queue_cap() / 2;
        let mut fit = 0;
        let mut room = budget.saturating_sub(512);
        for (_, line) in a.log.iter().rev() {
            match room.checked_sub(line.len() + 40) {
                Some(r) => room = r,
                None => break,
            }
            fit += 1;
        }
        let mut skip = a.log.len() - fit;
        let out = loop {
            let out = connected_json(&w.name, a, skip);
            // Escaping may have made it larger than its lines: then fewer lines.
            if out.len() <= budget || skip == a.log.len() {
                break out;
            }
            skip += (a.log.len() - skip).div_ceil(2);
        };
        let _ = ctx.send(id, MessageKind::Text, out.as_bytes());
    }

    /// The client is gone.
    pub fn on_close(&mut self, id: ConnId) {
        if let Some(w) = self.watchers.remove(&id) {
            if let Some(a) = self.agents.get_mut(w.agent) {
                a.watchers.retain(|c| *c != id);
            }
        }
    }

    /// One command.
    pub fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        id: ConnId,
        kind: MessageKind,
        data: &[u8],
    ) {
        let Some(w) = self.watchers.get(&id) else { return };
        let (i, client, peer) = (w.agent, Rc::clone(&w.name), w.peer);
        // Every command is audited, those refused before their method could be read too.
        let (cmd_id, method, result) = match parse_command(kind, data) {
            Err((cmd_id, e)) => (cmd_id, None, Err(e)),
            Ok((cmd_id, method, params)) => {
                let result = match method.as_str() {
                    "get_state" => Ok(state_json(&self.agents[i])),
                    "pause" => self.pause(ctx, i),
                    "resume" => self.resume(ctx, i),
                    "kill" => self.kill(ctx, i, &params),
                    "send_input" => self.send_input(ctx, i, &params),
                    "start" => self.start_cmd(ctx, i),
                    "restart" => self.restart(ctx, i),
                    _ => Err(("unknown_method", format!("no method {method:?}"))),
                };
                (cmd_id, Some(method), result)
            }
        };
        let verdict = match &result {
            Ok(_) => "ok",
            Err((code, _)) => code,
        };
        info!(
            "agent: command",
            agent = self.agents[i].spec.name,
            client = client,
            peer = peer,
            method = method.as_deref().unwrap_or("-"),
            result = verdict
        );
        match cmd_id {
            CommandId::Unknown => reply(ctx, id, "null", result),
            CommandId::Absent => {}
            CommandId::Given(cmd) => reply(ctx, id, &cmd, result),
        }
    }

    fn running(&self, i: usize) -> Result<ProcId, (&'static str, String)> {
        let a = &self.agents[i];
        match (a.proc, a.state) {
            (Some(p), State::Running | State::Paused) => Ok(p),
            _ => Err(bad("not_running", "the agent is not running")),
        }
    }

    fn pause(&mut self, ctx: &mut Context<'_>, i: usize) -> Outcome {
        let proc = self.running(i)?;
        if self.agents[i].state == State::Paused {
            return Ok(state_json(&self.agents[i]));
        }
        ctx.process_signal(proc, Signal::Stop).map_err(|e| ("signal_failed", e.to_string()))?;
        // SIGCHLD is not raised for a stop (SA_NOCLDSTOP): the state is tracked here.
        self.set_state(ctx, i, State::Paused);
        Ok(state_json(&self.agents[i]))
    }

    fn resume(&mut self, ctx: &mut Context<'_>, i: usize) -> Outcome {
        let proc = self.running(i)?;
        if self.agents[i].state == State::Running {
            return Ok(state_json(&self.agents[i]));
        }
        ctx.process_signal(proc, Signal::Cont).map_err(|e| ("signal_failed", e.to_string()))?;
        self.set_state(ctx, i, State::Running);
        Ok(state_json(&self.agents[i]))
    }

    fn kill(&mut self, ctx: &mut Context<'_>, i: usize, params: &Value) -> Outcome {
        let proc = self.running(i)?;
        let sig = match params.get("signal") {
            None | Some(Value::Null) => Signal::Term,
            Some(Value::String(s)) => match Signal::from_name(s) {
                Some(s @ (Signal::Term | Signal::Kill | Signal::Int | Signal::Hup)) => s,
                _ => return Err(bad("invalid_params", "signal must be TERM, KILL, INT or HUP")),
            },
            Some(_) => return Err(bad("invalid_params", "signal must be a string")),
        };
        ctx.process_signal(proc, sig).map_err(|e| ("signal_failed", e.to_string()))?;
        if sig != Signal::Hup {
            // Ended on purpose: not restarted by the policy.
            self.agents[i].intent = Intent::Stop;
        }
        if self.agents[i].state == State::Paused && sig != Signal::Kill {
            // The runtime continues a stopped process so that it can act on the signal.
            self.set_state(ctx, i, State::Running);
        }
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        w.str("signal", sig.name()).u64("pid", u64::from(self.agents[i].pid.unwrap_or(0)));
        w.finish();
        Ok(out)
    }

    fn send_input(&mut self, ctx: &mut Context<'_>, i: usize, params: &Value) -> Outcome {
        let proc = self.running(i)?;
        let data = params
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("invalid_params", "data must be a string"))?;
        match ctx.process_write(proc, data.as_bytes()) {
            Ok(()) => Ok(format!("{{\"bytes\":{}}}", data.len())),
            Err(InputError::Closed) => Err(bad("input_closed", "the agent's input is closed")),
            Err(InputError::Full) => Err(bad("input_full", "the agent is not reading its input")),
        }
    }

    fn start_cmd(&mut self, ctx: &mut Context<'_>, i: usize) -> Outcome {
        if self.agents[i].proc.is_some() {
            return Err(bad("already_running", "the agent is running"));
        }
        self.agents[i].failures = 0;
        self.start(ctx, i);
        Ok(state_json(&self.agents[i]))
    }

    fn restart(&mut self, ctx: &mut Context<'_>, i: usize) -> Outcome {
        let Some(proc) = self.agents[i].proc else {
            return self.start_cmd(ctx, i);
        };
        self.agents[i].intent = Intent::Restart;
        ctx.terminate_process(proc, self.config.kill_grace);
        if self.agents[i].state == State::Paused {
            self.set_state(ctx, i, State::Running);
        }
        Ok(state_json(&self.agents[i]))
    }

    fn set_state(&mut self, ctx: &mut Context<'_>, i: usize, state: State) {
        if self.agents[i].state != state {
            self.agents[i].state = state;
            self.broadcast_status(ctx, i);
        }
    }

    fn broadcast_status(&mut self, ctx: &mut Context<'_>, i: usize) {
        let a = &self.agents[i];
        let mut out = String::with_capacity(192);
        let mut w = ObjectWriter::new(&mut out);
        w.str("event", "status").raw("agent", &state_json(a));
        w.finish();
        ctx.broadcast(a.watchers.iter().copied(), MessageKind::Text, out.as_bytes());
    }

    /// An agent's output: each line to every watcher, and into the log ring.
    pub fn on_process_output(
        &mut self,
        ctx: &mut Context<'_>,
        proc: ProcId,
        stream: Stream,
        data: &[u8],
    ) {
        let Some(&i) = self.by_proc.get(&proc) else { return };
        let Some(a) = self.agents.get_mut(i) else { return };
        let mut lines = std::mem::replace(
            if stream == Stream::Stdout { &mut a.stdout } else { &mut a.stderr },
            Lines::new(MAX_LINE),
        );
        let max_lines = self.config.log_lines;
        lines.push(data, &mut |line| emit_line(ctx, a, stream, line, max_lines));
        *(if stream == Stream::Stdout { &mut a.stdout } else { &mut a.stderr }) = lines;
    }

    /// An agent ended: its state, then a restart if the command or the policy asks for one.
    pub fn on_process_exit(&mut self, ctx: &mut Context<'_>, proc: ProcId, status: ExitStatus) {
        let Some(i) = self.by_proc.remove(&proc) else { return };
        let max_lines = self.config.log_lines;
        let Some(a) = self.agents.get_mut(i) else { return };
        let mut out = std::mem::replace(&mut a.stdout, Lines::new(MAX_LINE));
        out.finish(&mut |line| emit_line(ctx, a, Stream::Stdout, line, max_lines));
        let mut err = std::mem::replace(&mut a.stderr, Lines::new(MAX_LINE));
        err.finish(&mut |line| emit_line(ctx, a, Stream::Stderr, line, max_lines));
        a.proc = None;
        a.pid = None;
        a.exit_code = status.code();
        a.exit_signal = status.signal();
        let intent = std::mem::replace(&mut a.intent, Intent::None);
        info!(
            "agent: exited",
            agent = a.spec.name,
            code = a.exit_code.map_or(-1, i64::from),
            signal = a.exit_signal.unwrap_or(0)
        );
        a.state = if intent == Intent::None { State::Exited } else { State::Stopped };
        self.broadcast_status(ctx, i);
        match intent {
            Intent::Restart if !ctx.draining() => self.start(ctx, i),
            Intent::None => self.schedule_restart(ctx, i, status.success()),
            _ => {}
        }
    }

    /// `GET /api/agents`: every agent and its state.
    pub fn http_list(&self, req: &Request<'_>) -> Response {
        if !matches!(req.method, "GET" | "HEAD") {
            let mut r = Response::text(405, "method not allowed\n");
            r.headers.push(("Allow".into(), b"GET, HEAD".to_vec()));
            return r;
        }
        let mut out = String::new();
        let mut w = ObjectWriter::new(&mut out);
        let mut list = w.array("agents");
        for a in &self.agents {
            list.raw(&state_json(a));
        }
        list.finish();
        w.finish();
        Response::with_type(200, "application/json", out.into_bytes())
    }
}

/// One line of output: into the ring (bounded by lines and bytes), and to every watcher.
fn emit_line(ctx: &mut Context<'_>, a: &mut Agent, stream: Stream, line: &[u8], max_lines: usize) {
    let text: Rc<str> = Rc::from(String::from_utf8_lossy(line));
    // With nobody watching, the event is not written at all (a chatty agent's lines cost
    // only the ring).
    if !a.watchers.is_empty() {
        let mut out = String::with_capacity(text.len() + 64);
        let mut w = ObjectWriter::new(&mut out);
        w.str("event", "output")
            .str("agent", &a.spec.name)
            .str("stream", stream.name())
            .str("data", &text);
        w.finish();
        ctx.broadcast(a.watchers.iter().copied(), MessageKind::Text, out.as_bytes());
    }
    remember(a, stream, text, max_lines);
}

/// Keeps a line for new clients: at most `max_lines` lines and [`MAX_LOG_BYTES`] bytes.
fn remember(a: &mut Agent, stream: Stream, text: Rc<str>, max_lines: usize) {
    if max_lines == 0 {
        return;
    }
    a.log_bytes += text.len();
    a.log.push_back((stream, text));
    while a.log.len() > max_lines || a.log_bytes > MAX_LOG_BYTES {
        let Some((_, old)) = a.log.pop_front() else { break };
        a.log_bytes -= old.len();
    }
}

/// `{"name", "state", "pid", "started_at", "exit_code", "signal", "restarts", "watchers"}`.
/// The `connected` event for watcher `client` of `a`, with its log from line `skip` on.
fn connected_json(client: &str, a: &Agent, skip: usize) -> String {
    let mut out = String::with_capacity(256 + a.log_bytes + a.log.len() * 32);
    let mut o = ObjectWriter::new(&mut out);
    o.str("event", "connected")
        .str("client", client)
        .str("server", concat!("weir ", env!("CARGO_PKG_VERSION")))
        .raw("agent", &state_json(a));
    let mut log = o.array("log");
    for (stream, line) in a.log.iter().skip(skip) {
        let mut e = log.object();
        e.str("stream", stream.name()).str("data", line);
        e.finish();
    }
    log.finish();
    o.finish();
    out
}

fn state_json(a: &Agent) -> String {
    let mut out = String::with_capacity(160);
    let mut w = ObjectWriter::new(&mut out);
    w.str("name", &a.spec.name).str("state", a.state.name());
    match a.pid {
        Some(p) => w.u64("pid", u64::from(p)),
        None => w.null("pid"),
    };
    match a.started_at_ms {
        Some(t) => w.u64("started_at", t),
        None => w.null("started_at"),
    };
    match a.exit_code {
        Some(c) => w.i64("exit_code", i64::from(c)),
        None => w.null("exit_code"),
    };
    match a.exit_signal {
        Some(s) => w.i64("signal", i64::from(s)),
        None => w.null("signal"),
    };
    w.u64("restarts", a.restarts).u64("watchers", a.watchers.len() as u64);
    w.finish();
    out
}

fn bad(code: &'static str, message: &str) -> (&'static str, String) {
    (code, message.to_string())
}

/// An error code and its message.
type Refusal = (&'static str, String);

/// A command's `id`, as it is echoed in the answer.
enum CommandId {
    /// Not known (the frame is not a command): answered with `null`.
    Unknown,
    /// None given: a notification, not answered.
    Absent,
    /// As JSON text.
    Given(String),
}

/// A command frame: its id, method and params (an object).
///
/// # Errors
/// What to answer (and audit) instead, with the id as far as it was read.
fn parse_command(
    kind: MessageKind,
    data: &[u8],
) -> Result<(CommandId, String, Value), (CommandId, Refusal)> {
    if kind == MessageKind::Binary {
        return Err((CommandId::Unknown, bad("invalid_request", "commands are JSON text frames")));
    }
    let limits = json::Limits { max_len: data.len().max(1), ..json::Limits::default() };
    let mut value = json::parse_with(data, &limits)
        .map_err(|e| (CommandId::Unknown, bad("parse_error", &e.to_string())))?;
    let given = crate::json::command_id(&value)
        .map_err(|m| (CommandId::Unknown, bad("invalid_request", m)))?;
    if !matches!(value, Value::Object(_)) {
        return Err((CommandId::Unknown, bad("invalid_request", "a command is a JSON object")));
    }
    // A frame that is not a command is answered even without an id (with `null`), so that a
    // client of another protocol is told and not left waiting.
    let notification = given.is_none();
    let cmd_id = given.map_or(CommandId::Unknown, CommandId::Given);
    let Some(method) = value.get("method").and_then(Value::as_str).map(String::from) else {
        return Err((cmd_id, bad("invalid_request", "method must be a string")));
    };
    match value.get("params") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(_) => return Err((cmd_id, bad("invalid_params", "params must be an object"))),
    }
    // A command without an id is a notification: carried out, not answered.
    let cmd_id = if notification { CommandId::Absent } else { cmd_id };
    // Taken out of the parsed command, not copied (`send_input` data may be large): the first
    // `params`, the one `Value::get` reads.
    let params = match &mut value {
        Value::Object(members) => members
            .iter_mut()
            .find(|(k, _)| k == "params")
            .map(|(_, v)| std::mem::take(v))
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| Value::Object(Vec::new())),
        _ => Value::Object(Vec::new()),
    };
    Ok((cmd_id, method, params))
}

fn reply(ctx: &mut Context<'_>, conn: ConnId, id: &str, result: Outcome) {
    let mut out = String::with_capacity(128);
    let mut w = ObjectWriter::new(&mut out);
    w.raw("id", id);
    match result {
        Ok(r) => {
            w.bool("ok", true).raw("result", &r);
        }
        Err((code, message)) => {
            w.bool("ok", false);
            let mut e = w.object("error");
            e.str("code", code).str("message", &message);
            e.finish();
        }
    }
    w.finish();
    let _ = ctx.send(conn, MessageKind::Text, out.as_bytes());
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_policies() {
        let s = AgentSpec::parse("counter=sh /x/counter.sh 5").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.name.as_str(), s.program.as_str()), ("counter", "sh"));
        assert_eq!(s.args, ["/x/counter.sh", "5"]);
        for bad in ["=sh", "a b=sh", "x=", "x", "a/b=sh"] {
            assert!(AgentSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(RestartPolicy::from_name("on-failure"), Some(RestartPolicy::OnFailure));
        assert_eq!(RestartPolicy::from_name("sometimes"), None);
    }

    #[test]
    fn log_ring_is_bounded() {
        let mut agents = Agents::new(AgentsConfig {
            agents: vec![AgentSpec::parse("a=true").unwrap_or_else(|e| panic!("{e}"))],
            restart: RestartPolicy::Never,
            log_lines: 3,
            kill_grace: Duration::from_secs(1),
        });
        let a = &mut agents.agents[0];
        for n in 0..10 {
            remember(a, Stream::Stdout, Rc::from(n.to_string()), 3);
        }
        let kept: Vec<&str> = a.log.iter().map(|(_, l)| &**l).collect();
        assert_eq!(kept, ["7", "8", "9"]);
        assert_eq!(a.log_bytes, 3);
        let big: Rc<str> = Rc::from("x".repeat(MAX_LOG_BYTES / 2 + 1));
        remember(a, Stream::Stderr, Rc::clone(&big), 3);
        remember(a, Stream::Stderr, big, 3);
        assert_eq!(a.log.len(), 1, "the byte bound drops lines too");
        assert!(a.log_bytes <= MAX_LOG_BYTES);
        let s = state_json(a);
        assert!(s.contains("\"state\":\"stopped\"") && s.contains("\"pid\":null"), "{s}");
    }
}
