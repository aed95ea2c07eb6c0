//! Limits: slow readers are cut off at the queue cap without hurting anyone else, and the
//! connection limits (total and per IP) refuse with 503 and `Retry-After`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::Message;

/// A flood of echo requests from a client that never reads: message `i` of a sequence.
type Payload = fn(u32) -> Vec<u8>;

/// The most messages a slow reader sends: far more than the socket buffers and the queue cap
/// hold.
const SLOW_BYTES: usize = 12 << 20;

/// 64 KiB messages: each is queued as a header piece and a payload piece.
fn big(i: u32) -> Vec<u8> {
    numbered(i, 64 << 10)
}

/// Fifteen 1000-byte messages (coalesced in one leased buffer) and then one of 20,000 bytes
/// (over the buffer size: its header joins the small ones, its payload is a piece of its own).
fn mixed(i: u32) -> Vec<u8> {
    numbered(i, if i % 16 == 15 { 20_000 } else { 1000 })
}

fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut p = vec![(i % 251) as u8; len];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}

/// Sends echo requests without reading; returns how many were sent and when it stopped.
fn flood(s: &mut TcpStream, payload: Payload) -> (u32, Instant) {
    // A slow reader cut off is not read any more: a write blocked for a second ends the flood.
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let (mut sent, mut bytes) = (0, 0);
    while bytes < SLOW_BYTES {
        let p = payload(sent);
        // The server may cut the connection while we write: that ends the flood.
        if s.write_all(&common::frame(0x82, &p)).is_err() {
            break;
        }
        sent += 1;
        bytes += p.len();
    }
    (sent, Instant::now())
}

/// What a slow reader got back once it started reading.
#[derive(Debug, Default)]
struct Drained {
    echoed: u32,
    close: Option<u16>,
    /// The connection ended (EOF or reset) rather than the time running out.
    ended: bool,
}

/// Reads frames until EOF or a reset, for at most `within`, checking that each is a whole
/// echo of the next message in order, and answering the close frame when it comes. Returns
/// early if all `sent` messages come back: then the connection was not cut.
fn drain(s: &mut TcpStream, payload: Payload, sent: u32, within: Duration) -> Drained {
    let deadline = Instant::now() + within;
    let mut d = Drained::default();
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // Take every whole frame from the front of `bytes`.
        let mut pos = 0;
        while let Some((b0, p, next)) = split_frame(&bytes[pos..]) {
            assert!(d.close.is_none(), "a frame after the close frame");
            match b0 {
                0x82 => {
                    assert!(p == payload(d.echoed), "echo {} is corrupt", d.echoed);
                    d.echoed += 1;
                }
                0x88 => {
                    assert!(p.len() >= 2, "close payload {p:?}");
                    d.close = Some(u16::from_be_bytes([p[0], p[1]]));
                    let _ = s.write_all(&common::close_frame(1000, ""));
                }
                b => panic!("not a frame header ({b:#x}) after {} echoes", d.echoed),
            }
            pos += next;
        }
        bytes.drain(..pos);
        if d.echoed == sent && d.close.is_none() {
            return d;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return d;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return d,
        }
    }
    d.ended = true;
    assert!(bytes.is_empty(), "the stream ended inside a frame ({} bytes left)", bytes.len());
    d
}

/// A whole server frame at the front of `b`: its first byte, payload and length in all.
fn split_frame(b: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (len, hl) = match *b.get(1)? {
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize, 10),
        126 => (usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)), 4),
        n => (usize::from(n), 2),
    };
    Some((b[0], b.get(hl..hl + len)?, hl + len))
}

/// A server whose queue cap is 256 KiB. (The close timeout, 5 s, gives the slow reader the
/// time to stop sending and read what is left, the close frame last.)
fn capped_server() -> SocketAddr {
    let mut config = common::config();
    config.queue_cap = 256 << 10;
    common::start(config)
}

/// Floods `addr` without reading, then reads what came back. If the connection was cut (the
/// server could not hand everything to the kernel: usually, but a busy server may have left the
/// flood in its receive buffer and kept up once we read), asserts that it was closed within
/// a bounded time, and that what arrived is whole frames: echoes in order, intact, then a
/// close 1008. Returns whether it was cut.
fn slow_reader(addr: SocketAddr, payload: Payload) -> bool {
    let mut slow = common::upgraded(addr);
    let (sent, stopped) = flood(&mut slow, payload);
    let d = drain(&mut slow, payload, sent, Duration::from_secs(10));
    let took = stopped.elapsed();
    if d.echoed == sent && d.close.is_none() {
        return false;
    }
    assert!(d.ended, "the slow reader's connection is still open after {took:?}: {d:?}");
    assert!(d.echoed < sent, "all {sent} messages were echoed, and then the close: {d:?}");
    assert_eq!(d.close, Some(1008), "{d:?}, {sent} sent");
    true
}

#[test]
fn slow_reader_is_cut_off_while_others_are_served() {
    let addr = capped_server();
    let flooder = std::thread::spawn(move || slow_reader(addr, big));
    let others: Vec<_> = (0..100)
        .map(|c| {
            std::thread::spawn(move || {
                let mut ws = ws(addr);
                for j in 0..20 {
                    let m = Message::binary(format!("client {c} message {j} ").repeat(40));
                    ws.send(m.clone()).unwrap();
                    assert_eq!(ws.read().unwrap(), m, "client {c} message {j}");
                }
                close(ws);
            })
        })
        .collect();
    for t in others {
        t.join().expect("a well-behaved client failed");
    }
    let cut = flooder.join().expect("the slow reader was not cut off cleanly");
    assert!(cut, "the slow reader got every echo back: the queue cap did not act");
}

#[test]
fn slow_reader_cut_keeps_frames_whole() {
    // One flood after another, so that the cuts land at different places in the queue.
    let addr = capped_server();
    let cuts = (0..4).filter(|_| slow_reader(addr, mixed)).count();
    assert!(cuts >= 2, "only {cuts} of 4 floods were cut");
}

/// Upgrades `addr` with tungstenite.
fn ws(addr: SocketAddr) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/echo")).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

/// A raw upgrade; returns the response head (the connection closes after a refusal).
fn try_upgrade(addr: SocketAddr) -> (String, TcpStream) {
    let mut s = common::raw(addr);
    s.write_all(common::UPGRADE.as_bytes()).unwrap();
    let head = common::read_head(&mut s);
    (head, s)
}

fn assert_refused_503(head: &str) {
    assert_eq!(common::status(head), 503, "{head}");
    assert!(common::has_header(head, "Retry-After", "5"), "{head}");
}

/// Closes a tungstenite client with the close handshake, and drops it.
fn close(mut ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>) {
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close handshake failed: {e}"),
        }
    }
}

/// Upgrades until one succeeds, for at most 5 s: a freed slot is freed asynchronously.
fn upgrade_eventually(addr: SocketAddr) -> TcpStream {
    let mut last = String::new();
    common::eventually(Duration::from_secs(5), || {
        let (head, s) = try_upgrade(addr);
        if common::status(&head) == 101 {
            return Some(s);
        }
        assert_refused_503(&head);
        last = head;
        None
    })
    .unwrap_or_else(|| panic!("still refused after 5 s: {last}"))
}

#[test]
fn max_connections_refuses_with_503_until_a_slot_frees() {
    let bin = common::Binary::start(&["--max-connections", "3"]);
    let addr = bin.addr;
    let mut open: Vec<_> = (0..3).map(|_| ws(addr)).collect();
    let (head, mut s) = try_upgrade(addr);
    assert_refused_503(&head);
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("no EOF after the refusal");
    assert_eq!(body, b"too many connections\n");
    // A refused connection holds its slot until the client closes its side too.
    drop(s);
    // The others are unharmed.
    for w in &mut open {
        w.send(Message::text("still here")).unwrap();
        assert_eq!(w.read().unwrap(), Message::text("still here"));
    }
    close(open.pop().unwrap());
    let mut s = upgrade_eventually(addr);
    s.write_all(&common::frame(0x81, b"in")).unwrap();
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!((f.b0, f.payload.as_slice()), (0x81, &b"in"[..]));
    // Full again.
    let (head, _) = try_upgrade(addr);
    assert_refused_503(&head);
}

#[test]
fn max_connections_per_ip_refuses_the_third_with_503() {
    let mut config = common::config();
    config.max_connections_per_ip = 2;
    let addr = common::start(config);
    let a = ws(addr);
    let _b = ws(addr);
    let (head, mut s) = try_upgrade(addr);
    assert_refused_503(&head);
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("no EOF after the refusal");
    assert_eq!(body, b"too many connections\n");
    // A refused connection holds its slot until the client closes its side too.
    drop(s);
    close(a);
    let _c = upgrade_eventually(addr);
    let (head, _) = try_upgrade(addr);
    assert_refused_503(&head);
}
