//! Plain outbound TCP connections in the runtime (`Context::connect_tcp`), against a real TCP
//! peer (a std listener in the test): bytes both ways, half-close either way, a refused
//! connect, a reset, the queue cap with `on_drained`, and paused reading.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use weir::proto::connection::MessageKind;
use weir::server::{ConnId, ConnectError, Context, Handler, InputError, Server, Waker};

const WAIT: Duration = Duration::from_secs(10);

/// What the test asks the handler to do (on the loop's thread, after a wake-up).
enum Cmd {
    Connect(SocketAddr),
    Write(Vec<u8>),
    /// Writes `chunk` bytes at a time until the queue refuses one.
    Fill(usize),
    ShutdownWrite,
    Close,
    Pause,
    Resume,
    NotifyDrained,
    Mark,
}

/// What the handler saw, in order.
#[derive(Debug, PartialEq)]
enum Ev {
    Connected,
    Failed(String),
    Data(Vec<u8>),
    Eof,
    Closed(Option<ErrorKind>),
    Written(Result<(), InputError>),
    /// `Fill`: bytes accepted, the refusal, and the queue then.
    Filled(usize, InputError, usize),
    Drained,
    Mark,
}

struct Probe {
    cmds: mpsc::Receiver<Cmd>,
    events: mpsc::Sender<Ev>,
    id: Option<ConnId>,
}

impl Handler for Probe {
    fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, _: MessageKind, _: &[u8]) {}

    fn on_wake(&mut self, ctx: &mut Context<'_>) {
        while let Ok(cmd) = self.cmds.try_recv() {
            let id = self.id;
            match (cmd, id) {
                (Cmd::Connect(addr), _) => self.id = Some(ctx.connect_tcp(addr).unwrap()),
                (Cmd::Write(b), Some(id)) => self.send(Ev::Written(ctx.tcp_write(id, &b))),
                (Cmd::Fill(chunk), Some(id)) => {
                    let piece = vec![b'x'; chunk];
                    let mut n = 0;
                    let refused = loop {
                        match ctx.tcp_write(id, &piece) {
                            Ok(()) => n += chunk,
                            Err(e) => break e,
                        }
                    };
                    self.send(Ev::Filled(n, refused, ctx.queued_bytes(id)));
                }
                (Cmd::ShutdownWrite, Some(id)) => ctx.tcp_shutdown_write(id),
                (Cmd::Close, Some(id)) => ctx.tcp_close(id),
                (Cmd::Pause, Some(id)) => ctx.pause_reading(id),
                (Cmd::Resume, Some(id)) => ctx.resume_reading(id),
                (Cmd::NotifyDrained, Some(id)) => ctx.notify_drained(id, 0),
                (Cmd::Mark, _) => self.send(Ev::Mark),
                (_, None) => panic!("no connection yet"),
            }
        }
    }

    fn on_tcp_connected(&mut self, _: &mut Context<'_>, _: ConnId) {
        self.send(Ev::Connected);
    }

    fn on_connect_failed(&mut self, _: &mut Context<'_>, _: ConnId, e: &ConnectError) {
        self.send(Ev::Failed(e.to_string()));
    }

    fn on_tcp_data(&mut self, _: &mut Context<'_>, _: ConnId, bytes: &[u8]) {
        self.send(Ev::Data(bytes.to_vec()));
    }

    fn on_tcp_eof(&mut self, _: &mut Context<'_>, _: ConnId) {
        self.send(Ev::Eof);
    }

    fn on_tcp_closed(&mut self, _: &mut Context<'_>, _: ConnId, e: Option<&std::io::Error>) {
        self.send(Ev::Closed(e.map(std::io::Error::kind)));
    }

    fn on_drained(&mut self, _: &mut Context<'_>, _: ConnId) {
        self.send(Ev::Drained);
    }
}

impl Probe {
    fn send(&self, ev: Ev) {
        let _ = self.events.send(ev);
    }
}

/// A server running the probe, and the test's ends of its channels.
struct Rig {
    cmds: mpsc::Sender<Cmd>,
    events: mpsc::Receiver<Ev>,
    waker: Arc<Waker>,
}

impl Rig {
    fn start(queue_cap: usize) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (waker_tx, waker_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let config = weir::server::Config { queue_cap, ..common::config() };
            let probe = Probe { cmds: cmd_rx, events: ev_tx, id: None };
            let server = Server::bind(config, probe).unwrap();
            waker_tx.send(server.waker()).unwrap();
            server.run().unwrap();
        });
        let waker = waker_rx.recv_timeout(WAIT).unwrap();
        Self { cmds: cmd_tx, events: ev_rx, waker }
    }

    fn cmd(&self, c: Cmd) {
        self.cmds.send(c).unwrap();
        self.waker.wake().unwrap();
    }

    fn next(&self) -> Ev {
        self.events.recv_timeout(WAIT).expect("an event from the handler")
    }

    /// Gathers `Data` events until `n` bytes came; any other event first fails.
    fn data(&self, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < n {
            match self.next() {
                Ev::Data(b) => got.extend_from_slice(&b),
                other => panic!("{other:?} after {} of {n} bytes", got.len()),
            }
        }
        got
    }

    /// Connects to a fresh listener and returns the peer's end.
    fn connected(&self) -> TcpStream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        self.cmd(Cmd::Connect(l.local_addr().unwrap()));
        let (peer, _) = l.accept().unwrap();
        peer.set_read_timeout(Some(WAIT)).unwrap();
        assert_eq!(self.next(), Ev::Connected);
        peer
    }
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

#[test]
fn bytes_go_both_ways_and_this_end_half_closes() {
    let rig = Rig::start(1 << 20);
    let mut peer = rig.connected();
    rig.cmd(Cmd::Write(b"hello".to_vec()));
    assert_eq!(rig.next(), Ev::Written(Ok(())));
    assert_eq!(read_n(&mut peer, 5), b"hello");
    peer.write_all(b"world").unwrap();
    assert_eq!(rig.data(5), b"world");
    // Half-close: the peer sees EOF and may still send.
    rig.cmd(Cmd::ShutdownWrite);
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
    rig.cmd(Cmd::Write(b"late".to_vec()));
    assert_eq!(rig.next(), Ev::Written(Err(InputError::Closed)));
    peer.write_all(b"after").unwrap();
    assert_eq!(rig.data(5), b"after");
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rig.next(), Ev::Eof);
    assert_eq!(rig.next(), Ev::Closed(None));
}

#[test]
fn the_peer_half_closes_and_still_reads_the_answer() {
    let rig = Rig::start(1 << 20);
    let mut peer = rig.connected();
    peer.write_all(b"question").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rig.data(8), b"question");
    assert_eq!(rig.next(), Ev::Eof);
    rig.cmd(Cmd::Write(b"answer".to_vec()));
    assert_eq!(rig.next(), Ev::Written(Ok(())));
    rig.cmd(Cmd::ShutdownWrite);
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer");
    assert_eq!(rig.next(), Ev::Closed(None));
}

#[test]
fn a_refused_connect_is_reported_as_a_failed_connect() {
    let rig = Rig::start(1 << 20);
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // The listener is gone: nothing listens there now.
    rig.cmd(Cmd::Connect(addr));
    match rig.next() {
        Ev::Failed(e) => assert!(e.contains("refused"), "{e}"),
        other => panic!("{other:?}"),
    }
    rig.cmd(Cmd::Mark);
    assert_eq!(rig.next(), Ev::Mark, "nothing after the failed connect");
}

#[test]
fn a_reset_from_the_peer_ends_the_connection_with_its_error() {
    let rig = Rig::start(1 << 20);
    let peer = rig.connected();
    rig.cmd(Cmd::Write(b"unread".to_vec()));
    assert_eq!(rig.next(), Ev::Written(Ok(())));
    // Closing a socket with unread bytes resets the connection (RFC 9293 §3.6.1 / RFC 2525 §2.17).
    let mut b = [0u8; 6];
    while peer.peek(&mut b).unwrap() < 6 {}
    drop(peer);
    assert_eq!(rig.next(), Ev::Closed(Some(ErrorKind::ConnectionReset)));
}

#[test]
fn a_write_past_the_queue_cap_is_refused_and_drained_is_told() {
    let cap = 256 << 10;
    let rig = Rig::start(cap);
    let mut peer = rig.connected();
    // The peer reads nothing: the socket buffers fill, then the queue.
    rig.cmd(Cmd::Fill(16 << 10));
    let Ev::Filled(accepted, InputError::Full, queued) = rig.next() else { panic!("not filled") };
    assert!(queued <= cap, "{queued} queued, cap {cap}");
    assert!(queued > cap - (16 << 10), "{queued} queued, cap {cap}");
    rig.cmd(Cmd::NotifyDrained);
    let got = read_n(&mut peer, accepted);
    assert!(got.iter().all(|&b| b == b'x'));
    assert_eq!(rig.next(), Ev::Drained);
    rig.cmd(Cmd::Write(b"more".to_vec()));
    assert_eq!(rig.next(), Ev::Written(Ok(())));
    assert_eq!(read_n(&mut peer, 4), b"more");
}

#[test]
fn a_paused_connection_is_not_read_until_resumed() {
    let rig = Rig::start(1 << 20);
    let mut peer = rig.connected();
    rig.cmd(Cmd::Pause);
    peer.write_all(b"held").unwrap();
    // A window for a read that should not happen to show (the test passes without it too).
    std::thread::sleep(Duration::from_millis(200));
    rig.cmd(Cmd::Mark);
    assert_eq!(rig.next(), Ev::Mark, "read while paused");
    rig.cmd(Cmd::Resume);
    assert_eq!(rig.data(4), b"held");
    rig.cmd(Cmd::Close);
    assert_eq!(rig.next(), Ev::Closed(None));
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
}
