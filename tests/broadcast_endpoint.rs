//! `--broadcast PATH` on the real binary: every message a client sends to PATH goes to the
//! other clients on PATH (with `PATH=all`, to the sender too), text and binary as sent, under
//! the rules of every endpoint (access policy, `--rate`, `--queue-cap`); and
//! `POST /api/broadcast/PATH` feeding it. Clients are tungstenite, raw sockets and Node's `ws`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "scripts/support.rs"]
mod support;

use std::io::Write;
use std::time::Duration;

use common::node::{Node, node_ready};
use common::{Binary, frame, read_frame};
use http::{get, post, u64_of};
use support::{Ws, connect, try_next_text, upgrade_status};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The next data message, text or binary (pings skipped); panics on a close or the timeout.
fn next(ws: &mut Ws) -> Message {
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => return m,
            Ok(Message::Close(c)) => panic!("closed: {c:?}"),
            Ok(_) => {}
            Err(e) => panic!("reading a message: {e}"),
        }
    }
}

fn text(s: &str) -> Message {
    Message::text(s)
}

/// A client on `path` that is open: a message from it reaches `other` (both on the path), so
/// it joined before anything the test sends next. (An upgrade answered 101 is open at once,
/// but this also proves the path fans out at all.)
fn joined(addr: std::net::SocketAddr, path: &str, other: &mut Ws) -> Ws {
    let mut ws = connect(addr, path);
    ws.send(text("hello from a newcomer")).unwrap();
    assert_eq!(next(other), text("hello from a newcomer"));
    ws
}

/// The value of the sample `name` (with its labels, as written) in a `/metrics` text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn metrics(addr: std::net::SocketAddr) -> String {
    get(addr, "/metrics").text().to_owned()
}

#[test]
fn every_message_goes_to_every_other_client_on_the_path_as_sent() {
    let weir = Binary::start(&["--broadcast", "/room", "--broadcast", "/other"]);
    let mut a = connect(weir.addr, "/room");
    let mut b = joined(weir.addr, "/room", &mut a);
    let mut c = joined(weir.addr, "/room", &mut a);
    assert_eq!(next(&mut b), text("hello from a newcomer"), "b hears c join");
    let mut elsewhere = connect(weir.addr, "/other");

    a.send(text("hello, room")).unwrap();
    assert_eq!(next(&mut b), text("hello, room"));
    assert_eq!(next(&mut c), text("hello, room"));
    // Binary stays binary, byte for byte (not UTF-8, a zero byte).
    let bytes = vec![0u8, 1, 2, 0xff, 0xfe, 0];
    b.send(Message::binary(bytes.clone())).unwrap();
    assert_eq!(next(&mut a), Message::binary(bytes.clone()));
    assert_eq!(next(&mut c), Message::binary(bytes));
    // A message larger than a read (gathered across reads) goes out whole.
    let long = "z".repeat(300_000);
    c.send(text(&long)).unwrap();
    assert_eq!(next(&mut a), text(&long));
    assert_eq!(next(&mut b), text(&long));
    // The sender does not get its own: the next thing `a` sees is `b`'s marker, not its own
    // message back; and another path hears nothing of this one.
    b.send(text("marker")).unwrap();
    assert_eq!(next(&mut a), text("marker"));
    assert_eq!(next(&mut c), text("marker"));
    assert_eq!(try_next_text(&mut elsewhere, Duration::from_millis(300)), None);
    assert_eq!(try_next_text(&mut b, Duration::from_millis(300)), None, "b got its own back");
    // A plain GET on the path is told it is a WebSocket endpoint; an unknown path is 404.
    assert_eq!(get(weir.addr, "/room").status, 426);
    assert_eq!(upgrade_status(weir.addr, "/nothing-here"), 404);
}

#[test]
fn with_all_the_sender_gets_its_own_message_too() {
    let weir = Binary::start(&["--broadcast", "/all=all"]);
    let mut a = connect(weir.addr, "/all");
    a.send(text("alone")).unwrap();
    assert_eq!(next(&mut a), text("alone"), "the sender is a receiver");
    let mut b = connect(weir.addr, "/all");
    b.send(text("two of us")).unwrap();
    assert_eq!(next(&mut b), text("two of us"));
    assert_eq!(next(&mut a), text("two of us"));
    // Many messages in one read keep their order for everyone.
    let mut burst = Vec::new();
    for i in 0..50 {
        burst.extend(frame(0x81, format!("m{i}").as_bytes()));
    }
    let mut raw = common::upgraded_on(weir.addr, "/all");
    raw.write_all(&burst).unwrap();
    for i in 0..50 {
        let want = text(&format!("m{i}"));
        assert_eq!(next(&mut a), want);
        assert_eq!(next(&mut b), want);
        let f = read_frame(&mut raw).unwrap();
        assert_eq!((f.opcode(), f.payload), (1, format!("m{i}").into_bytes()));
    }
}

#[test]
fn a_slow_reader_is_cut_off_and_the_others_get_everything() {
    let weir = Binary::start(&["--broadcast", "/room", "--queue-cap", "64KiB"]);
    let mut fast = connect(weir.addr, "/room");
    // A client that never reads.
    let mut slow = common::upgraded_on(weir.addr, "/room");
    let mut sender = joined(weir.addr, "/room", &mut fast);
    // Enough to fill the slow reader's socket buffers, and then its queue past the cap.
    let piece = "s".repeat(60_000);
    for i in 0..400 {
        sender.send(text(&format!("{i:04}{piece}"))).unwrap();
        let got = next(&mut fast);
        assert!(got.to_text().unwrap().starts_with(&format!("{i:04}")), "message {i}");
    }
    // What reached the slow reader's socket, then its close: 1008 "slow reader".
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut frames = 0;
    let close = loop {
        let f = read_frame(&mut slow).expect("EOF before the close frame");
        if f.opcode() == 0x8 {
            break f;
        }
        frames += 1;
    };
    assert_eq!(close.close_code(), 1008);
    assert_eq!(&close.payload[2..], b"slow reader");
    assert!(frames < 400, "the slow reader got everything ({frames}): never over the cap");
    // The others go on.
    sender.send(text("still here")).unwrap();
    assert_eq!(next(&mut fast), text("still here"));
    let m = metrics(weir.addr);
    assert_eq!(sample(&m, "weir_slow_reader_disconnects_total"), Some(1.0), "{m}");
}

#[test]
fn the_access_policy_and_the_rate_hold_on_a_broadcast_path() {
    let weir = Binary::start(&[
        "--broadcast",
        "/room",
        "--token",
        "s3cret",
        "--origin",
        "https://app.example",
        "--rate",
        "5",
        "--rate-burst",
        "5",
    ]);
    // No token: 401; a token: in. Another site's page: 403.
    assert_eq!(upgrade_status(weir.addr, "/room"), 401);
    let mut a = connect(weir.addr, "/room?token=s3cret");
    let mut req = format!("ws://{}/room?token=s3cret", weir.addr).into_client_request().unwrap();
    req.headers_mut().insert("Origin", HeaderValue::from_static("https://evil.example"));
    let stream = std::net::TcpStream::connect(weir.addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    match tungstenite::client::client(req, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status().as_u16(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    // The HTTP feed needs the token too, answered in the API's JSON form.
    let r = post(weir.addr, "/api/broadcast/room", &[], b"no token");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.error_code(), "unauthorized");
    // Over the rate the sender is closed (1008); the receiver got at most the burst.
    let mut b = connect(weir.addr, "/room?token=s3cret");
    for i in 0..20 {
        if b.send(text(&format!("flood {i}"))).is_err() {
            break;
        }
    }
    assert_eq!(support::close_code(&mut b), 1008);
    assert_eq!(next(&mut a), text("flood 0"));
    let mut got = 1;
    while try_next_text(&mut a, Duration::from_millis(300)).is_some() {
        got += 1;
    }
    assert!((1..=6).contains(&got), "the receiver got {got} of the flood");
}

#[test]
fn a_public_broadcast_path_needs_no_token() {
    let weir = Binary::start(&["--broadcast", "/open", "--token", "s3cret", "--public", "/open"]);
    let mut a = connect(weir.addr, "/open");
    let mut b = joined(weir.addr, "/open", &mut a);
    a.send(text("hi")).unwrap();
    assert_eq!(next(&mut b), text("hi"));
}

#[test]
fn post_api_broadcast_feeds_the_path() {
    let weir = Binary::start(&["--broadcast", "/room", "--max-publish-size", "1KiB"]);
    let mut a = connect(weir.addr, "/room");
    let mut b = joined(weir.addr, "/room", &mut a);
    // Text by default, answered with how many it was queued to.
    let r = post(weir.addr, "/api/broadcast/room", &["Content-Type: text/plain"], b"from http");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(u64_of(&r.json(), "delivered"), 2);
    assert_eq!(next(&mut a), text("from http"));
    assert_eq!(next(&mut b), text("from http"));
    // Binary when the Content-Type says so, byte for byte.
    let bytes = [0u8, 0xff, 7, 0x80];
    let r =
        post(weir.addr, "/api/broadcast/room", &["Content-Type: application/octet-stream"], &bytes);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(next(&mut a), Message::binary(bytes.to_vec()));
    assert_eq!(next(&mut b), Message::binary(bytes.to_vec()));
    // Text that is not UTF-8 is refused: a text message must be (RFC 6455 §8.1).
    let r = post(weir.addr, "/api/broadcast/room", &[], &bytes);
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{r:?}");
    // Over --max-publish-size: 413, and nothing sent.
    let r = post(weir.addr, "/api/broadcast/room", &[], &[b'x'; 2000]);
    assert_eq!(r.status, 413, "{r:?}");
    // A path that is no broadcast path: 404; another method: 405.
    let r = post(weir.addr, "/api/broadcast/nope", &[], b"x");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{r:?}");
    let r = get(weir.addr, "/api/broadcast/room");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(try_next_text(&mut a, Duration::from_millis(300)), None);
    // Nobody on the path: delivered to none.
    drop((a, b));
    let none = common::eventually(TIMEOUT, || {
        let r = post(weir.addr, "/api/broadcast/room", &[], b"anyone?");
        (u64_of(&r.json(), "delivered") == 0).then_some(())
    });
    assert!(none.is_some(), "the clients that left still count");
}

#[test]
fn http_broadcasts_take_the_rate_per_address() {
    // A token a second: eight requests take well under the six seconds that would refill
    // enough for all of them.
    let weir = Binary::start(&["--broadcast", "/room", "--rate", "1", "--rate-burst", "2"]);
    let answers: Vec<_> =
        (0..8).map(|_| post(weir.addr, "/api/broadcast/room", &[], b"x")).collect();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], [200, 200]);
    let refused =
        answers.iter().find(|r| r.status == 429).unwrap_or_else(|| panic!("no 429: {statuses:?}"));
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.error_code(), "rate_limited");
}

#[test]
fn a_node_ws_client_gets_text_and_binary_as_sent() {
    if !node_ready() {
        return;
    }
    let weir = Binary::start(&["--broadcast", "/room"]);
    let url = format!("ws://{}/room", weir.addr);
    let mut node = Node::spawn("broadcast-client.js", &[&url]);
    node.expect_line("OPEN", TIMEOUT);
    let mut rust = connect(weir.addr, "/room");
    rust.send(text("hello node")).unwrap();
    rust.send(Message::binary(vec![0u8, 1, 0xfe, 0xff])).unwrap();
    assert_eq!(node.expect_line("TEXT ", TIMEOUT), "hello node");
    assert_eq!(node.expect_line("BINARY ", TIMEOUT), "0001feff");
    // The Node client sends back what it got, in the same kinds.
    assert_eq!(next(&mut rust), text("echo: hello node"));
    assert_eq!(next(&mut rust), Message::binary(vec![0u8, 1, 0xfe, 0xff]));
    node.expect_line("DONE", TIMEOUT);
}
