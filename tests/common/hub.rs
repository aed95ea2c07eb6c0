//! Helpers for the hub tests: a JSON-command client over tungstenite, raw upgrades of `/ws`
//! with chosen headers, and a buffered raw frame reader for many connections at once.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use weir::json::{self, Value};

/// How long any single read may wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A hub client: sends commands with fresh ids and reads their answers, keeping the events
/// that arrive in between for [`Client::event`].
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    /// The client name from the `connected` event (`c-N`).
    pub name: String,
    /// `auth_required` from the `connected` event.
    pub auth_required: bool,
    next_id: u64,
    /// Text frames read while waiting for an answer, in order.
    pending: VecDeque<String>,
}

/// A field of a JSON object, failing the test if it is missing.
pub fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("no {key:?} in {v}"))
}

/// A string field.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    field(v, key).as_str().unwrap_or_else(|| panic!("{key:?} is not a string in {v}"))
}

/// An unsigned integer field.
pub fn u64_of(v: &Value, key: &str) -> u64 {
    field(v, key).as_u64().unwrap_or_else(|| panic!("{key:?} is not a u64 in {v}"))
}

/// Parses one frame of text with weir's own parser.
pub fn parse(text: &str) -> Value {
    json::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("bad JSON from the server ({e}): {text}"))
}

impl Client {
    /// Connects to `/ws` and reads the `connected` event.
    pub fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, "/ws", &[]).unwrap_or_else(|e| panic!("connecting: {e}"))
    }

    /// Connects to `path_and_query` with extra headers; the handshake's error if refused.
    pub fn connect_with(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, tungstenite::Error> {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut req = format!("ws://{addr}{path_and_query}").into_client_request().unwrap();
        for (name, value) in headers {
            req.headers_mut().insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let (ws, _) = tungstenite::client::client(req, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("handshake timed out"),
        })?;
        let mut c = Self {
            ws,
            name: String::new(),
            auth_required: false,
            next_id: 0,
            pending: VecDeque::new(),
        };
        let hello = c.read_value();
        assert_eq!(str_of(&hello, "event"), "connected", "{hello}");
        assert_eq!(str_of(&hello, "server"), "weir 0.1.0");
        c.name = str_of(&hello, "client").to_string();
        assert!(c.name.starts_with("c-"), "{hello}");
        c.auth_required = matches!(field(&hello, "auth_required"), Value::Bool(true));
        Ok(c)
    }

    /// Sends one text frame as it is.
    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).unwrap();
    }

    /// Sends one binary frame.
    pub fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).unwrap();
    }

    /// The next text frame off the wire (pings are answered by tungstenite), failing on
    /// anything else.
    fn read_text(&mut self) -> String {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return t.as_str().to_owned(),
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!("{}: expected a text frame, got {other:?}", self.name),
                Err(e) => panic!("{}: reading a frame: {e}", self.name),
            }
        }
    }

    fn read_value(&mut self) -> Value {
        parse(&self.read_text())
    }

    /// The next text frame, buffered ones first.
    pub fn next_text(&mut self) -> String {
        match self.pending.pop_front() {
            Some(t) => t,
            None => self.read_text(),
        }
    }

    /// The next frame, parsed.
    pub fn next(&mut self) -> Value {
        parse(&self.next_text())
    }

    /// The next frame, which must be an event; returns it parsed.
    pub fn event(&mut self) -> Value {
        let v = self.next();
        assert!(v.get("event").is_some(), "{}: expected an event, got {v}", self.name);
        v
    }

    /// The next frame, which must be a `message` event; returns it and its raw text.
    pub fn message(&mut self) -> (Value, String) {
        let text = self.next_text();
        let v = parse(&text);
        assert_eq!(v.get("event").and_then(Value::as_str), Some("message"), "{text}");
        (v, text)
    }

    /// Sends a command with a fresh integer id and `params` (JSON text, or empty for none),
    /// without waiting. Returns the id.
    pub fn send_cmd(&mut self, method: &str, params: &str) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let cmd = if params.is_empty() {
            format!(r#"{{"id":{id},"method":"{method}"}}"#)
        } else {
            format!(r#"{{"id":{id},"method":"{method}","params":{params}}}"#)
        };
        self.send_text(&cmd);
        id
    }

    /// Reads until the answer whose `id` is the JSON text `id`; frames before it are kept for
    /// [`Client::next`]. Returns the whole answer.
    pub fn answer(&mut self, id: &str) -> Value {
        // Bounded: every read waits at most TIMEOUT and a test sends far fewer frames.
        for _ in 0..100_000 {
            let text = self.read_text();
            let v = parse(&text);
            if v.get("event").is_none() {
                let got = v.get("id").map(ToString::to_string).unwrap_or_default();
                assert_eq!(got, id, "{}: an answer out of order: {text}", self.name);
                return v;
            }
            self.pending.push_back(text);
        }
        panic!("{}: no answer for id {id}", self.name);
    }

    /// Sends a command and returns its whole answer.
    pub fn call(&mut self, method: &str, params: &str) -> Value {
        let id = self.send_cmd(method, params);
        self.answer(&id.to_string())
    }

    /// Sends a command that must succeed and returns its `result`.
    pub fn ok(&mut self, method: &str, params: &str) -> Value {
        let mut a = self.call(method, params);
        assert!(matches!(a.get("ok"), Some(Value::Bool(true))), "{method} {params}: {a}");
        assert!(a.get("error").is_none(), "{a}");
        take_field(&mut a, "result")
    }

    /// Sends a command that must fail and returns its error code.
    pub fn err(&mut self, method: &str, params: &str) -> String {
        let a = self.call(method, params);
        error_code(&a)
    }

    /// Asserts that no frame is buffered and that the next one off the wire answers a `ping`
    /// sent now: nothing else was on its way to this client.
    pub fn assert_quiet(&mut self) {
        assert!(self.pending.is_empty(), "{}: unread frames {:?}", self.name, self.pending);
        let id = self.send_cmd("ping", "");
        let v = self.read_value();
        assert_eq!(v.get("id").and_then(Value::as_u64), Some(id), "{}: not quiet: {v}", self.name);
    }

    /// Reads until the server's close frame and returns its code and reason (text frames
    /// before it are dropped). Fails on EOF or a timeout before it.
    pub fn expect_close(&mut self) -> (u16, String) {
        for _ in 0..100_000 {
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => {}
                Err(e) => panic!("{}: no close frame: {e}", self.name),
            }
        }
        panic!("{}: no close frame", self.name);
    }

    /// Closes normally (best effort).
    pub fn close(mut self) {
        let _ = self.ws.close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
    }
}

fn take_field(v: &mut Value, key: &str) -> Value {
    match v {
        Value::Object(members) => members
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| std::mem::take(v))
            .unwrap_or_else(|| panic!("no {key:?}")),
        _ => panic!("not an object"),
    }
}

/// The error code of a failed answer (asserting that it failed, with a message).
pub fn error_code(a: &Value) -> String {
    assert!(matches!(a.get("ok"), Some(Value::Bool(false))), "expected an error: {a}");
    assert!(a.get("result").is_none(), "{a}");
    let e = field(a, "error");
    assert!(!str_of(e, "message").is_empty(), "{a}");
    str_of(e, "code").to_string()
}

/// An upgrade request for `path` with `Host: host` and extra header lines (`"Name: value"`).
pub fn upgrade_request(path: &str, host: &str, extra: &[&str]) -> String {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for h in extra {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Sends a raw upgrade of `path` with extra header lines and returns the connection and the
/// response head (a refusal's body is left unread).
pub fn raw_upgrade(addr: SocketAddr, path: &str, extra: &[&str]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(upgrade_request(path, &addr.to_string(), extra).as_bytes()).unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// Reads an HTTP response head up to the blank line.
pub fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert_eq!(n, 1, "EOF inside a response head: {:?}", String::from_utf8_lossy(&head));
        head.push(b[0]);
        assert!(head.len() < 16 << 10, "a huge response head");
    }
    String::from_utf8(head).unwrap()
}

/// A masked client frame (`b0` is FIN + opcode).
pub fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    crate::common::frame(b0, payload)
}

/// A masked text frame.
pub fn text_frame(text: &str) -> Vec<u8> {
    client_frame(0x81, text.as_bytes())
}

/// One frame from the server: opcode and payload; `None` at EOF (or a reset) before its
/// first byte. Panics on a timeout.
pub fn read_raw_frame(r: &mut BufReader<TcpStream>) -> Option<(u8, Vec<u8>)> {
    let first = match r.fill_buf() {
        Ok([]) => return None,
        Ok(b) => b[0],
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("reading a frame: {e}"),
    };
    r.consume(1);
    let mut b1 = [0u8; 1];
    r.read_exact(&mut b1).unwrap();
    assert_eq!(b1[0] & 0x80, 0, "the server masked a frame");
    let len = match b1[0] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    r.read_exact(&mut payload).unwrap();
    Some((first & 0x0F, payload))
}
