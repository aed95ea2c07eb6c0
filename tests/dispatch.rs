//! The runtime hands a handler back the tag it gave a connection or a process, in every
//! callback about it (closed and exited ones included), and what a callback makes (an outbound
//! connection, a child process) inherits the tag of what the callback is about.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{close_frame, eventually, frame, raw, read_frame, read_head};
use std::io::Write;
use weir::proto::{CloseCode, MessageKind};
use weir::server::{
    ConnId, ConnectError, ConnectRequest, Connected, Context, Decision, Handler, ProcId, Request,
    Server, Stream, Tag,
};

/// Tags connections by path (`/t/N` gets `Tag(N)`) and reports what it is handed back.
#[derive(Default)]
struct Tagged {
    /// What the callbacks saw: `callback id-tag`.
    seen: Arc<Mutex<Vec<String>>>,
    /// Who asked for an outbound connection or a process (answered when it reports).
    asker: Option<ConnId>,
}

impl Tagged {
    fn saw(&self, what: String) {
        self.seen.lock().unwrap().push(what);
    }

    fn tell(&self, ctx: &mut Context<'_>, what: String) {
        if let Some(a) = self.asker {
            let _ = ctx.send(a, MessageKind::Text, what.as_bytes());
        }
    }
}

impl Handler for Tagged {
    fn on_upgrade(&mut self, ctx: &mut Context<'_>, req: &Request<'_>) -> Decision {
        let n = req.path.strip_prefix("/t/").and_then(|n| n.parse().ok()).unwrap_or(0);
        ctx.set_tag(req.id, Tag(n));
        Decision::accept()
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        self.saw(format!("open {}", ctx.tag(id).0));
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, _kind: MessageKind, data: &[u8]) {
        self.asker = Some(id);
        match data {
            b"connect" | b"connect-as-7" => {
                if data == b"connect-as-7" {
                    ctx.tag_new(Tag(7));
                }
                let addr = ctx.local_addr(id).unwrap();
                let req = ConnectRequest {
                    addr,
                    host: "localhost".into(),
                    target: "/t/0".into(),
                    protocols: Vec::new(),
                    headers: Vec::new(),
                    timeout: None,
                };
                ctx.connect(req).unwrap();
            }
            b"spawn" => {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", "echo out"]);
                ctx.spawn(cmd).unwrap();
            }
            _ => {
                let answer = format!("tag {}", ctx.tag(id).0);
                let _ = ctx.send(id, MessageKind::Text, answer.as_bytes());
            }
        }
    }

    fn on_connected(&mut self, ctx: &mut Context<'_>, id: ConnId, _up: &Connected<'_>) {
        self.tell(ctx, format!("connected {}", ctx.tag(id).0));
    }

    fn on_connect_failed(&mut self, ctx: &mut Context<'_>, id: ConnId, e: &ConnectError) {
        self.tell(ctx, format!("connect failed {} {e}", ctx.tag(id).0));
    }

    fn on_process_output(&mut self, ctx: &mut Context<'_>, id: ProcId, _s: Stream, _d: &[u8]) {
        self.tell(ctx, format!("output {}", ctx.process_tag(id).0));
    }

    fn on_process_exit(&mut self, ctx: &mut Context<'_>, id: ProcId, _status: ExitStatus) {
        self.tell(ctx, format!("exit {}", ctx.process_tag(id).0));
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, id: ConnId, _code: CloseCode, _reason: &str) {
        self.saw(format!("close {}", ctx.tag(id).0));
    }
}

fn start() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Tagged { seen: Arc::clone(&seen), asker: None };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::bind(common::config(), handler).unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        server.run().unwrap();
    });
    (rx.recv_timeout(Duration::from_secs(10)).unwrap(), seen)
}

fn open(addr: SocketAddr, path: &str) -> std::net::TcpStream {
    let mut s = raw(addr);
    let req = common::UPGRADE.replacen("GET /echo ", &format!("GET {path} "), 1);
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

fn ask(s: &mut std::net::TcpStream, what: &[u8]) -> String {
    s.write_all(&frame(0x81, what)).unwrap();
    let f = read_frame(s).expect("an answer");
    String::from_utf8(f.payload).unwrap()
}

#[test]
fn every_callback_about_a_connection_gets_its_tag_back() {
    let (addr, seen) = start();
    let mut s = open(addr, "/t/3");
    assert_eq!(ask(&mut s, b"which"), "tag 3");
    s.write_all(&close_frame(1000, "")).unwrap();
    let close = read_frame(&mut s).expect("the close echo");
    assert_eq!(close.close_code(), 1000);
    let saw = eventually(Duration::from_secs(5), || {
        let v = seen.lock().unwrap().clone();
        v.iter().any(|l| l.starts_with("close")).then_some(v)
    })
    .expect("on_close ran");
    assert_eq!(saw, ["open 3", "close 3"], "a closed connection's tag is handed back too");
}

#[test]
fn an_outbound_connection_inherits_the_tag_of_the_one_that_made_it() {
    let (addr, _) = start();
    let mut s = open(addr, "/t/4");
    assert_eq!(ask(&mut s, b"connect"), "connected 4");
    assert_eq!(ask(&mut s, b"connect-as-7"), "connected 7", "tag_new overrides the inheritance");
}

#[test]
fn a_process_inherits_the_tag_and_gets_it_back_after_it_exits() {
    let (addr, _) = start();
    let mut s = open(addr, "/t/5");
    assert_eq!(ask(&mut s, b"spawn"), "output 5");
    let f = read_frame(&mut s).expect("the exit");
    assert_eq!(String::from_utf8(f.payload).unwrap(), "exit 5");
}
