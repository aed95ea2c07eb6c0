//! Helpers for the process tests (tests/exec.rs, tests/agents.rs): the weir binary stopped with
//! SIGTERM at the end of a test (so it ends its children), a WebSocket client with bounded reads,
//! and process checks through /proc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};
use weir::json::{self, Value};

use crate::common::Binary;

/// The longest any single wait in these tests lasts.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `sh /abs/path/tests/scripts/NAME` as one flag value's command part.
pub fn script(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "scripts", name].iter().collect();
    format!("sh {}", path.display())
}

/// The binary, stopped with SIGTERM when dropped: weir then ends its children (SIGTERM, and
/// SIGKILL after the grace) before it exits, so no test leaves a process behind.
pub struct Weir {
    pub bin: Binary,
}

impl Weir {
    pub fn start(args: &[&str]) -> Self {
        Self { bin: Binary::start(args) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.bin.addr
    }

    pub fn log(&self) -> String {
        self.bin.log()
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let pid = self.bin.pid();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        // Bounded: Binary's own drop sends SIGKILL after this.
        wait_until(TIMEOUT, || !alive(pid));
    }
}

/// Whether a process runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// A process's resident memory in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Polls `f` every 20 ms until it is true or `within` has passed; returns whether it became true.
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub type Ws = WebSocket<TcpStream>;

/// A WebSocket client on `path` (every read bounded by [`TIMEOUT`]).
pub fn connect(addr: SocketAddr, path: &str) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let url = format!("ws://{addr}{path}");
    let (ws, resp) = tungstenite::client::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("upgrade to {path} failed: {e}"));
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// The status an upgrade to `path` is answered with.
pub fn upgrade_status(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        if s.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let line = String::from_utf8_lossy(&head).into_owned();
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{line:?}"))
}

/// The next data message as text (pings skipped); panics on a close or after the read timeout.
pub fn next_text(ws: &mut Ws) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t.to_string(),
            Ok(Message::Binary(b)) => return String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => {}
            Err(e) => panic!("reading a message: {e}"),
        }
    }
}

/// The next message, or `None` if nothing comes within `within` (the connection stays usable).
pub fn try_next_text(ws: &mut Ws, within: Duration) -> Option<String> {
    ws.get_mut().set_read_timeout(Some(within)).unwrap();
    let r = loop {
        match ws.read() {
            Ok(Message::Text(t)) => break Some(t.to_string()),
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                break None;
            }
            Err(e) => panic!("reading a message: {e}"),
        }
    };
    ws.get_mut().set_read_timeout(Some(TIMEOUT)).unwrap();
    r
}

/// Reads until the server's close frame and returns its code (data messages are skipped).
pub fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return u16::from(f.code),
            Ok(Message::Close(None)) => return 1005,
            Ok(_) => {}
            Err(e) => panic!("waiting for the close: {e}"),
        }
    }
}

/// An agent client: calls with ids, and the events that arrive meanwhile kept in order.
pub struct Client {
    pub ws: Ws,
    pub events: VecDeque<Value>,
    next_id: u64,
}

impl Client {
    /// Connects to `/ws/agents/NAME` and returns the client and its `connected` event.
    pub fn connect(addr: SocketAddr, agent: &str) -> (Self, Value) {
        let mut ws = connect(addr, &format!("/ws/agents/{agent}"));
        let hello = json::parse(next_text(&mut ws).as_bytes()).unwrap();
        assert_eq!(hello.get("event").and_then(Value::as_str), Some("connected"), "{hello:?}");
        (Self { ws, events: VecDeque::new(), next_id: 0 }, hello)
    }

    /// Sends a command and returns its answer.
    pub fn call(&mut self, method: &str, params: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let cmd = format!(r#"{{"id":{id},"method":"{method}","params":{params}}}"#);
        self.ws.send(Message::text(cmd)).unwrap();
        loop {
            let v = json::parse(next_text(&mut self.ws).as_bytes()).unwrap();
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                return v;
            }
            self.events.push_back(v);
        }
    }

    /// Sends a command that must succeed, and returns its result.
    pub fn ok(&mut self, method: &str, params: &str) -> Value {
        let v = self.call(method, params);
        assert_eq!(v.get("ok"), Some(&Value::Bool(true)), "{method}: {v:?}");
        v.get("result").cloned().unwrap()
    }

    /// The next event (kept or read), panicking after the read timeout.
    pub fn event(&mut self) -> Value {
        if let Some(v) = self.events.pop_front() {
            return v;
        }
        json::parse(next_text(&mut self.ws).as_bytes()).unwrap()
    }

    /// The next event, or `None` if none comes within `within`.
    pub fn try_event(&mut self, within: Duration) -> Option<Value> {
        if let Some(v) = self.events.pop_front() {
            return Some(v);
        }
        try_next_text(&mut self.ws, within).map(|t| json::parse(t.as_bytes()).unwrap())
    }

    /// The next answer (a frame with an `id`); the events before it are kept.
    pub fn wait_for_answer(&mut self) -> Value {
        let mut events = VecDeque::new();
        let answer = loop {
            let v = match self.events.pop_front() {
                Some(v) => v,
                None => json::parse(next_text(&mut self.ws).as_bytes()).unwrap(),
            };
            if v.get("id").is_some() {
                break v;
            }
            events.push_back(v);
        };
        events.append(&mut self.events);
        self.events = events;
        answer
    }

    /// Events until one of kind `event` matching `pred`; the ones before it are dropped.
    pub fn wait_for(&mut self, event: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let v = self.event();
            if v.get("event").and_then(Value::as_str) == Some(event) && pred(&v) {
                return v;
            }
        }
    }
}

/// `output` event's data.
pub fn output_data(v: &Value) -> Option<&str> {
    (v.get("event").and_then(Value::as_str) == Some("output"))
        .then(|| v.get("data").and_then(Value::as_str))
        .flatten()
}

/// A `status` event's state.
pub fn status_state(v: &Value) -> Option<&str> {
    (v.get("event").and_then(Value::as_str) == Some("status"))
        .then(|| v.get("agent").and_then(|a| a.get("state")).and_then(Value::as_str))
        .flatten()
}
