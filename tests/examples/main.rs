//! The source systems as programs on the library (examples/): each one run as its own process
//! and spoken to with its own system's frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/http.rs"]
mod http;

mod agent_control;
mod checkpoints;
mod dashboard_events;
mod event_server;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::Binary;
use common::example::example;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};
use weir::json::{self, Value};

/// How long any single read may wait.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts example `name` on a free port with `args` after the address and `env` set.
fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Binary {
    let mut cmd = Command::new(example(name));
    cmd.arg("127.0.0.1:0").args(args).envs(env.iter().copied());
    Binary::spawn(cmd)
}

/// A WebSocket client of an example: text frames in, parsed JSON out.
struct Ws {
    ws: WebSocket<TcpStream>,
}

impl Ws {
    /// Connects to `path` with extra header fields; the handshake's error if refused.
    fn connect(
        addr: SocketAddr,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, tungstenite::Error> {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        for (name, value) in headers {
            req.headers_mut().insert(*name, HeaderValue::from_str(value).unwrap());
        }
        match tungstenite::client::client(req, stream) {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("handshake timed out"),
        }
    }

    /// Connects to `path`, which must accept.
    fn open(addr: SocketAddr, path: &str) -> Self {
        Self::connect(addr, path, &[]).unwrap_or_else(|e| panic!("connecting to {path}: {e}"))
    }

    fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).unwrap();
    }

    /// The next text frame, parsed (pings are answered by tungstenite and skipped).
    fn next(&mut self) -> Value {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return json::parse(t.as_bytes())
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", t.as_str()));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!("expected a text frame, got {other:?}"),
                Err(e) => panic!("reading a frame: {e}"),
            }
        }
    }

    /// The server's close code, text frames before it skipped; fails on EOF or a timeout.
    fn close_code(&mut self) -> u16 {
        loop {
            match self.ws.read() {
                Ok(Message::Close(f)) => return f.map_or(1005, |f| u16::from(f.code)),
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }
}

/// The refused handshake's status.
fn refused(r: Result<Ws, tungstenite::Error>) -> u16 {
    match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("refused otherwise: {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// A member of an object as text, failing the test if it is missing or not a string.
fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

/// Parses JSON text written by a test.
fn parse(text: &str) -> Value {
    json::parse(text.as_bytes()).unwrap()
}

/// A client that upgrades `path` (with extra header lines) and then never answers: after the
/// first text frame (the greeting) the server pings it and, with no pong, closes with 1001.
fn silent_client_is_pinged_then_dropped(addr: SocketAddr, path: &str, extra: &[&str]) {
    let mut s = common::raw(addr);
    let mut upgrade = common::UPGRADE.replace("/echo", path);
    for line in extra {
        upgrade.insert_str(upgrade.len() - 2, &format!("{line}\r\n"));
    }
    s.write_all(upgrade.as_bytes()).unwrap();
    let head = common::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let greeting = common::read_frame(&mut s).unwrap();
    assert_eq!(greeting.opcode(), 0x1, "{greeting:?}");
    let ping = common::read_frame(&mut s).unwrap();
    assert_eq!(ping.opcode(), 0x9, "{ping:?}");
    assert_eq!(common::expect_close(&mut s), 1001);
}
