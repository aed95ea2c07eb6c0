//! A connection's life and the server's: keepalive pings and the pong deadline, the handshake
//! and idle timeouts, and graceful shutdown on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
#[path = "common/http.rs"]
mod http;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Client = WebSocket<MaybeTlsStream<TcpStream>>;

fn client(addr: SocketAddr, read_timeout: Duration) -> Client {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/echo")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(read_timeout)).unwrap();
    }
    ws
}

fn keepalive_config() -> weir::server::Config {
    let mut c = common::config();
    c.ws.ping_interval = Some(Duration::from_millis(200));
    c.ws.pong_timeout = Duration::from_millis(300);
    c
}

#[test]
fn silent_client_is_pinged_then_closed_1001_at_the_pong_deadline() {
    let addr = common::start(keepalive_config());
    let mut s = common::upgraded(addr);
    let start = Instant::now();
    let ping = common::read_frame(&mut s).expect("EOF before a ping");
    assert_eq!(ping.b0, 0x89, "expected a ping first, got {ping:?}");
    let pinged = start.elapsed();
    let close = common::read_frame(&mut s).expect("EOF before the close frame");
    assert_eq!(close.b0, 0x88, "expected a close frame, got {close:?}");
    assert_eq!(close.close_code(), 1001);
    let closed = start.elapsed();
    common::expect_eof(&mut s, Duration::from_secs(2));
    assert!(pinged >= Duration::from_millis(150), "pinged too early: {pinged:?}");
    assert!(
        closed - pinged >= Duration::from_millis(250),
        "closed {:?} after the ping, before the pong timeout",
        closed - pinged
    );
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[test]
fn client_answering_pings_stays_open() {
    let addr = common::start(keepalive_config());
    // tungstenite queues a pong for each ping it reads and writes it on the next read.
    let mut ws = client(addr, Duration::from_millis(50));
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        match ws.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("connection failed after {:?}: {e}", start.elapsed()),
        }
    }
    assert!(pings >= 3, "only {pings} pings in 1.5 s at a 200 ms interval");
    ws.send(Message::text("still open")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no echo");
        match ws.read() {
            Ok(Message::Ping(_)) => {}
            Ok(m) => {
                assert_eq!(m, Message::text("still open"));
                break;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn slow_handshake_is_cut_at_the_handshake_timeout() {
    let mut config = common::config();
    config.ws.handshake_timeout = Some(Duration::from_secs(1));
    let addr = common::start(config);
    let mut s = common::raw(addr);
    // One byte every 300 ms: the wait between bytes is a read, which also sees the EOF.
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let start = Instant::now();
    let head = common::UPGRADE.as_bytes();
    let mut sent = 0;
    let closed_at = loop {
        assert!(sent < head.len(), "the whole head went through");
        if s.write_all(&head[sent..=sent]).is_err() {
            break start.elapsed(); // the server is gone
        }
        sent += 1;
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => break start.elapsed(),
            Ok(n) => panic!("unexpected answer: {:?}", String::from_utf8_lossy(&b[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break start.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        closed_at >= Duration::from_millis(800) && closed_at <= Duration::from_secs(3),
        "closed after {closed_at:?} ({sent} bytes sent)"
    );
}

#[test]
fn idle_connection_is_closed_1001() {
    let mut config = common::config();
    config.ws.ping_interval = None;
    config.ws.idle_timeout = Some(Duration::from_millis(300));
    let addr = common::start(config);
    let mut s = common::upgraded(addr);
    let start = Instant::now();
    // A ping is not data: it does not keep the connection from being idle.
    s.write_all(&common::frame(0x89, b"")).unwrap();
    let pong = common::read_frame(&mut s).unwrap();
    assert_eq!(pong.b0, 0x8A);
    let f = common::read_frame(&mut s).expect("EOF before the close frame");
    let took = start.elapsed();
    assert_eq!(f.b0, 0x88, "expected a close frame, got {f:?}");
    assert_eq!(f.close_code(), 1001);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "idle close after {took:?}"
    );
    // The close handshake completes when we answer.
    s.write_all(&common::close_frame(1001, "")).unwrap();
    common::expect_eof(&mut s, Duration::from_secs(2));
}

#[test]
fn data_keeps_a_connection_from_going_idle() {
    let mut config = common::config();
    config.ws.ping_interval = None;
    config.ws.idle_timeout = Some(Duration::from_millis(300));
    let addr = common::start(config);
    let mut ws = client(addr, Duration::from_secs(10));
    // Ten messages 100 ms apart: 1 s in all, over three idle timeouts.
    for i in 0..10 {
        let m = Message::text(format!("{i}"));
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
        std::thread::sleep(Duration::from_millis(100)); // the pace of the test, not a lock
    }
}

/// Reads from a tungstenite client until its connection closes; returns the close code the
/// server sent, answering it (tungstenite does that on read).
fn read_to_close(ws: &mut Client) -> Option<CloseCode> {
    let mut code = None;
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => code = f.map(|f| f.code),
            Ok(Message::Ping(_)) => {}
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::ConnectionClosed) => return code,
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
}

#[test]
fn sigterm_closes_every_client_1001_and_exits_0() {
    let mut bin = common::Binary::start(&["--shutdown-timeout", "10s"]);
    let mut clients: Vec<_> = (0..5).map(|_| client(bin.addr, Duration::from_secs(10))).collect();
    for ws in &mut clients {
        ws.send(Message::text("hi")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hi"));
    }
    let start = Instant::now();
    bin.sigterm();
    for ws in &mut clients {
        assert_eq!(read_to_close(ws), Some(CloseCode::Away));
    }
    drop(clients);
    let status = bin.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}; log:\n{}", bin.log());
    // Everyone answered: the server does not wait out its shutdown timeout.
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(bin.log().contains("shutdown complete"), "{}", bin.log());
}

#[test]
fn sigterm_exits_0_at_the_shutdown_timeout_if_a_client_never_answers() {
    let mut bin = common::Binary::start(&["--shutdown-timeout", "1s"]);
    let mut good = client(bin.addr, Duration::from_secs(10));
    let mut mute = common::upgraded(bin.addr);
    let start = Instant::now();
    bin.sigterm();
    assert_eq!(common::expect_close(&mut mute), 1001);
    assert_eq!(read_to_close(&mut good), Some(CloseCode::Away));
    drop(good);
    let status = bin.wait_exit(Duration::from_secs(5));
    let took = start.elapsed();
    assert!(status.success(), "{status:?}; log:\n{}", bin.log());
    assert!(
        took >= Duration::from_millis(800),
        "exited after {took:?}, before the shutdown timeout"
    );
    // The mute client's connection is gone with the process.
    let mut rest = Vec::new();
    mute.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    match mute.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{rest:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn after_sigterm_new_connections_are_refused() {
    let mut bin = common::Binary::start(&["--shutdown-timeout", "3s"]);
    let mut mute = common::upgraded(bin.addr);
    bin.sigterm();
    assert_eq!(common::expect_close(&mut mute), 1001);
    // The listener is closed: a new connection is refused (or, if it raced in, gets nothing
    // but a close).
    match TcpStream::connect(bin.addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(common::UPGRADE.as_bytes());
            let mut b = Vec::new();
            let _ = s.read_to_end(&mut b);
            assert!(!String::from_utf8_lossy(&b).contains(" 101 "), "upgraded while draining");
        }
    }
    mute.write_all(&common::close_frame(1001, "")).unwrap();
    let status = bin.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
}

#[test]
fn unanswered_server_close_ends_at_the_close_timeout() {
    let mut config = common::config();
    config.ws.ping_interval = None;
    config.ws.idle_timeout = Some(Duration::from_millis(200));
    config.ws.close_timeout = Duration::from_millis(500);
    let addr = common::start(config);
    let mut s = common::upgraded(addr);
    assert_eq!(common::expect_close(&mut s), 1001);
    // We never answer: the server gives up on the close handshake at its close timeout.
    let took = common::expect_eof(&mut s, Duration::from_secs(5));
    assert!(took >= Duration::from_millis(400), "closed {took:?} after its close frame");
    assert!(took < Duration::from_secs(3), "closed {took:?} after its close frame");
}

/// RFC 6455 §5.5.1: once weir has received and sent a close frame it closes the TCP connection
/// (first, §7.1.1) and forgets it at once; a client that keeps its socket open does not hold a
/// connection until the close timeout.
#[test]
fn a_clean_close_handshake_releases_the_connection_at_once() {
    let b = common::Binary::start(&["--close-timeout", "60s"]);
    let open = || {
        let v = http::get(b.addr, "/api/stats").json();
        v.get("connections").and_then(weir::json::Value::as_u64).unwrap()
    };
    let mut s = common::upgraded(b.addr);
    assert_eq!(open(), 1);
    s.write_all(&common::frame(0x88, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(common::expect_close(&mut s), 1000);
    common::expect_eof(&mut s, Duration::from_secs(5));
    // `s` stays open on this side: no FIN from the client.
    let released = common::eventually(Duration::from_secs(5), || (open() == 0).then_some(()));
    assert!(released.is_some(), "still counted open: it lingers for the client's FIN");
    drop(s);
}

/// RFC 6455 §5.5.1: the answer to a client's close echoes its code, and weir echoes the reason
/// too, as Node `ws` and python `websockets` do (clients check it).
#[test]
fn a_clients_close_is_echoed_with_its_code_and_reason() {
    let b = common::Binary::start(&[]);
    for (path, code, reason) in
        [("/echo", 4001u16, "done here"), ("/ws", 1000, "bye"), ("/echo", 1001, "")]
    {
        let (mut s, head) = http_upgrade(b.addr, path);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(&common::close_frame(code, reason)).unwrap();
        let close = loop {
            let f = common::read_frame(&mut s).expect("EOF before the close echo");
            if f.opcode() == 0x8 {
                break f;
            }
        };
        let mut want = code.to_be_bytes().to_vec();
        want.extend_from_slice(reason.as_bytes());
        assert_eq!(close.payload, want, "{path}: {}", String::from_utf8_lossy(&close.payload));
        common::expect_eof(&mut s, Duration::from_secs(5));
    }
}

/// An upgrade of `path` on a fresh connection: the socket and the response head.
fn http_upgrade(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut s = common::raw(addr);
    s.write_all(common::UPGRADE.replace("/echo", path).as_bytes()).unwrap();
    let head = common::read_head(&mut s);
    (s, head)
}
