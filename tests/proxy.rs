//! The reverse proxy (`--route`) end to end: the weir binary in front of a weir echo or of Node
//! `ws` / Socket.IO servers (tests/node/), with real clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Binary, close_frame, frame, read_frame, read_head, rss, status};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Node peers

// (in tests/common/node.rs, shared with tests/compression.rs)
use common::node::{Node, node_ready};

// ---------------------------------------------------------------------------------------------
// Clients

/// A proxy in front of a weir echo at /echo, routed as /up.
fn echo_behind_proxy() -> (Binary, Binary) {
    let echo = Binary::start(&["--echo", "/echo"]);
    let proxy = Binary::start(&["--route", &format!("/up=ws://{}/echo", echo.addr)]);
    (echo, proxy)
}

/// A tungstenite client on `ws://addr{path}`, reads bounded by `TIMEOUT`.
fn ws_client(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (ws, resp) = tungstenite::client::client(format!("ws://{addr}{path}"), stream).unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// A raw upgrade to `path` with `extra` header lines; returns the stream and the response head.
fn raw_upgrade(addr: SocketAddr, path: &str, extra: &str) -> (TcpStream, String) {
    let mut s = common::raw(addr);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// The status a refused upgrade to `path` gets, and how long it took.
fn refused_status(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let start = Instant::now();
    let mut s = common::raw(addr);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    (status(&head), start.elapsed())
}

/// A header field's value in a response head, if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A string member `"name":"value"` of the flat JSON object `JSON.stringify` wrote (values here
/// have no escapes).
fn json_str<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let start = json.find(&format!("\"{name}\":\""))? + name.len() + 4;
    let len = json[start..].find('"')?;
    Some(&json[start..start + len])
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn text_binary_and_a_4_mib_message_reach_weir_echo_intact() {
    let (_echo, proxy) = echo_behind_proxy();
    let mut ws = ws_client(proxy.addr, "/up");

    ws.send(Message::text("hello through the proxy")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello through the proxy"));

    let bin: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    ws.send(Message::binary(bin.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(bin));

    let big: Vec<u8> =
        (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    match ws.read().unwrap() {
        Message::Binary(got) => {
            assert_eq!(got.len(), big.len());
            assert!(got[..] == big[..], "the 4 MiB message changed on the way");
        }
        other => panic!("expected the 4 MiB binary echo, got {other:?}"),
    }

    ws.close(None).unwrap();
    match ws.read() {
        Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(m) => panic!("unexpected {m:?} while closing"),
        Err(e) => panic!("closing: {e}"),
    }
}

#[test]
fn handshake_forwards_offer_and_end_to_end_headers_and_returns_the_chosen_subprotocol() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("upstream.js");
    let proxy = Binary::start(&["--route", &format!("/node=ws://127.0.0.1:{port}/base")]);

    let extra = "Host: front.example:8443\r\n\
                 Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n\
                 Origin: http://front.example\r\n\
                 Cookie: session=abc; theme=dark\r\n\
                 Authorization: Bearer token-123\r\n\
                 X-Custom: kept\r\n\
                 Connection: Upgrade, X-Hop-Secret\r\n\
                 X-Hop-Secret: for this hop only\r\n\
                 Keep-Alive: timeout=5\r\n\
                 Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r\n\
                 TE: trailers\r\n";
    let mut s = common::raw(proxy.addr);
    write!(
        s,
        "GET /node/sub?x=1 HTTP/1.1\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), Some("chat.v2"), "{head}");

    let mut ws = WebSocket::from_raw_socket(s, Role::Client, None);
    ws.send(Message::text("headers?")).unwrap();
    let json = match ws.read().unwrap() {
        Message::Text(t) => t.to_string(),
        other => panic!("expected the headers as JSON text, got {other:?}"),
    };
    let h = |name: &str| json_str(&json, name);
    assert_eq!(h("url"), Some("/base/sub?x=1"), "path rest and query appended: {json}");
    assert_eq!(h("protocol"), Some("chat.v2"), "{json}");
    assert_eq!(h("sec-websocket-protocol"), Some("chat.v1, chat.v2"), "offer: {json}");
    assert_eq!(h("origin"), Some("http://front.example"), "{json}");
    assert_eq!(h("cookie"), Some("session=abc; theme=dark"), "{json}");
    assert_eq!(h("authorization"), Some("Bearer token-123"), "{json}");
    assert_eq!(h("x-custom"), Some("kept"), "{json}");
    assert_eq!(h("host"), Some(format!("127.0.0.1:{port}").as_str()), "{json}");
    let xff = h("x-forwarded-for").unwrap_or_else(|| panic!("no X-Forwarded-For: {json}"));
    assert!(xff.split(", ").any(|a| a == "127.0.0.1"), "X-Forwarded-For {xff:?}");
    assert_eq!(h("x-forwarded-proto"), Some("http"), "{json}");
    assert_eq!(h("x-forwarded-host"), Some("front.example:8443"), "{json}");
    for hop in ["x-hop-secret", "keep-alive", "proxy-authorization", "te"] {
        assert!(h(hop).is_none(), "hop-by-hop {hop} was forwarded: {json}");
    }
    // The upstream handshake's Connection is weir's own, not the client's list.
    assert!(h("connection").is_some_and(|c| !c.contains("X-Hop-Secret")), "{json}");

    // And messages keep their type both ways.
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
    ws.send(Message::text("ünïcode ✓")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("ünïcode ✓"));
}

#[test]
fn no_subprotocol_is_returned_when_the_upstream_chose_none() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("upstream.js");
    let proxy = Binary::start(&["--route", &format!("/node=ws://127.0.0.1:{port}/")]);
    let (_s, head) = raw_upgrade(proxy.addr, "/node", "Sec-WebSocket-Protocol: chat.v1\r\n");
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(header(&head, "Sec-WebSocket-Protocol"), None, "{head}");
}

#[test]
fn refused_unreachable_and_slow_upstreams_get_403_502_and_504() {
    if !node_ready() {
        return;
    }
    let (_node, node_port) = Node::server("upstream.js");
    let down_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Accepts (the kernel completes the TCP handshake into the backlog) and never answers.
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let proxy = Binary::start(&[
        "--upstream-timeout",
        "1s",
        "--route",
        &format!("/refuse=ws://127.0.0.1:{node_port}/refuse"),
        "--route",
        &format!("/down=ws://127.0.0.1:{down_port}/"),
        "--route",
        &format!("/slow=ws://127.0.0.1:{slow_port}/"),
    ]);

    assert_eq!(refused_status(proxy.addr, "/refuse").0, 403);
    assert_eq!(refused_status(proxy.addr, "/down").0, 502);
    let (code, took) = refused_status(proxy.addr, "/slow");
    assert_eq!(code, 504);
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(3),
        "504 after {took:?}, --upstream-timeout 1s"
    );
    // The proxy still works after all that.
    let (_s, head) = raw_upgrade(proxy.addr, "/refuse-not", "");
    assert_eq!(status(&head), 404, "{head}");
    drop(slow);
}

#[test]
fn an_upstream_close_is_relayed_after_the_data_before_it() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("upstream.js");
    let proxy = Binary::start(&["--route", &format!("/node=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/node");
    ws.send(Message::text("close-me")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("bye-data"));
    match ws.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4001);
            assert_eq!(f.reason.as_str(), "done");
        }
        other => panic!("expected close 4001 \"done\", got {other:?}"),
    }
}

#[test]
fn a_message_sent_just_before_the_clients_close_is_still_echoed() {
    let (_echo, proxy) = echo_behind_proxy();
    for round in 0..5 {
        let (mut s, head) = raw_upgrade(proxy.addr, "/up", "");
        assert_eq!(status(&head), 101, "{head}");
        // Message and close in one write: the close reaches weir before the echo returns.
        let mut out = frame(0x81, format!("last words {round}").as_bytes());
        out.extend_from_slice(&close_frame(1000, "bye"));
        s.write_all(&out).unwrap();
        let f = read_frame(&mut s).expect("EOF before the echo");
        assert_eq!(f.opcode(), 0x1, "round {round}: expected the echo first, got {f:?}");
        assert_eq!(f.payload, format!("last words {round}").as_bytes());
        let f = read_frame(&mut s).expect("EOF before the close");
        assert_eq!(f.close_code(), 1000, "round {round}: {f:?}");
        common::expect_eof(&mut s, TIMEOUT);
    }
}

#[test]
fn a_hundred_clients_of_ten_messages_each_all_get_their_replies() {
    let (_echo, proxy) = echo_behind_proxy();
    let addr = proxy.addr;
    let (tx, rx) = mpsc::channel();
    for c in 0..100 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(move || {
                let mut ws = ws_client(addr, "/up");
                for m in 0..10 {
                    let msg = if m % 2 == 0 {
                        Message::text(format!("client {c} message {m}"))
                    } else {
                        Message::binary(format!("{c}:{m}").repeat(c + 1).into_bytes())
                    };
                    ws.send(msg.clone()).unwrap();
                    assert_eq!(ws.read().unwrap(), msg, "client {c} message {m}");
                }
                ws.close(None).unwrap();
                while ws.read().is_ok() {}
            });
            let _ = tx.send(r.map_err(|e| {
                e.downcast_ref::<String>().cloned().unwrap_or_else(|| "panic".into())
            }));
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut failures = Vec::new();
    for _ in 0..100 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => panic!("clients still running after 30 s ({e}); log:\n{}", proxy.log()),
        }
    }
    assert!(failures.is_empty(), "{} clients failed: {failures:?}", failures.len());
}

#[test]
fn a_client_that_stops_reading_pauses_the_upstream_instead_of_buffering() {
    if !node_ready() {
        return;
    }
    let (_node, port) = Node::server("upstream.js");
    let proxy = Binary::start(&["--route", &format!("/node=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/node");
    // Warm up (first messages, buffers leased) before taking the baseline.
    ws.send(Message::binary(vec![7u8; 256 << 10])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 256 << 10]));
    let baseline = rss(proxy.pid());

    ws.send(Message::text("flood")).unwrap();
    // Read nothing for 2 s (the scenario, not a wait for something), watching weir's memory.
    let mut peak = baseline;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        peak = peak.max(rss(proxy.pid()));
        std::thread::sleep(Duration::from_millis(25));
    }
    let grew = peak.saturating_sub(baseline);
    eprintln!(
        "weir RSS baseline {} KiB, peak while not reading +{} KiB",
        baseline >> 10,
        grew >> 10
    );
    assert!(grew < 16 << 20, "weir's RSS grew by {} MiB while the client read nothing", grew >> 20);

    for i in 0..1024u32 {
        match ws.read() {
            Ok(Message::Binary(b)) => {
                assert_eq!(b.len(), 64 << 10, "message {i}");
                assert_eq!(u32::from_be_bytes(b[..4].try_into().unwrap()), i, "order");
                let fill = (i % 251) as u8;
                assert!(b[4..].iter().all(|&x| x == fill), "message {i} corrupted");
            }
            other => panic!("message {i}: expected 64 KiB binary, got {other:?}"),
        }
    }
    assert_eq!(ws.read().unwrap(), Message::text("flood-done"));
}

#[test]
fn socket_io_works_through_the_proxy_and_reconnects_after_a_restart() {
    if !node_ready() {
        return;
    }
    let (_server, port) = Node::server("sio-server.js");
    let route = format!("/socket.io=ws://127.0.0.1:{port}/socket.io");
    let proxy = Binary::start(&["--route", &route]);
    let front = proxy.addr.port();
    let mut client = Node::spawn("sio-client.js", &[&format!("http://127.0.0.1:{front}")]);

    client.expect_line("OK connected", TIMEOUT);
    let ack = client.expect_line("OK ack ", TIMEOUT);
    // What the server saw: Engine.IO's query went through the route.
    assert_eq!(json_str(&ack, "EIO"), Some("4"), "{ack}");
    assert_eq!(json_str(&ack, "transport"), Some("websocket"), "{ack}");
    client.expect_line("OK room", TIMEOUT);
    client.expect_line("READY restart", TIMEOUT);

    drop(proxy); // killed
    client.expect_line("OK disconnected", TIMEOUT);
    // The same port again (a second, fresh listener on :0 comes with Binary::start).
    let _proxy = Binary::start(&["--listen", &format!("127.0.0.1:{front}"), "--route", &route]);
    client.expect_line("OK reconnected", TIMEOUT);
    client.expect_line("OK ack-again", TIMEOUT);
    assert!(client.wait_exit(TIMEOUT).success());
}

/// A one-connection upstream written by hand: answers the upgrade with its 101 and `after` in
/// one write (so weir reads them together), then shuts its write side if `eof`, and holds the
/// connection until weir closes it (bounded by a read timeout).
fn raw_upstream(after: Vec<u8>, eof: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let Some(mut s) = common::eventually(TIMEOUT, || listener.accept().ok().map(|(s, _)| s))
        else {
            return;
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let head = read_head(&mut s);
        let key = header(&head, "Sec-WebSocket-Key").unwrap();
        let accept = weir::proto::handshake::accept_key(key.as_bytes());
        let mut out = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            std::str::from_utf8(&accept).unwrap()
        )
        .into_bytes();
        out.extend_from_slice(&after);
        s.write_all(&out).unwrap();
        if eof {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let _ = common::read_to_end(&mut s);
    });
    port
}

/// An unmasked (server) frame with a payload under 126 bytes.
fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0, u8::try_from(payload.len()).unwrap()];
    f.extend_from_slice(payload);
    f
}

#[test]
fn frames_that_arrive_with_the_upstreams_101_are_not_lost() {
    // A greeting in the same read as the 101 (what Socket.IO's server does: its open packet).
    let port = raw_upstream(server_frame(0x81, b"greeting"), false);
    let proxy = Binary::start(&["--route", &format!("/raw=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/raw");
    assert_eq!(ws.read().unwrap(), Message::text("greeting"));

    // A greeting and a close frame.
    let mut after = server_frame(0x81, b"greeting");
    after.extend_from_slice(&server_frame(0x88, b"\x0f\xa2early"));
    let port = raw_upstream(after, false);
    let proxy = Binary::start(&["--route", &format!("/raw=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/raw");
    assert_eq!(ws.read().unwrap(), Message::text("greeting"));
    match ws.read().unwrap() {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4002);
            assert_eq!(f.reason.as_str(), "early");
        }
        other => panic!("expected close 4002 \"early\", got {other:?}"),
    }

    // A greeting, then the upstream goes away without a close frame.
    let port = raw_upstream(server_frame(0x81, b"greeting"), true);
    let proxy = Binary::start(&["--route", &format!("/raw=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/raw");
    assert_eq!(ws.read().unwrap(), Message::text("greeting"));
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1011, "{f:?}"),
        other => panic!("expected close 1011, got {other:?}"),
    }
}

/// A client's close that the upstream never answers (it drops TCP on reading it) is answered
/// with 1011, as any upstream gone without a close frame: before, the client got its own code
/// back, as if the upstream had answered with it.
#[test]
fn a_close_the_upstream_drops_is_answered_with_1011() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let head = read_head(&mut s);
        let key = header(&head, "Sec-WebSocket-Key").unwrap();
        let accept = weir::proto::handshake::accept_key(key.as_bytes());
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            std::str::from_utf8(&accept).unwrap()
        );
        s.write_all(ok.as_bytes()).unwrap();
        // The relayed close: read, never answered; then the TCP connection is dropped.
        let mut buf = [0u8; 256];
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    let proxy = Binary::start(&["--route", &format!("/raw=ws://127.0.0.1:{port}/")]);
    let mut ws = ws_client(proxy.addr, "/raw");
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::from(4005),
        reason: "c".into(),
    }))
    .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1011, "{f:?}");
                break;
            }
            Ok(Message::Close(None)) => panic!("a close without a code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// An upstream written by hand that answers every upgrade with its 101 and sends the request
/// head it got on a channel, in the order the requests arrived. Its connections are held open
/// until it stops: when the receiver is dropped, or when nothing connects for `TIMEOUT`.
fn recording_upstream() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Some(mut s) =
            common::eventually(TIMEOUT, || listener.accept().ok().map(|(s, _)| s))
        {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            let head = read_head(&mut s);
            let key = header(&head, "Sec-WebSocket-Key").unwrap();
            let accept = weir::proto::handshake::accept_key(key.as_bytes());
            write!(
                s,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                std::str::from_utf8(&accept).unwrap()
            )
            .unwrap();
            held.push(s);
            if tx.send(head).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// The request-target of a request head.
fn target_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

#[test]
fn a_path_that_could_leave_the_routes_base_is_refused_with_400() {
    let (port, heads) = recording_upstream();
    let proxy = Binary::start(&["--route", &format!("/chat=ws://127.0.0.1:{port}/ws/chat")]);

    // Each of these, once the upstream decodes and normalises it (RFC 3986 §2.3, §5.2.4), names
    // a path outside /ws/chat: dot-segments literal or percent-encoded in any case and mix, or
    // cut off by a separator some upstreams read as `/` (`%2F`, `%5C`, `\`, the WHATWG URL
    // parser's reading) or by `;` (servlet containers read `..;` as `..`).
    let escapes = [
        "/chat/../admin",
        "/chat/%2e%2e/%2e%2e/admin",
        "/chat/%2E%2E/admin",
        "/chat/.%2e/admin",
        "/chat/%2E./admin",
        "/chat/./admin",
        "/chat/%2e/admin",
        "/chat/x/../../admin?q=1",
        "/chat/..",
        "/chat/room/..",
        "/chat/..%2fadmin",
        "/chat/..%2Fadmin",
        "/chat/..%5cadmin",
        "/chat/..%5Cadmin",
        "/chat/..\\admin",
        "/chat/..;/admin",
        "/chat/%2e%2e;x/admin",
    ];
    for path in escapes {
        let (code, _) = refused_status(proxy.addr, path);
        assert_eq!(code, 400, "{path}");
    }
    // A prefix match is at a segment boundary: /chatroom is not under /chat.
    assert_eq!(refused_status(proxy.addr, "/chatroom").0, 404);

    // Dots that are not whole segments, and anything in the query, are the application's own.
    let fine = "/chat/a..b/...x/.hidden/x./a%2Fb?next=../up&p=%2e%2e%2f";
    let (_s, head) = raw_upgrade(proxy.addr, fine, "");
    assert_eq!(status(&head), 101, "{head}");
    // The first request the upstream saw is this one: none of the refused ones reached it.
    let got = heads.recv_timeout(TIMEOUT).expect("the upstream saw no request");
    assert_eq!(target_of(&got), format!("/ws{fine}"), "{got}");

    let (_s, head) = raw_upgrade(proxy.addr, "/chat", "");
    assert_eq!(status(&head), 101, "{head}");
    let got = heads.recv_timeout(TIMEOUT).expect("the upstream saw no request");
    assert_eq!(target_of(&got), "/ws/chat", "{got}");
}

#[test]
fn forwarding_headers_from_the_client_are_replaced_not_passed_on() {
    let (port, heads) = recording_upstream();
    let proxy = Binary::start(&["--route", &format!("/chat=ws://127.0.0.1:{port}/ws/chat")]);
    let forged = "Host: front.example\r\n\
                  X-Forwarded-For: 6.6.6.6\r\n\
                  X_Forwarded_For: 7.7.7.7\r\n\
                  x-forwarded_for: 7.7.7.8\r\n\
                  X-Forwarded-Host: evil\r\n\
                  X_Forwarded_Host: evil2\r\n\
                  X-Forwarded-Proto: https\r\n\
                  X_FORWARDED_PROTO: https\r\n\
                  X-Forwarded-Port: 443\r\n\
                  X-Forwarded-Ssl: on\r\n\
                  Forwarded: for=8.8.8.8;host=evil3;proto=https\r\n\
                  forwarded: for=8.8.4.4\r\n\
                  X-Real-IP: 9.9.9.9\r\n\
                  X_Real_Ip: 9.9.9.8\r\n\
                  X.Forwarded.For: 5.5.5.5\r\n\
                  X.Real.Ip: 5.5.5.6\r\n\
                  X-Request_Id: dropped\r\n\
                  X-Request-Id: kept-1\r\n";
    let mut s = common::raw(proxy.addr);
    write!(
        s,
        "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{forged}\r\n"
    )
    .unwrap();
    assert_eq!(status(&read_head(&mut s)), 101);
    let got = heads.recv_timeout(TIMEOUT).expect("the upstream saw no request");

    let fields: Vec<(String, &str)> = got
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase().replace('_', "-"), v.trim()))
        .collect();
    let all = |name: &str| -> Vec<&str> {
        fields.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect()
    };
    // Each proxy appends to X-Forwarded-For (as to RFC 7239 §4's Forwarded list): the client's
    // chain is kept and the address weir saw comes last, the one entry an upstream may trust.
    assert_eq!(all("x-forwarded-for"), ["6.6.6.6, 127.0.0.1"], "{got}");
    assert_eq!(all("x-forwarded-host"), ["front.example"], "{got}");
    assert_eq!(all("x-forwarded-proto"), ["http"], "{got}");
    for dropped in ["x-forwarded-port", "x-forwarded-ssl", "forwarded", "x-real-ip"] {
        assert!(all(dropped).is_empty(), "{dropped} was forwarded: {got}");
    }
    // Names with anything but letters, digits and `-` are not forwarded at all: upstreams
    // fold `_` and `.` alike (`X.Forwarded.For` is `X_FORWARDED_FOR` to some).
    assert!(!got.contains("5.5.5."), "a dotted name was forwarded: {got}");
    assert_eq!(all("x-request-id"), ["kept-1"], "{got}");
}

/// An upstream whose TCP connect never completes (its accept queue is full, so the kernel
/// drops the SYNs) gets 504 after --upstream-timeout, as one that connects and never answers
/// does. Before, no timer was armed while the connect was under way: the client got no answer
/// until its own handshake timeout closed it, and the upstream connection stayed until the
/// kernel gave up on the connect, minutes later.
#[test]
fn an_upstream_whose_connect_hangs_gets_504_after_the_upstream_timeout() {
    let (addr, _full, held) = common::listener_whose_connects_hang();
    let proxy = Binary::start(&[
        "--upstream-timeout",
        "1s",
        "--handshake-timeout",
        "30s",
        "--route",
        &format!("/hang=ws://{addr}/"),
    ]);
    let (code, took) = refused_status(proxy.addr, "/hang");
    assert_eq!(code, 504);
    assert!(took <= Duration::from_secs(5), "504 after {took:?}, --upstream-timeout 1s");
    drop(held);
}

/// The code of the close frame `ws` gets next (messages before it skipped), answered; `None`
/// for a close without a code. Panics if the connection ends without one.
fn close_of(ws: &mut WebSocket<TcpStream>) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => {
                let _ = ws.flush();
                return f.map(|f| u16::from(f.code));
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

/// weir routing `/up` to an upstream of one connection that answers its handshake once `hold`
/// gives the word or is dropped, sends `hello`, and reports the code of the close it gets.
fn proxy_to_close_reporting_upstream(
    hold: mpsc::Receiver<()>,
) -> (Binary, mpsc::Receiver<Option<u16>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((s, _)) = listener.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = hold.recv_timeout(TIMEOUT);
        let mut ws = tungstenite::accept(s).unwrap();
        ws.send(Message::text("hello")).unwrap();
        let _ = tx.send(close_of(&mut ws));
    });
    let route = format!("/up=ws://127.0.0.1:{port}/");
    let proxy = Binary::start(&["--route", &route, "--shutdown-timeout", "5s"]);
    (proxy, rx)
}

/// SIGTERM closes a proxied link as the hub's connections: the client gets 1001 (RFC 6455
/// §7.4.1, going away), the upstream a close of its own, and weir exits once both have answered,
/// within `--shutdown-timeout`.
#[test]
fn sigterm_closes_both_sides_of_a_proxied_link_with_1001_and_exits() {
    let (_, hold) = mpsc::channel();
    let (mut proxy, rx) = proxy_to_close_reporting_upstream(hold);
    let mut ws = ws_client(proxy.addr, "/up");
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    proxy.sigterm();
    assert_eq!(close_of(&mut ws), Some(1001), "the client's close; log:\n{}", proxy.log());
    let up = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| panic!("log:\n{}", proxy.log()));
    assert_eq!(up, Some(1001), "the upstream's close");
    assert!(proxy.wait_exit(TIMEOUT).success());
    // Both answered: weir did not wait out its shutdown timeout.
    assert!(proxy.log().contains("shutdown complete"), "{}", proxy.log());
}

/// A link whose upstream answers its handshake after SIGTERM: the client, still in its
/// handshake, gets 503 as any request in its handshake at shutdown (docs/operations.md,
/// Signals and shutdown), not a 101 on a WebSocket nothing would close; the upstream gets 1001
/// (RFC 6455 §7.4.1). Before, the client got its 101 and the link stayed open until the
/// shutdown timeout cut both without a close frame.
#[test]
fn a_link_still_in_its_handshake_at_sigterm_is_refused_503_and_its_upstream_closed_1001() {
    // The upstream's 101 only once the test has sent SIGTERM and weir has logged it.
    let (go, hold) = mpsc::channel();
    let (mut proxy, rx) = proxy_to_close_reporting_upstream(hold);
    let mut s = common::raw(proxy.addr);
    write!(
        s,
        "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    proxy.log_with("proxy: linked", TIMEOUT);
    proxy.sigterm();
    proxy.log_with("shutting down", TIMEOUT);
    go.send(()).unwrap();
    let head = read_head(&mut s);
    assert_eq!(status(&head), 503, "{head}\n{}", proxy.log());
    // RFC 9110 §10.2.3: when to come back, as every 503 of weir's.
    assert!(common::has_header(&head, "retry-after", "5"), "{head}");
    drop(s);
    let up = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| panic!("log:\n{}", proxy.log()));
    assert_eq!(up, Some(1001), "the upstream's close");
    assert!(proxy.wait_exit(TIMEOUT).success());
    assert!(proxy.log().contains("shutdown complete"), "{}", proxy.log());
}

/// An upstream of one connection that answers the upgrade with `head` and closes.
fn upstream_answering(head: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = read_head(&mut s);
        let _ = s.write_all(head.as_bytes());
    });
    port
}

/// An upstream that answers the upgrade with an interim status (RFC 9110 §15.2: 1xx is no
/// final answer) has not refused it with a status the client could be given: 502, as for any
/// invalid answer (RFC 9110 §15.6.3). Before, weir sent `100` as a final response, with a body.
#[test]
fn an_upstream_answering_the_upgrade_with_an_interim_status_is_502() {
    let port = upstream_answering("HTTP/1.1 100 Continue\r\n\r\n");
    let proxy = Binary::start(&["--route", &format!("/up=ws://127.0.0.1:{port}/")]);
    assert_eq!(refused_status(proxy.addr, "/up").0, 502, "{}", proxy.log());
}
