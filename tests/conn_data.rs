//! The handler's data per connection (`Handler<D>`, `Context::data`): made with the connection,
//! reached by id from any callback (another connection's message, a tick, `on_close`), dropped
//! after the connection's last callback, and fresh for the next connection in the same slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{close_frame, eventually, frame, raw, read_frame, read_head};
use weir::proto::{CloseCode, MessageKind};
use weir::server::{ConnId, Context, Decision, Handler, Request, Server};

/// A connection's data.
#[derive(Default)]
struct Seat {
    name: String,
    messages: u32,
    ticked: bool,
    /// A clone of `Keeper::alive` while the data exists.
    alive: Option<Rc<()>>,
}

#[derive(Default)]
struct Keeper {
    ids: Vec<ConnId>,
    alive: Rc<()>,
    /// What `on_close` read from the closed connection's data.
    closed: Arc<Mutex<Vec<String>>>,
}

impl Handler<Seat> for Keeper {
    fn on_upgrade(&mut self, ctx: &mut Context<'_, Seat>, req: &Request<'_>) -> Decision {
        let seat = ctx.data(req.id).unwrap();
        // A slot used before starts over: nothing of its last connection is left.
        let fresh = seat.name.is_empty() && seat.messages == 0 && seat.alive.is_none();
        seat.name = format!("{}{}", req.path.trim_start_matches('/'), if fresh { "" } else { "!" });
        seat.alive = Some(Rc::clone(&self.alive));
        self.ids.push(req.id);
        Decision::accept()
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Seat>, id: ConnId, _: MessageKind, d: &[u8]) {
        ctx.data(id).unwrap().messages += u32::from(d == b"x");
        let answer = match d {
            // Every connection's data, reached by id from this one's callback.
            b"all" => {
                let ids = self.ids.clone();
                let seat = |s: &mut Seat| format!("{}={}", s.name, s.messages);
                let seats: Vec<String> =
                    ids.into_iter().filter_map(|i| ctx.data(i).map(seat)).collect();
                seats.join(" ")
            }
            b"ticked" => ctx.data(id).unwrap().ticked.to_string(),
            b"alive" => (Rc::strong_count(&self.alive) - 1).to_string(),
            _ => String::new(),
        };
        let _ = ctx.send(id, MessageKind::Text, answer.as_bytes());
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, Seat>) {
        for &id in &self.ids {
            if let Some(seat) = ctx.data(id) {
                seat.ticked = true;
            }
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_, Seat>, id: ConnId, _: CloseCode, _: &str) {
        let seat = ctx.data(id).expect("on_close still has the data");
        let line = format!("{} after {}", seat.name, seat.messages);
        self.closed.lock().unwrap().push(line);
        self.ids.retain(|&i| i != id);
    }
}

fn start() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let closed = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&closed);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let keeper = Keeper { closed: seen, ..Keeper::default() };
        let server = Server::bind(common::config(), keeper).unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        server.run().unwrap();
    });
    (rx.recv_timeout(Duration::from_secs(10)).unwrap(), closed)
}

fn open(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = raw(addr);
    let req = common::UPGRADE.replacen("GET /echo ", &format!("GET {path} "), 1);
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

fn ask(s: &mut TcpStream, what: &str) -> String {
    s.write_all(&frame(0x81, what.as_bytes())).unwrap();
    String::from_utf8(read_frame(s).expect("an answer").payload).unwrap()
}

#[test]
fn each_connection_has_its_data_from_upgrade_to_close_reachable_from_every_callback() {
    let (addr, closed) = start();
    let mut a = open(addr, "/a");
    let mut b = open(addr, "/b");
    ask(&mut a, "x");
    ask(&mut a, "x");
    ask(&mut b, "x");
    assert_eq!(ask(&mut b, "all"), "a=2 b=1", "one connection reads the other's data");
    let ticked =
        eventually(Duration::from_secs(5), || (ask(&mut a, "ticked") == "true").then_some(()));
    assert!(ticked.is_some(), "on_tick reaches a connection's data by its id");
    assert_eq!(ask(&mut b, "alive"), "2");

    a.write_all(&close_frame(1000, "")).unwrap();
    assert_eq!(read_frame(&mut a).expect("the close echo").close_code(), 1000);
    let line = eventually(Duration::from_secs(5), || closed.lock().unwrap().first().cloned());
    assert_eq!(line.as_deref(), Some("a after 2"), "on_close reads the data of the connection");
    // Dropped once its last callback returned: `b` holds the only clone now.
    assert_eq!(ask(&mut b, "alive"), "1");
    assert_eq!(ask(&mut b, "all"), "b=1");

    // The next connection takes the freed slot, and starts from `Seat::default()`.
    let mut c = open(addr, "/c");
    assert_eq!(ask(&mut c, "all"), "b=1 c=0");
    assert_eq!(ask(&mut b, "alive"), "2");
}
