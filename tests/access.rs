//! One access policy for every endpoint a peer can reach, over the real binary: the hub at
//! `/ws`, an echo path, a `--route` to an upstream this test runs, an `--exec` path, an agent's
//! WebSocket and `GET /api/agents`, and the channel API (publish, history, events), each with no,
//! wrong and right credentials (token, Basic) and with foreign, listed and wildcard origins. Also
//! the endpoints that stay open, `--public`, and the message rate on every kind of WebSocket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "scripts/support.rs"]
mod support;

use std::io::Write;
use std::net::SocketAddr;

use common::{Binary, frame, raw, read_frame, read_head, status};
use support::{Weir, script};

/// One endpoint: how it is reached.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A WebSocket upgrade; on a 101 one message is sent and one text message must come back
    /// (the echo, the program's line, or the app's greeting).
    Upgrade,
    /// A plain `GET`.
    Get,
    /// A `POST` with a JSON body.
    Post,
}

/// Every endpoint kind but the hub (whose missing token is not refused: it may `authenticate`
/// after the upgrade).
const ENDPOINTS: &[(Kind, &str)] = &[
    (Kind::Upgrade, "/echo"),
    (Kind::Upgrade, "/up"),
    (Kind::Upgrade, "/cmd"),
    (Kind::Upgrade, "/ws/agents/counter"),
    (Kind::Get, "/api/agents"),
    // First, so the channel has history.
    (Kind::Post, "/api/channels/t/publish"),
    (Kind::Get, "/api/channels/t/history"),
    (Kind::Get, "/api/channels/t/events"),
];

/// The status `path` answers with `headers`; a 101 must carry a working WebSocket.
fn call(addr: SocketAddr, kind: Kind, path: &str, headers: &[&str]) -> u16 {
    let mut s = raw(addr);
    let mut req = match kind {
        Kind::Upgrade => format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        ),
        Kind::Get => format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n"),
        Kind::Post => format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n"),
    };
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    if let Kind::Post = kind {
        req.push_str("{}");
    }
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    let code = status(&head);
    if code == 101 {
        s.write_all(&frame(0x81, b"hi")).unwrap();
        let f = read_frame(&mut s).unwrap_or_else(|| panic!("{path}: EOF after the 101"));
        assert_eq!(f.opcode(), 1, "{path}: {f:?}");
    }
    code
}

/// A weir echo at `/echo`, with no access rules, for the route to reach.
fn upstream() -> Binary {
    Binary::start(&["--echo", "/echo"])
}

/// weir with every endpoint kind and `policy`: echo at `/echo` and `/open`, a route `/up` to
/// `upstream`, an exec path `/cmd`, the agent `counter`, the hub.
fn server(upstream: &Binary, policy: &[&str]) -> Weir {
    let route = format!("/up=ws://{}/echo", upstream.addr);
    let exec = format!("/cmd={}", script("echo.sh"));
    let agent = format!("counter={}", script("counter.sh"));
    let mut args = vec!["--echo", "/echo", "--echo", "/open", "--route", &route];
    args.extend(["--exec", &exec, "--agent", &agent]);
    args.extend(policy);
    Weir::start(&args)
}

const RIGHT: &str = "Authorization: Bearer s3cret";

#[test]
fn tokens_and_origins_guard_every_endpoint() {
    let up = upstream();
    let weir = server(
        &up,
        &[
            "--token",
            "s3cret",
            "--origin",
            "https://app.example.com",
            "--origin",
            "https://*.example.org",
            "--public",
            "/open",
        ],
    );
    let addr = weir.addr();
    let ok = |kind| if let Kind::Upgrade = kind { 101 } else { 200 };
    for &(kind, path) in ENDPOINTS {
        // No credentials, wrong ones, a right one in the wrong scheme.
        for headers in
            [&[][..], &["Authorization: Bearer wrong"], &["Authorization: Basic czNjcmV0"]]
        {
            assert_eq!(call(addr, kind, path, headers), 401, "{path} {headers:?}");
        }
        assert_eq!(call(addr, kind, &format!("{path}?token=wrong"), &[]), 401, "{path}");
        assert_eq!(
            call(addr, kind, path, &["Origin: https://app.example.com"]),
            401,
            "{path}: a listed origin is no credential"
        );
        // The right token, in the header or the query.
        assert_eq!(call(addr, kind, path, &[RIGHT]), ok(kind), "{path}");
        assert_eq!(call(addr, kind, &format!("{path}?token=s3cret"), &[]), ok(kind), "{path}");
        // Origins: listed, and under the wildcard on a label boundary, with scheme and port
        // compared as the origin tuple (RFC 6454 §4, §5).
        for origin in [
            "Origin: https://app.example.com",
            "Origin: https://APP.example.com:443",
            "Origin: https://a.example.org",
            "Origin: https://b.a.example.org",
        ] {
            assert_eq!(call(addr, kind, path, &[RIGHT, origin]), ok(kind), "{path} {origin}");
        }
        for origin in [
            "Origin: https://evil.example",
            "Origin: https://evilexample.org",
            "Origin: https://example.org",
            "Origin: https://a.example.org.evil",
            "Origin: http://a.example.org",
            "Origin: https://a.example.org:8443",
            "Origin: http://app.example.com",
            "Origin: null",
        ] {
            assert_eq!(call(addr, kind, path, &[RIGHT, origin]), 403, "{path} {origin}");
        }
    }
    // The hub: a wrong token or origin is refused; no token is let in to `authenticate`.
    assert_eq!(call(addr, Kind::Upgrade, "/ws", &["Authorization: Bearer wrong"]), 401);
    assert_eq!(call(addr, Kind::Upgrade, "/ws", &[RIGHT, "Origin: https://evilexample.org"]), 403);
    assert_eq!(call(addr, Kind::Upgrade, "/ws", &["Origin: https://evil.example"]), 403);
    assert_eq!(call(addr, Kind::Upgrade, "/ws", &[]), 101);
    assert_eq!(call(addr, Kind::Upgrade, "/ws", &[RIGHT, "Origin: https://a.example.org"]), 101);
    // What stays open: health, stats, metrics, the console; and the `--public` path, from any
    // page. Any other path needs the credentials too.
    for path in ["/healthz", "/api/stats", "/metrics", "/", "/console.css", "/console.js"] {
        assert_eq!(call(addr, Kind::Get, path, &["Origin: https://evil.example"]), 200, "{path}");
    }
    assert_eq!(call(addr, Kind::Upgrade, "/open", &[]), 101);
    assert_eq!(call(addr, Kind::Upgrade, "/open", &["Origin: https://evil.example"]), 101);
    assert_eq!(call(addr, Kind::Get, "/nothing-here", &[]), 401);
    assert_eq!(call(addr, Kind::Get, "/nothing-here", &[RIGHT]), 404);
}

#[test]
fn basic_auth_and_the_same_origin_rule_guard_every_endpoint() {
    let up = upstream();
    let weir = server(&up, &["--basic-auth", "admin:pw"]);
    let addr = weir.addr();
    let good = "Authorization: Basic YWRtaW46cHc=";
    let same = format!("Origin: http://{addr}");
    let endpoints = ENDPOINTS.iter().copied().chain([(Kind::Upgrade, "/ws")]);
    for (kind, path) in endpoints {
        let ok = if let Kind::Upgrade = kind { 101 } else { 200 };
        for headers in [&[][..], &["Authorization: Basic YWRtaW46bm9wZQ=="], &[same.as_str()]] {
            assert_eq!(call(addr, kind, path, headers), 401, "{path} {headers:?}");
        }
        assert_eq!(call(addr, kind, path, &[good]), ok, "{path}");
        assert_eq!(call(addr, kind, path, &[good, &same]), ok, "{path}");
        // Basic credentials a browser resends cross-site open nothing from another page.
        for origin in ["Origin: https://evil.example", "Origin: null"] {
            assert_eq!(call(addr, kind, path, &[good, origin]), 403, "{path} {origin}");
        }
    }
}

#[test]
fn a_route_over_the_hubs_path_needs_the_token_on_the_upgrade() {
    let up = upstream();
    let route = format!("/ws=ws://{}/echo", up.addr);
    let weir = Weir::start(&["--token", "s3cret", "--route", &route]);
    // The hub would let this in to `authenticate`; the route it goes to cannot.
    assert_eq!(call(weir.addr(), Kind::Upgrade, "/ws", &[]), 401);
    assert_eq!(call(weir.addr(), Kind::Upgrade, "/ws", &[RIGHT]), 101);
}

/// Reads frames until a close and returns its code (bounded by the socket's read timeout).
fn close_code_after(s: &mut std::net::TcpStream) -> u16 {
    loop {
        let f = read_frame(s).expect("EOF before a close frame");
        if f.opcode() == 8 {
            return f.close_code();
        }
    }
}

#[test]
fn the_message_rate_holds_on_every_kind_of_websocket() {
    let up = upstream();
    // 1 message a second after a burst of 2: the test sends 4 at once.
    let weir = server(&up, &["--rate", "1", "--rate-burst", "2"]);
    for path in ["/echo", "/up", "/cmd", "/ws/agents/counter"] {
        let mut s = raw(weir.addr());
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        assert_eq!(status(&read_head(&mut s)), 101, "{path}");
        let mut burst = Vec::new();
        for _ in 0..4 {
            burst.extend(frame(0x81, b"{}"));
        }
        s.write_all(&burst).unwrap();
        assert_eq!(close_code_after(&mut s), 1008, "{path}");
    }
    weir.bin.log_with("rate limit exceeded", std::time::Duration::from_secs(5));
}
