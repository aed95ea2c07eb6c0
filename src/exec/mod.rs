//! `--exec PATH=PROGRAM [ARGS...]`: each WebSocket connection to PATH runs its own process, as
//! websocketd does. A text message becomes a line on the process's stdin; each line it writes
//! to stdout becomes a text message (or, with `--exec-binary`, each chunk a binary message).
//! stderr goes to weir's log, or to the client with `--pass-stderr`.
//!
//! The request reaches the program in CGI variables (`REMOTE_ADDR`, `QUERY_STRING`, `HTTP_*`,
//! ...). The process exits: the connection closes with 1000 (1011 if it failed). The client
//! leaves: the process gets SIGTERM, then SIGKILL after the kill grace. When the client reads
//! slowly, weir stops reading the process's output, and the process blocks on its full pipe.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::proto::{CloseCode, MessageKind};
use crate::server::lines::{Lines, MAX_LINE};
use crate::server::{ConnId, Context, Decision, InputError, ProcId, Request, Response, Stream};
use crate::{info, warn};

/// Past this many bytes queued for the client, the process's output is no longer read...
const HIGH_WATER: usize = 256 << 10;
/// ... until the queue is down to this.
const LOW_WATER: usize = 64 << 10;
/// Variables of weir's own environment a program sees (everything else, `WEIR_TOKEN` among
/// them, is left out).
const PASS_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];
/// The query parameter that carries a token (`?token=`, read by
/// [`presented_token`](crate::access::presented_token)).
const TOKEN_PARAM: &str = "token";

/// One `--exec` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRoute {
    /// The request path (it also serves the paths under it, as `PATH_INFO`).
    pub path: String,
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl ExecRoute {
    /// Parses `PATH=PROGRAM [ARGS...]`: the part after `=` is split into words as a shell
    /// splits them, quotes and backslashes included, with no expansion ([`crate::server::words`]).
    ///
    /// # Errors
    /// No `=`, a path that does not start with `/`, no program, or an unterminated quote.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (path, command) = value.split_once('=').ok_or("expected PATH=PROGRAM [ARGS...]")?;
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(String::from("the path must start with '/', without spaces"));
        }
        let (program, args) = crate::server::words::split_command(command)?;
        // `/x/` serves the same paths as `/x`; `/` alone serves every path.
        let path = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        Ok(Self { path: path.to_string(), program, args })
    }
}

/// The exec application's settings.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// The routes.
    pub routes: Vec<ExecRoute>,
    /// Stdout chunks as binary messages, and messages written to stdin as they are.
    pub binary: bool,
    /// stderr lines to the client (else to the log).
    pub pass_stderr: bool,
    /// SIGTERM to SIGKILL.
    pub kill_grace: Duration,
    /// Most processes running at once (503 beyond).
    pub max_processes: usize,
}

/// A running program and its client.
#[derive(Debug)]
struct Session {
    /// Gone once the client has left.
    conn: Option<ConnId>,
    stdout: Lines,
    stderr: Lines,
    paused: bool,
    path: String,
}

/// The exec application.
#[derive(Debug)]
pub struct Exec {
    config: ExecConfig,
    by_conn: HashMap<ConnId, ProcId>,
    sessions: HashMap<ProcId, Session>,
}

impl Exec {
    /// With these routes and settings.
    pub fn new(config: ExecConfig) -> Self {
        Self { config, by_conn: HashMap::new(), sessions: HashMap::new() }
    }

    /// The routes.
    pub fn routes(&self) -> &[ExecRoute] {
        &self.config.routes
    }

    /// The SIGTERM-to-SIGKILL grace.
    pub fn kill_grace(&self) -> Duration {
        self.config.kill_grace
    }

    /// The route serving `path`: the longest whose path is `path` or a parent of it.
    pub fn route_for(&self, path: &str) -> Option<&ExecRoute> {
        self.config
            .routes
            .iter()
            .filter(|r| {
                path == r.path
                    || r.path == "/"
                    || path.strip_prefix(r.path.as_str()).is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|r| r.path.len())
    }

    /// Processes running (clients gone included, until their process ends).
    pub fn running(&self) -> usize {
        self.sessions.len()
    }

    /// An upgrade to an exec path (the access policy let it in): the process cap, then the
    /// program starts.
    pub fn on_upgrade(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Decision {
        let (id, peer) = (req.id, req.peer);
        let Some(route) = self.route_for(req.path).cloned() else {
            return Decision::Reject(Response::text(404, "no WebSocket endpoint at this path\n"));
        };
        if self.sessions.len() >= self.config.max_processes {
            warn!(
                "exec: process limit reached",
                path = route.path,
                max = self.config.max_processes
            );
            let mut r = Response::text(503, "too many processes\n");
            r.headers.push(("Retry-After".into(), b"5".to_vec()));
            return Decision::Reject(r);
        }
        let mut cmd = Command::new(&route.program);
        cmd.args(&route.args).env_clear();
        for name in PASS_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        let local = ctx.local_addr(id);
        for (k, v) in cgi_env(req, &route.path, local) {
            cmd.env(k, OsStr::from_bytes(&v));
        }
        let proc = match ctx.spawn(cmd) {
            Ok(p) => p,
            Err(e) => {
                warn!("exec: cannot start", path = route.path, program = route.program, error = e);
                return Decision::Reject(Response::text(500, "cannot start the program\n"));
            }
        };
        info!(
            "exec: started",
            id = id,
            peer = peer,
            path = req.path,
            pid = ctx.process_pid(proc).unwrap_or(0)
        );
        self.by_conn.insert(id, proc);
        self.sessions.insert(
            proc,
            Session {
                conn: Some(id),
                stdout: Lines::new(MAX_LINE),
                stderr: Lines::new(MAX_LINE),
                paused: false,
                path: route.path,
            },
        );
        Decision::accept()
    }

    /// A message from the client: a line (or, binary mode, raw bytes) for the process's stdin.
    pub fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, data: &[u8]) {
        let Some(&proc) = self.by_conn.get(&id) else { return };
        let result = if self.config.binary {
            ctx.process_write(proc, data)
        } else {
            let mut line = Vec::with_capacity(data.len() + 1);
            line.extend_from_slice(data);
            line.push(b'\n');
            ctx.process_write(proc, &line)
        };
        match result {
            Ok(()) | Err(InputError::Closed) => {}
            Err(InputError::Full) => {
                warn!("exec: the process is not reading its input", id = id);
                ctx.close(id, CloseCode::POLICY_VIOLATION, "the process is not reading its input");
            }
        }
    }

    /// The client is gone: its process is ended, and what it still writes is read and dropped
    /// (output left paused would keep the process's slot until the end of time).
    pub fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(proc) = self.by_conn.remove(&id) else { return };
        if let Some(s) = self.sessions.get_mut(&proc) {
            s.conn = None;
            if std::mem::take(&mut s.paused) {
                ctx.resume_process_output(proc);
            }
        }
        ctx.terminate_process(proc, self.config.kill_grace);
    }

    /// The client's queue drained: read the process's output again.
    pub fn on_drained(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        let Some(&proc) = self.by_conn.get(&id) else { return };
        if let Some(s) = self.sessions.get_mut(&proc) {
            if std::mem::take(&mut s.paused) {
                ctx.resume_process_output(proc);
            }
        }
    }

    /// Output of a process: lines (or chunks) to its client, stderr to the log unless passed.
    pub fn on_process_output(
        &mut self,
        ctx: &mut Context<'_>,
        proc: ProcId,
        stream: Stream,
        data: &[u8],
    ) {
        let Some(s) = self.sessions.get_mut(&proc) else { return };
        let binary = self.config.binary;
        let to_client = stream == Stream::Stdout || self.config.pass_stderr;
        let Some(conn) = s.conn else { return };
        if !to_client {
            s.stderr.push(data, &mut |line| log_stderr(conn, line));
            return;
        }
        if binary && stream == Stream::Stdout {
            let _ = ctx.send(conn, MessageKind::Binary, data);
        } else {
            let lines = if stream == Stream::Stdout { &mut s.stdout } else { &mut s.stderr };
            lines.push(data, &mut |line| send_line(ctx, conn, line));
        }
        if !s.paused && ctx.queued_bytes(conn) > HIGH_WATER {
            s.paused = true;
            ctx.pause_process_output(proc);
            ctx.notify_drained(conn, LOW_WATER);
        }
    }

    /// A process ended: what is left of its output is sent, and its client closed with 1000
    /// (1011 if it failed).
    pub fn on_process_exit(&mut self, ctx: &mut Context<'_>, proc: ProcId, status: ExitStatus) {
        let Some(mut s) = self.sessions.remove(&proc) else { return };
        info!(
            "exec: exited",
            path = s.path,
            code = status.code().map_or(-1, i64::from),
            signal = status.signal().unwrap_or(0)
        );
        let Some(conn) = s.conn else { return };
        self.by_conn.remove(&conn);
        s.stdout.finish(&mut |line| send_line(ctx, conn, line));
        if self.config.pass_stderr {
            s.stderr.finish(&mut |line| send_line(ctx, conn, line));
        } else {
            s.stderr.finish(&mut |line| log_stderr(conn, line));
        }
        if status.success() {
            ctx.close(conn, CloseCode::NORMAL, "");
        } else {
            ctx.close(conn, CloseCode(1011), "the program failed");
        }
    }
}

fn send_line(ctx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    // A text message must be UTF-8 (RFC 6455 §5.6): bytes that are not become U+FFFD.
    let text = String::from_utf8_lossy(line);
    let _ = ctx.send(conn, MessageKind::Text, text.as_bytes());
}

fn log_stderr(conn: ConnId, line: &[u8]) {
    info!("exec: stderr", id = conn, line = String::from_utf8_lossy(line));
}

/// The CGI variables (RFC 3875 §4.1) for an upgrade request, plus `WEIR_CLIENT_ID`.
fn cgi_env(req: &Request<'_>, route: &str, local: Option<SocketAddr>) -> Vec<(String, Vec<u8>)> {
    let (peer, id) = (req.peer, req.id);
    let host = req.host;
    let (name, host_port) = split_host(host);
    let port = local.map(|a| a.port().to_string()).or(host_port).unwrap_or_else(|| "80".into());
    let path_info =
        if route == "/" { req.path } else { &req.path[route.len().min(req.path.len())..] };
    // `?token=` is a credential, as `Authorization` is: the program gets neither.
    let query = without_token(req.query.unwrap_or(""));
    let uri = match req.target.split_once('?') {
        Some((before, q)) if q != query => {
            if query.is_empty() {
                before.to_string()
            } else {
                format!("{before}?{query}")
            }
        }
        _ => req.target.to_string(),
    };
    let mut env: Vec<(String, Vec<u8>)> = vec![
        ("GATEWAY_INTERFACE".into(), b"CGI/1.1".to_vec()),
        ("SERVER_SOFTWARE".into(), concat!("weir/", env!("CARGO_PKG_VERSION")).into()),
        ("SERVER_PROTOCOL".into(), b"HTTP/1.1".to_vec()),
        ("REQUEST_METHOD".into(), b"GET".to_vec()),
        ("REMOTE_ADDR".into(), peer.ip().to_string().into_bytes()),
        ("REMOTE_PORT".into(), peer.port().to_string().into_bytes()),
        ("SERVER_NAME".into(), name.to_vec()),
        ("SERVER_PORT".into(), port.into_bytes()),
        ("SCRIPT_NAME".into(), route.as_bytes().to_vec()),
        ("PATH_INFO".into(), path_info.as_bytes().to_vec()),
        ("QUERY_STRING".into(), query.as_bytes().to_vec()),
        ("REQUEST_URI".into(), uri.into_bytes()),
        ("WEIR_CLIENT_ID".into(), id.to_string().into_bytes()),
    ];
    let mut headers: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for h in req.headers {
        let var: String =
            h.name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }).collect();
        // httpoxy: a `Proxy` header must not become HTTP_PROXY, which programs take as their
        // proxy. Credentials are not passed on (RFC 3875 §4.1.18). Names that are not words
        // joined by `-` are left out: `X_User` would land in the variable of `X-User`, which
        // a front end may set (nginx drops such names too). So are values with NUL.
        if var == "PROXY"
            || var == "AUTHORIZATION"
            || !h.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || h.value.contains(&0)
        {
            continue;
        }
        let v = headers.entry(format!("HTTP_{var}")).or_default();
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(h.value);
    }
    env.extend(headers);
    env
}

/// `query` without its `token` parameters (those whose name, before `=`, is `token`: the ones
/// [`query_param`](crate::access::query_param) finds), the others kept as they came, in
/// order.
fn without_token(query: &str) -> Cow<'_, str> {
    let is_token = |kv: &&str| kv.split_once('=').is_some_and(|(k, _)| k == TOKEN_PARAM);
    if !query.split('&').any(|kv| is_token(&kv)) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = query.split('&').filter(|kv| !is_token(kv)).collect();
    Cow::Owned(kept.join("&"))
}

/// The host name and port of a `Host` value (`[::1]:8080`, `example.com`).
fn split_host(host: &[u8]) -> (&[u8], Option<String>) {
    let port_at = if host.first() == Some(&b'[') {
        host.iter().position(|&b| b == b']').map(|i| i + 1).filter(|&i| host.get(i) == Some(&b':'))
    } else {
        host.iter().rposition(|&b| b == b':')
    };
    match port_at {
        Some(i) => {
            let port = std::str::from_utf8(&host[i + 1..]).ok().map(String::from);
            (&host[..i], port)
        }
        None => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::query_param;

    #[test]
    fn routes() {
        let r = ExecRoute::parse("/cmd=/bin/echo  -n hi").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.path, "/cmd");
        assert_eq!(r.program, "/bin/echo");
        assert_eq!(r.args, ["-n", "hi"]);
        assert!(ExecRoute::parse("cmd=/bin/echo").is_err());
        assert!(ExecRoute::parse("/cmd=").is_err());
        assert!(ExecRoute::parse("/cmd").is_err());
        let exec = Exec::new(ExecConfig {
            routes: vec![
                ExecRoute::parse("/a=x").unwrap_or_else(|e| panic!("{e}")),
                ExecRoute::parse("/a/b=y").unwrap_or_else(|e| panic!("{e}")),
            ],
            binary: false,
            pass_stderr: false,
            kill_grace: Duration::from_secs(1),
            max_processes: 1,
        });
        assert_eq!(exec.route_for("/a").map(|r| r.program.as_str()), Some("x"));
        assert_eq!(exec.route_for("/a/c").map(|r| r.program.as_str()), Some("x"));
        assert_eq!(exec.route_for("/a/b/c").map(|r| r.program.as_str()), Some("y"));
        assert_eq!(exec.route_for("/ab"), None);
    }

    #[test]
    fn the_token_parameter_is_taken_out_of_the_query() {
        for (query, kept) in [
            ("x=1&token=s3cret&y=%41+b&&token2=k", "x=1&y=%41+b&&token2=k"),
            ("token=s3cret", ""),
            ("token=a&token=b&tok=1", "tok=1"),
            ("a=1&b&token=x&", "a=1&b&"),
            ("x=1&y=2", "x=1&y=2"),
            ("Token=x&%74oken=y&token", "Token=x&%74oken=y&token"),
            ("", ""),
        ] {
            assert_eq!(without_token(query), kept, "{query}");
            assert_eq!(query_param(Some(&*without_token(query)), TOKEN_PARAM), None, "{query}");
        }
        assert!(matches!(without_token("x=1&y=2"), Cow::Borrowed(_)));
    }

    #[test]
    fn host_split() {
        assert_eq!(split_host(b"example.com:8080"), (&b"example.com"[..], Some("8080".into())));
        assert_eq!(split_host(b"[::1]:80"), (&b"[::1]"[..], Some("80".into())));
        assert_eq!(split_host(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(split_host(b"h"), (&b"h"[..], None));
    }
}
