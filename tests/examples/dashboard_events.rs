//! examples/dashboard_events.rs: the Node `ws` dashboard server's events, spoken to by a Node
//! `ws` client as its users did, over plain TCP and (feature `tls`) over TLS as the original
//! served it.

use std::time::Duration;

use super::common::node::{Node, node_ready};
use super::http::post;
use super::{Ws, parse, refused, start, str_of};
use weir::json::Value;

const CREDS: [(&str, &str); 2] = [("DASHBOARD_USER", "admin"), ("DASHBOARD_PASSWORD", "pw 1:2")];
const AUTH: &str = "Authorization: Basic YWRtaW46cHcgMToy"; // admin:pw 1:2
const WAIT: Duration = Duration::from_secs(10);

/// The JSON of a `MSG <json>` line.
fn msg(node: &mut Node) -> Value {
    parse(&node.expect_line("MSG ", WAIT))
}

#[test]
fn a_node_ws_client_authenticates_pings_gets_events_and_a_1001_on_sigterm() {
    if !node_ready() {
        return;
    }
    let mut server = start("dashboard_events", &[], &CREDS);
    let url = format!("ws://{}/ws", server.addr);

    let mut refused_node = Node::spawn("ws-lines.js", &[&url, "admin:wrong"]);
    let line = refused_node.expect_line("UNEXPECTED ", WAIT);
    assert!(line.starts_with("401 Basic"), "{line}");
    let mut anonymous = Node::spawn("ws-lines.js", &[&url, ""]);
    assert!(anonymous.expect_line("UNEXPECTED ", WAIT).starts_with("401"));

    let mut node = Node::spawn("ws-lines.js", &[&url, "admin:pw 1:2", r#"{"type":"ping"}"#]);
    node.expect_line("OPEN", WAIT);
    let hello = msg(&mut node);
    assert_eq!(str_of(&hello, "type"), "auth.success", "{hello}");
    assert_eq!(hello.get("payload").map(|p| str_of(p, "user")), Some("admin"), "{hello}");
    let pong = msg(&mut node);
    assert_eq!(str_of(&pong, "type"), "pong", "{pong}");
    assert!(str_of(&pong, "timestamp").ends_with('Z'), "{pong}");

    // A server event reaches every client, the Node one and another.
    let mut other = Ws::connect(server.addr, "/ws", &[("authorization", &AUTH[15..])]).unwrap();
    assert_eq!(str_of(&other.next(), "type"), "auth.success");
    let event = r#"{"type":"session.updated","payload":{"id":"s1","state":"idle"}}"#;
    let r = post(server.addr, "/api/events", &[AUTH], event.as_bytes());
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json().get("delivered").and_then(Value::as_u64), Some(2), "{r:?}");
    for got in [msg(&mut node), other.next()] {
        assert_eq!(str_of(&got, "type"), "session.updated", "{got}");
        assert_eq!(got.get("payload"), Some(&parse(r#"{"id":"s1","state":"idle"}"#)));
    }
    assert_eq!(post(server.addr, "/api/events", &[], event.as_bytes()).status, 401);
    assert_eq!(post(server.addr, "/api/events", &[AUTH], b"[1]").status, 400);

    // Graceful shutdown: every client gets 1001 and the process exits cleanly.
    server.sigterm();
    assert!(node.expect_line("CLOSE ", WAIT).starts_with("1001"));
    assert_eq!(other.close_code(), 1001);
    assert!(server.wait_exit(WAIT).success());
}

#[test]
fn unknown_frames_get_an_error_and_other_paths_a_404() {
    let server = start("dashboard_events", &[], &CREDS);
    assert_eq!(refused(Ws::connect(server.addr, "/other", &[("authorization", &AUTH[15..])])), 404);
    let mut ws = Ws::connect(server.addr, "/ws", &[("authorization", &AUTH[15..])]).unwrap();
    assert_eq!(str_of(&ws.next(), "type"), "auth.success");
    for bad in ["{oops", r#"{"type":"subscribe"}"#, "[]"] {
        ws.send(bad);
        let e = ws.next();
        assert_eq!(str_of(&e, "type"), "error", "{bad}: {e}");
        assert!(!str_of(e.get("payload").unwrap(), "message").is_empty(), "{e}");
    }
}

#[test]
fn the_heartbeat_drops_a_client_that_never_answers() {
    let env = [CREDS[0], CREDS[1], ("DASHBOARD_PING_MS", "200"), ("DASHBOARD_TIMEOUT_MS", "1000")];
    let server = start("dashboard_events", &[], &env);
    super::silent_client_is_pinged_then_dropped(server.addr, "/ws", &[AUTH]);
}

/// The original's HTTPS server: with a certificate the example serves `wss://` and `https://`
/// only, and a Node `ws` client trusting the test CA sees the same exchange as over TCP.
#[cfg(feature = "tls")]
#[test]
fn over_tls_a_node_ws_client_authenticates_pings_gets_events_and_a_1001() {
    use super::common::tls::{Certs, connect};
    use std::io::{Read, Write};
    if !node_ready() {
        return;
    }
    let certs = Certs::new();
    let (cert, key) = (certs.cert(), certs.key());
    let tls = [
        ("DASHBOARD_TLS_CERT", cert.to_str().unwrap()),
        ("DASHBOARD_TLS_KEY", key.to_str().unwrap()),
    ];
    let mut server = start("dashboard_events", &[], &[CREDS[0], CREDS[1], tls[0], tls[1]]);
    // One listener, and it speaks TLS.
    let log = server.log_with("tls=true", WAIT);
    assert!(!log.contains("tls=false"), "{log}");
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let ca = certs.ca_str();
    let extra_ca = [("NODE_EXTRA_CA_CERTS", ca.as_str())];

    let mut refused_node = Node::spawn_env("ws-lines.js", &[&url, "admin:wrong"], &extra_ca);
    assert!(refused_node.expect_line("UNEXPECTED ", WAIT).starts_with("401 Basic"));
    let ping = r#"{"type":"ping"}"#;
    let mut node = Node::spawn_env("ws-lines.js", &[&url, "admin:pw 1:2", ping], &extra_ca);
    node.expect_line("OPEN", WAIT);
    assert_eq!(str_of(&msg(&mut node), "type"), "auth.success");
    assert_eq!(str_of(&msg(&mut node), "type"), "pong");

    // An event posted over HTTPS reaches the client over WSS.
    let event = r#"{"type":"cron.run","payload":{"job":"backup"}}"#;
    let mut https = connect(server.addr, &certs.ca());
    let head = format!("POST /api/events HTTP/1.1\r\nHost: localhost\r\n{AUTH}\r\n");
    let length = format!("Content-Length: {}\r\nConnection: close\r\n\r\n", event.len());
    https.write_all(format!("{head}{length}{event}").as_bytes()).unwrap();
    let (mut answer, mut buf) = (Vec::new(), [0u8; 4096]);
    // Until the server closes (with or without close_notify); reads time out after 10 s.
    while let Ok(n @ 1..) = https.read(&mut buf) {
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.ends_with(r#"{"delivered":1}"#), "{answer}");
    let got = msg(&mut node);
    assert_eq!(str_of(&got, "type"), "cron.run", "{got}");
    assert_eq!(got.get("payload"), Some(&parse(r#"{"job":"backup"}"#)));

    server.sigterm();
    assert!(node.expect_line("CLOSE ", WAIT).starts_with("1001"));
    assert!(server.wait_exit(WAIT).success());
}
