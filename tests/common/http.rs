//! Plain-HTTP helpers for the API tests: a client connection that reads whole responses (so
//! it can be kept alive), one-shot requests, and a server-sent-events reader.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weir::json::{self, Value};

/// How long any single read may wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A response: its head (status line and fields, without the blank line) and its body.
#[derive(Debug)]
pub struct Resp {
    pub head: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Resp {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_else(|e| panic!("body not UTF-8 ({e}): {self:?}"))
    }

    /// The body parsed with weir's own JSON parser.
    pub fn json(&self) -> Value {
        json::parse(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// `error.code` of a JSON error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        v.get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no error.code in {v}"))
            .to_owned()
    }

    /// Whether the server said it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A client connection that reads responses one at a time, so several requests can share it.
pub struct Http {
    r: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Self { r: BufReader::new(s) }
    }

    /// Changes how long one read may wait.
    pub fn set_timeout(&mut self, t: Duration) {
        self.r.get_ref().set_read_timeout(Some(t)).unwrap();
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).unwrap();
    }

    /// Reads one response to a request that was not `HEAD`.
    pub fn response(&mut self) -> Resp {
        self.read_response(false)
    }

    /// Reads one response; a response to `HEAD` has no body whatever its `Content-Length`.
    pub fn read_response(&mut self, head_request: bool) -> Resp {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).unwrap_or_else(|e| {
                panic!("reading a response head: {e}; so far: {head:?}");
            });
            assert!(n > 0, "connection closed inside a response head: {head:?}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let head = head.trim_end().to_owned();
        assert!(head.starts_with("HTTP/1.1 "), "not a response head: {head:?}");
        let status = crate::common::status(&head);
        let mut resp = Resp { head, status, body: Vec::new() };
        if head_request {
            return resp;
        }
        match resp.header("content-length") {
            Some(n) => {
                let mut body = vec![0u8; n.parse().unwrap()];
                self.r.read_exact(&mut body).unwrap();
                resp.body = body;
            }
            None if resp.closes() => {
                let _ = self.r.read_to_end(&mut resp.body);
            }
            None => {}
        }
        resp
    }

    /// Sends a request (with `Host` and, for a body, `Content-Length` added) and reads the
    /// response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Resp {
        self.send(&build(method, target, headers, body));
        self.read_response(method == "HEAD")
    }

    /// Asserts that the server closes the connection within `within`, sending nothing more.
    pub fn expect_eof(&mut self, within: Duration) {
        let buffered = self.r.buffer().to_vec();
        assert!(buffered.is_empty(), "bytes after the response: {buffered:?}");
        crate::common::expect_eof(self.r.get_mut(), within);
    }

    /// Reads exactly `buf.len()` bytes, whatever they are (an interim response, say).
    pub fn read_raw(&mut self, buf: &mut [u8]) {
        self.r.read_exact(buf).unwrap();
    }

    /// Half-closes: the server sees EOF after what was sent.
    pub fn shutdown_write(&mut self) {
        self.r.get_mut().shutdown(std::net::Shutdown::Write).unwrap();
    }
}

/// The bytes of a request.
pub fn build(method: &str, target: &str, headers: &[&str], body: Option<&[u8]>) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// `GET target` on a fresh connection.
pub fn get(addr: SocketAddr, target: &str) -> Resp {
    Http::connect(addr).request("GET", target, &["Connection: close"], None)
}

/// `POST target` with `body` on a fresh connection.
pub fn post(addr: SocketAddr, target: &str, headers: &[&str], body: &[u8]) -> Resp {
    let mut all = vec!["Connection: close"];
    all.extend_from_slice(headers);
    Http::connect(addr).request("POST", target, &all, Some(body))
}

/// Publishes `data` to `channel` over HTTP and returns its sequence number.
pub fn publish(http: &mut Http, channel: &str, data: &str) -> u64 {
    let r = http.request(
        "POST",
        &format!("/api/channels/{channel}/publish"),
        &[],
        Some(data.as_bytes()),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.json().get("seq").and_then(Value::as_u64).unwrap_or_else(|| panic!("no seq: {r:?}"))
}

/// A field of a JSON object as a `u64`, failing the test if it is missing.
pub fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("no u64 {key:?} in {v}"))
}

/// One block of an event stream (the lines up to a blank line), parsed.
#[derive(Debug, Default, Clone)]
pub struct Block {
    pub id: Option<String>,
    pub event: Option<String>,
    /// The `data:` lines, in order.
    pub data: Vec<String>,
    pub retry: Option<String>,
    /// Comment lines (`: ping`), without the colon.
    pub comments: Vec<String>,
}

impl Block {
    /// The event's data: its `data:` lines joined with newlines, as an `EventSource` does.
    pub fn data(&self) -> String {
        self.data.join("\n")
    }

    /// The data parsed as JSON (a hub `message` event).
    pub fn json(&self) -> Value {
        json::parse(self.data().as_bytes())
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {self:?}"))
    }

    /// The `id:` as a number.
    pub fn seq(&self) -> u64 {
        self.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("no id: {self:?}"))
    }
}

/// A server-sent-events client: the response head, then blocks.
pub struct Sse {
    r: BufReader<TcpStream>,
    pub head: String,
}

impl Sse {
    /// `GET target` with `headers`, asserting a `200 text/event-stream` answer.
    pub fn open(addr: SocketAddr, target: &str, headers: &[&str]) -> Self {
        let mut h = Http::connect(addr);
        h.send(&build("GET", target, headers, None));
        let resp = h.read_response(true);
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("content-type"), Some("text/event-stream"), "{resp:?}");
        Self { r: h.r, head: resp.head }
    }

    /// The socket, to drop it or read it raw.
    pub fn socket(&mut self) -> &mut TcpStream {
        self.r.get_mut()
    }

    /// The next block, or `None` at EOF (a reset counts as EOF: the server dropped us).
    pub fn block(&mut self) -> Option<Block> {
        let mut b = Block::default();
        let mut any = false;
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading an event stream: {e}; block so far: {b:?}"),
            }
            if !line.ends_with('\n') {
                // EOF inside a line: the block is incomplete, and dropped (as EventSource does).
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if any {
                    return Some(b);
                }
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "" => b.comments.push(value),
                "id" => b.id = Some(value),
                "event" => b.event = Some(value),
                "data" => b.data.push(value),
                "retry" => b.retry = Some(value),
                other => panic!("unknown field {other:?} in an event stream"),
            }
        }
    }

    /// The next block that carries data (skipping `retry:` and `: ping` blocks).
    pub fn event(&mut self) -> Block {
        loop {
            let b = self.block().expect("the event stream ended");
            if !b.data.is_empty() {
                return b;
            }
        }
    }

    /// Reads blocks to EOF (bounded by `within` in all) and returns the data-carrying ones.
    pub fn rest(&mut self, within: Duration) -> Vec<Block> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while let Some(b) = self.block() {
            assert!(Instant::now() < deadline, "no EOF within {within:?}");
            if !b.data.is_empty() {
                out.push(b);
            }
        }
        out
    }
}
