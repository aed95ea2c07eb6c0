//! The opening handshake: every bad upgrade gets its HTTP status (RFC 6455 §4.2.1, §4.4), and
//! plain HTTP is answered.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::net::SocketAddr;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for `/echo` built from a request line and header lines; `skip` leaves out
/// every standard header whose name starts with it, and `extra` adds lines.
fn upgrade(line: &str, skip: &[&str], extra: &[&str]) -> Vec<u8> {
    let standard = [
        "Host: localhost".to_owned(),
        "Upgrade: websocket".to_owned(),
        "Connection: Upgrade".to_owned(),
        format!("Sec-WebSocket-Key: {KEY}"),
        "Sec-WebSocket-Version: 13".to_owned(),
    ];
    let mut req = format!("{line}\r\n");
    for h in &standard {
        if !skip.iter().any(|s| h.starts_with(s)) {
            req.push_str(h);
            req.push_str("\r\n");
        }
    }
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

fn assert_status(addr: SocketAddr, req: &[u8], status: u16) -> String {
    let (head, _) = common::request(addr, req);
    assert_eq!(common::status(&head), status, "{head}");
    assert!(!head.contains("Sec-WebSocket-Accept"), "a refusal must not accept: {head}");
    head
}

fn server() -> SocketAddr {
    common::start(common::config())
}

#[test]
fn a_good_upgrade_gets_101() {
    let addr = server();
    let mut s = common::raw(addr);
    std::io::Write::write_all(&mut s, &upgrade("GET /echo HTTP/1.1", &[], &[])).unwrap();
    let head = common::read_head(&mut s);
    assert_eq!(common::status(&head), 101, "{head}");
    assert!(common::has_header(&head, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

#[test]
fn wrong_method_is_405() {
    assert_status(server(), &upgrade("POST /echo HTTP/1.1", &[], &[]), 405);
}

#[test]
fn http_1_0_upgrade_is_400() {
    assert_status(server(), &upgrade("GET /echo HTTP/1.0", &[], &[]), 400);
}

#[test]
fn missing_host_is_400() {
    assert_status(server(), &upgrade("GET /echo HTTP/1.1", &["Host"], &[]), 400);
}

#[test]
fn two_hosts_are_400() {
    let req = upgrade("GET /echo HTTP/1.1", &[], &["Host: other"]);
    assert_status(server(), &req, 400);
}

#[test]
fn no_connection_upgrade_is_400() {
    let addr = server();
    assert_status(addr, &upgrade("GET /echo HTTP/1.1", &["Connection"], &[]), 400);
    let req = upgrade("GET /echo HTTP/1.1", &["Connection"], &["Connection: keep-alive"]);
    assert_status(addr, &req, 400);
}

#[test]
fn no_upgrade_websocket_is_400() {
    let req = upgrade("GET /echo HTTP/1.1", &["Upgrade"], &["Upgrade: h2c"]);
    assert_status(server(), &req, 400);
}

#[test]
fn bad_key_is_400() {
    let addr = server();
    for key in [
        "not base64 at all!!!!!!!",
        "dGhlIHNhbXBsZSBub25jZQ",   // unpadded
        "dGhlIHNhbXBsZSBub25jZXg=", // 17 bytes
        "dGhlIHNhbXBsZSBub25j",     // 15 bytes
    ] {
        let extra = format!("Sec-WebSocket-Key: {key}");
        let req = upgrade("GET /echo HTTP/1.1", &["Sec-WebSocket-Key"], &[&extra]);
        assert_status(addr, &req, 400);
    }
}

#[test]
fn missing_key_is_400() {
    let req = upgrade("GET /echo HTTP/1.1", &["Sec-WebSocket-Key"], &[]);
    assert_status(server(), &req, 400);
}

#[test]
fn version_8_is_426_naming_13() {
    let req =
        upgrade("GET /echo HTTP/1.1", &["Sec-WebSocket-Version"], &["Sec-WebSocket-Version: 8"]);
    let head = assert_status(server(), &req, 426);
    assert!(common::has_header(&head, "Sec-WebSocket-Version", "13"), "{head}");
}

#[test]
fn missing_version_is_426_naming_13() {
    let req = upgrade("GET /echo HTTP/1.1", &["Sec-WebSocket-Version"], &[]);
    let head = assert_status(server(), &req, 426);
    assert!(common::has_header(&head, "Sec-WebSocket-Version", "13"), "{head}");
}

#[test]
fn head_over_8_kib_is_431() {
    let addr = server();
    // A complete head just over the limit, and one that never ends.
    let big = format!("X-Big: {}", "a".repeat(8200));
    assert_status(addr, &upgrade("GET /echo HTTP/1.1", &[], &[&big]), 431);
    let mut endless = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 9000));
    assert_status(addr, &endless, 431);
}

#[test]
fn head_just_under_8_kib_is_accepted() {
    let addr = server();
    let base = upgrade("GET /echo HTTP/1.1", &[], &[]).len();
    // "X-Pad: " and CRLF are 9 bytes.
    let pad = format!("X-Pad: {}", "a".repeat(8192 - base - 9));
    let req = upgrade("GET /echo HTTP/1.1", &[], &[&pad]);
    assert_eq!(req.len(), 8192);
    let mut s = common::raw(addr);
    std::io::Write::write_all(&mut s, &req).unwrap();
    let head = common::read_head(&mut s);
    assert_eq!(common::status(&head), 101, "{head}");
}

#[test]
fn too_many_headers_is_431() {
    let extra: Vec<String> = (0..64).map(|i| format!("X-H{i}: v")).collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    assert_status(server(), &upgrade("GET /echo HTTP/1.1", &[], &extra), 431);
}

#[test]
fn unknown_path_is_404() {
    let addr = server();
    assert_status(addr, &upgrade("GET /nowhere HTTP/1.1", &[], &[]), 404);
    assert_status(addr, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404);
}

#[test]
fn plain_get_healthz_is_200_ok() {
    let (head, body) =
        common::request(server(), b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(common::status(&head), 200, "{head}");
    assert_eq!(body, "ok\n");
}

#[test]
fn plain_get_on_the_echo_path_is_426() {
    let (head, _) =
        common::request(server(), b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(common::status(&head), 426, "{head}");
}

#[test]
fn http_11_keeps_the_connection_for_pipelined_requests() {
    // RFC 9112 §9.3: persistent by default; two pipelined requests are answered in order on
    // one connection, which stays open, and an upgrade may follow on it.
    let mut s = common::raw(server());
    std::io::Write::write_all(
        &mut s,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let first = common::read_head(&mut s);
    assert_eq!(common::status(&first), 200, "{first}");
    assert!(!first.to_ascii_lowercase().contains("connection: close"), "{first}");
    let mut body = [0u8; 3];
    std::io::Read::read_exact(&mut s, &mut body).unwrap();
    assert_eq!(&body, b"ok\n");
    let second = common::read_head(&mut s);
    assert_eq!(common::status(&second), 404, "{second}");
    let len: usize = second
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let mut body = vec![0u8; len];
    std::io::Read::read_exact(&mut s, &mut body).unwrap();
    std::io::Write::write_all(&mut s, common::UPGRADE.as_bytes()).unwrap();
    let head = common::read_head(&mut s);
    assert_eq!(common::status(&head), 101, "{head}");
}
