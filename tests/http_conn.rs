//! HTTP/1.1 connection rules on the real binary (RFC 9112, RFC 9110): pipelined requests wait
//! while their answers are unread, a half-closed client still gets every answer, `Expect:
//! 100-continue`, the `Host` rules, the absolute form of a request target, and
//! `Transfer-Encoding` in HTTP/1.0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;

use std::time::Duration;

use common::{Binary, eventually};
use http::{Http, get, publish, u64_of};

/// The requests served so far (`/api/stats` counts its own request too).
fn served(b: &Binary) -> u64 {
    u64_of(&get(b.addr, "/api/stats").json(), "http_requests")
}

/// A client that pipelines requests and reads none of the answers must not make the server
/// queue answers without end: it stops reading the client's requests while more than a little
/// is unsent, and serves the rest once the client reads. Every request is answered, in order.
#[test]
fn pipelined_requests_wait_while_their_answers_are_unread() {
    let b = Binary::start(&[]);
    let size = get(b.addr, "/console.js").body.len();
    assert!(size > 16 << 10, "console.js is {size} bytes");
    const N: usize = 2000; // 2000 answers of console.js: about 47 MB
    let mut c = Http::connect(b.addr);
    c.send(&b"GET /console.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(N));
    // The socket buffers hold a few MB of answers, a few hundred: the server must stop well
    // before all 2000. (A bounded wait for something that must not happen.)
    let before = served(&b);
    let all =
        eventually(Duration::from_secs(2), || (served(&b) >= before + N as u64).then_some(()));
    assert!(all.is_none(), "all {N} pipelined requests were answered while none was read");
    let v = get(b.addr, "/api/stats").json();
    let rss = u64_of(&v, "rss_bytes");
    assert!(rss < 40 << 20, "server RSS {rss} bytes with answers unread");
    c.set_timeout(Duration::from_secs(10));
    for i in 0..N {
        let r = c.response();
        assert_eq!((r.status, r.body.len()), (200, size), "answer {i}");
    }
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!((r.status, r.text()), (200, "ok\n"));
}

/// RFC 9112 §9.6: a client may half-close after its last request; it still reads the answers,
/// here larger than the socket buffers take at once.
#[test]
fn a_half_closed_client_gets_every_answer() {
    let b = Binary::start(&[]);
    let mut p = Http::connect(b.addr);
    let data = format!("\"{}\"", "x".repeat(60_000));
    for _ in 0..60 {
        publish(&mut p, "big", &data);
    }
    let history = get(b.addr, "/api/channels/big/history");
    assert_eq!(history.status, 200);
    assert!(history.body.len() > 3_000_000, "{}", history.body.len());
    for (n, close) in [(1, true), (1, false), (3, false)] {
        let mut c = Http::connect(b.addr);
        let before = served(&b);
        let header = if close { "Connection: close\r\n" } else { "" };
        let req = format!("GET /api/channels/big/history HTTP/1.1\r\nHost: x\r\n{header}\r\n");
        c.send(&req.repeat(n).into_bytes());
        c.shutdown_write();
        // Read once the server has taken the request (and, as a rule, the EOF after it).
        eventually(Duration::from_secs(5), || (served(&b) > before + 1).then_some(()))
            .expect("the request was not served");
        for i in 0..n {
            let r = c.response();
            assert_eq!((r.status, r.body.len()), (200, history.body.len()), "{n}, {close}: {i}");
        }
        c.expect_eof(Duration::from_secs(5));
    }
}

/// RFC 9110 §10.1.1: a request that expects 100-continue gets `100 Continue` before it sends
/// its content; an expectation the server cannot meet gets 417; HTTP/1.0 ignores it.
#[test]
fn expect_100_continue() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    c.send(
        b"POST /api/channels/e/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    let mut interim = [0u8; 25];
    c.read_raw(&mut interim);
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"{\"a\":1}");
    let r = c.response();
    assert_eq!((r.status, r.text()), (200, r#"{"seq":1}"#), "{r:?}");
    // Any other expectation.
    let r = c.request("POST", "/api/channels/e/publish", &["Expect: teapot"], Some(b"1"));
    assert_eq!(r.status, 417, "{r:?}");
    assert!(r.closes(), "{r:?}");
    // HTTP/1.0: ignored, the body comes with the head.
    let mut c = Http::connect(b.addr);
    c.send(
        b"POST /api/channels/e/publish HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n2",
    );
    let r = c.response();
    assert_eq!((r.status, r.text()), (200, r#"{"seq":2}"#), "{r:?}");
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or with more than one, is 400; HTTP/1.0
/// may leave it out.
#[test]
fn host_is_required_once_in_http11() {
    let b = Binary::start(&[]);
    for (what, req) in [
        ("no Host", &b"GET /healthz HTTP/1.1\r\n\r\n"[..]),
        ("two Hosts", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("a Host with a space", b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n"),
    ] {
        let mut c = Http::connect(b.addr);
        c.send(req);
        let r = c.response();
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert!(r.closes(), "{what}: {r:?}");
        c.expect_eof(Duration::from_secs(5));
    }
    let mut c = Http::connect(b.addr);
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.text()), (200, "ok\n"), "{r:?}");
}

/// RFC 9112 §3.2.2: a server accepts the absolute form of a request target.
#[test]
fn absolute_form_targets() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    for target in ["http://example.com/healthz", "HTTP://example.com:8080/healthz?x=1"] {
        let r = c.request("GET", target, &[], None);
        assert_eq!((r.status, r.text()), (200, "ok\n"), "{target}: {r:?}");
    }
    let r = c.request("GET", "http://example.com/nowhere", &[], None);
    assert_eq!(r.status, 404, "{r:?}");
    let r = c.request("GET", "http://example.com", &[], None);
    assert_eq!(r.status, 200, "an empty path is /: {r:?}");
}

/// RFC 9112 §6.1: `Transfer-Encoding` in an HTTP/1.0 request means its framing is faulty.
#[test]
fn transfer_encoding_in_http10_is_refused() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    c.send(
        b"POST /api/channels/t/publish HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n\
          2\r\n{}\r\n0\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 400, "{r:?}");
    c.expect_eof(Duration::from_secs(5));
    assert_eq!(get(b.addr, "/api/channels/t/history").status, 404, "it was published");
}
