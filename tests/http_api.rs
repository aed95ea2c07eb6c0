//! The HTTP API on the real binary: every endpoint, malformed requests, keep-alive, and
//! server-sent events (resuming with `Last-Event-ID` without gap or duplicate, slow readers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Binary, eventually};
use http::{Http, Resp, Sse, get, post, publish, u64_of};
use weir::json::Value;

/// `admin:pw` in Base64.
const GOOD_BASIC: &str = "Authorization: Basic YWRtaW46cHc=";

fn stats(b: &Binary) -> Value {
    let r = get(b.addr, "/api/stats");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    r.json()
}

/// The `seq` of every message in a history answer.
fn history_seqs(r: &Resp) -> Vec<u64> {
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let msgs = v.get("messages").and_then(Value::as_array).unwrap_or_else(|| panic!("{v}"));
    msgs.iter().map(|m| u64_of(m, "seq")).collect()
}

#[test]
fn healthz_get_and_head_keep_the_connection() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!((r.status, r.text()), (200, "ok\n"), "{r:?}");
    assert!(!r.closes(), "{r:?}");
    // HEAD: the same head, no body; the next response on the connection must start clean.
    let r = c.request("HEAD", "/healthz", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("3"), "{r:?}");
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!((r.status, r.text()), (200, "ok\n"), "{r:?}");
}

#[test]
fn healthz_during_shutdown_is_503_on_a_kept_alive_connection() {
    let mut b = Binary::start(&["--shutdown-timeout", "20s"]);
    let mut c = Http::connect(b.addr);
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!((r.status, r.text()), (200, "ok\n"));
    b.sigterm();
    eventually(Duration::from_secs(5), || b.log().contains("shutting down").then_some(()))
        .unwrap_or_else(|| panic!("no drain in the log:\n{}", b.log()));
    // The listeners are closed: new clients are refused at once.
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect(b.addr).err()).is_some(),
        "still accepting during the drain"
    );
    // A request on a connection already open is answered 503, and the connection closes.
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.text(), "server shutting down\n", "{r:?}");
    assert!(r.closes(), "{r:?}");
    assert_eq!(r.header("retry-after"), Some("5"), "{r:?}");
    c.expect_eof(Duration::from_secs(5));
    drop(c);
    // Its last connection gone, the server exits without waiting for the timeout.
    let st = b.wait_exit(Duration::from_secs(5));
    assert!(st.success(), "{st:?}\n{}", b.log());
}

#[test]
fn event_streams_end_at_shutdown_without_waiting_for_the_timeout() {
    let mut b = Binary::start(&["--shutdown-timeout", "20s"]);
    let mut sse = Sse::open(b.addr, "/api/channels/bye/events", &[]);
    assert_eq!(sse.block().and_then(|b| b.retry).as_deref(), Some("2000"));
    b.sigterm();
    // Like a WebSocket getting its 1001, the stream ends now (EventSource reconnects
    // elsewhere), and the server exits long before the 20 s timeout.
    sse.socket().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let rest = sse.rest(Duration::from_secs(5));
    assert!(rest.is_empty(), "{rest:?}");
    drop(sse);
    let st = b.wait_exit(Duration::from_secs(5));
    assert!(st.success(), "{st:?}\n{}", b.log());
}

#[test]
fn stats_has_the_documented_fields_and_they_move() {
    let b = Binary::start(&[]);
    let before = stats(&b);
    for key in [
        "connections",
        "connections_total",
        "http_requests",
        "messages_in",
        "messages_out",
        "bytes_in",
        "bytes_out",
        "slow_reader_disconnects",
        "rss_bytes",
        "channels",
        "subscriptions",
        "published",
        "delivered",
        "rate_limited",
    ] {
        u64_of(&before, key);
    }
    assert!(u64_of(&before, "rss_bytes") > 0, "{before}");
    assert_eq!(u64_of(&before, "published"), 0, "{before}");
    // A WebSocket hub client, an event stream, and two publishes.
    let mut ws = common::raw(b.addr);
    ws.write_all(common::UPGRADE.replace("GET /echo", "GET /ws").as_bytes()).unwrap();
    let head = common::read_head(&mut ws);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut sse = Sse::open(b.addr, "/api/channels/counted/events", &[]);
    let mut c = Http::connect(b.addr);
    publish(&mut c, "counted", "1");
    publish(&mut c, "counted", "2");
    assert_eq!(sse.event().seq(), 1);
    assert_eq!(sse.event().seq(), 2);
    let after = stats(&b);
    assert_eq!(u64_of(&after, "published"), 2, "{after}");
    assert_eq!(u64_of(&after, "delivered"), 2, "{after}");
    assert_eq!(u64_of(&after, "channels"), 1, "{after}");
    assert_eq!(u64_of(&after, "connections"), 1, "{after}");
    assert_eq!(u64_of(&after, "connections_total"), 1, "{after}");
    // The first stats, the stream, two publishes; this one counts after its answer is made.
    let requests = u64_of(&after, "http_requests") - u64_of(&before, "http_requests");
    assert_eq!(requests, 4, "{before}\n{after}");
    assert!(u64_of(&after, "bytes_out") > u64_of(&before, "bytes_out"), "{before}\n{after}");
}

#[test]
fn metrics_are_prometheus_text() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    publish(&mut c, "m", "{}");
    let r = c.request("GET", "/metrics", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    let ctype = r.header("content-type").unwrap_or_default();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = r.text();
    for (name, kind) in [
        ("weir_connections_open", "gauge"),
        ("weir_connections_total", "counter"),
        ("weir_http_requests_total", "counter"),
        ("weir_hub_published_total", "counter"),
        ("process_open_fds", "gauge"),
    ] {
        let help = format!("# HELP {name} ");
        assert!(text.lines().any(|l| l.starts_with(&help)), "no HELP for {name}:\n{text}");
        let ty = format!("# TYPE {name} {kind}");
        assert!(text.lines().any(|l| l == ty), "no TYPE for {name}:\n{text}");
    }
    assert!(text.starts_with("# HELP "), "{text}");
    assert!(text.contains("\nweir_hub_published_total 1\n"), "{text}");
    assert!(text.contains("\nweir_http_requests_total 1\n"), "{text}");
    assert!(text.ends_with('\n'), "{text}");
}

#[test]
fn publish_with_a_length_or_chunked_and_read_it_back() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    // Content-Length; the data is kept byte for byte (a big integer, spacing).
    let data = r#"{"n": 123456789012345678901234567890, "s":"é"}"#;
    let r = c.request("POST", "/api/channels/a.b/publish", &[], Some(data.as_bytes()));
    assert_eq!((r.status, r.text()), (200, r#"{"seq":1}"#), "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert!(!r.closes(), "{r:?}");
    // Chunked, in three chunks (one with an extension) and a trailer, on the same connection.
    c.send(
        b"POST /api/channels/a.b/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\n[1, \r\n3;ext=1\r\n\"tw\r\n3\r\no\"]\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    let r = c.response();
    assert_eq!((r.status, r.text()), (200, r#"{"seq":2}"#), "{r:?}");
    let r = c.request("GET", "/api/channels/a.b/history", &[], None);
    assert_eq!(history_seqs(&r), [1, 2]);
    // The messages are the event objects, with the data as sent.
    let body = r.text();
    assert!(body.contains(r#""data":{"n": 123456789012345678901234567890, "s":"é"}"#), "{body}");
    assert!(body.contains(r#""data":[1, "two"]"#), "{body}");
    assert!(body.contains(r#""from":"http""#), "{body}");
    // Channel names may hold '/' (the action is the last segment).
    let r = c.request("POST", "/api/channels/team/builds/publish", &[], Some(b"true"));
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.request("GET", "/api/channels/team/builds/history", &[], None);
    assert_eq!(history_seqs(&r), [1]);
}

#[test]
fn publish_refusals() {
    let b = Binary::start(&["--max-publish-size", "1KiB"]);
    let path = "/api/channels/p/publish";
    let mut c = Http::connect(b.addr);
    let r = c.request("POST", path, &[], Some(b"{\"a\":"));
    assert_eq!((r.status, r.error_code().as_str()), (400, "parse_error"), "{r:?}");
    let r = c.request("POST", path, &[], Some(b""));
    assert_eq!((r.status, r.error_code().as_str()), (400, "parse_error"), "{r:?}");
    // The connection survives refusals the API makes; exactly the limit is accepted.
    let at_limit = format!("\"{}\"", "x".repeat(1022));
    let r = c.request("POST", path, &[], Some(at_limit.as_bytes()));
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.request("GET", path, &[], None);
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow"), Some("POST"), "{r:?}");
    for bad in ["bad$name", "sp%20ace", &"x".repeat(129)] {
        let r = c.request("POST", &format!("/api/channels/{bad}/publish"), &[], Some(b"1"));
        assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{bad}: {r:?}");
    }
    let v = stats(&b);
    assert_eq!((u64_of(&v, "channels"), u64_of(&v, "published")), (1, 1), "{v}");
    // One byte over, with a length: refused from the head.
    let over = format!("\"{}\"", "x".repeat(1023));
    let r = post(b.addr, path, &[], over.as_bytes());
    assert_eq!(r.status, 413, "{r:?}");
    // Chunked, over the limit only once decoded.
    let mut s = Http::connect(b.addr);
    let mut req =
        b"POST /api/channels/p/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for part in over.as_bytes().chunks(200) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.send(&req);
    let r = s.response();
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.closes(), "{r:?}");
    s.expect_eof(Duration::from_secs(5));
    let r = c.request("GET", "/api/channels/p/history", &[], None);
    assert_eq!(history_seqs(&r), [1]);
}

#[test]
fn publish_and_history_need_the_token_when_one_is_set() {
    let b = Binary::start(&["--token", "s3cret"]);
    let mut c = Http::connect(b.addr);
    let path = "/api/channels/t/publish";
    for headers in [&[][..], &["Authorization: Bearer wrong"], &["Authorization: Basic czNjcmV0"]] {
        let r = c.request("POST", path, headers, Some(b"1"));
        assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"weir\""), "{r:?}");
    }
    let r = c.request("POST", &format!("{path}?token=wrong"), &[], Some(b"1"));
    assert_eq!(r.status, 401, "{r:?}");
    let r = c.request("GET", "/api/channels/t/history", &[], None);
    assert_eq!(r.status, 401, "{r:?}");
    let r = c.request("POST", path, &["Authorization: Bearer s3cret"], Some(b"1"));
    assert_eq!((r.status, r.text()), (200, r#"{"seq":1}"#), "{r:?}");
    let r = c.request("POST", &format!("{path}?token=s3cret"), &[], Some(b"2"));
    assert_eq!((r.status, r.text()), (200, r#"{"seq":2}"#), "{r:?}");
    let r = c.request("GET", "/api/channels/t/history?token=s3cret", &[], None);
    assert_eq!(history_seqs(&r), [1, 2]);
    // The query value is percent-decoded (`s3cret` with escapes); a bad escape is a 401.
    let r = c.request("POST", &format!("{path}?token=s3c%72%65t"), &[], Some(b"3"));
    assert_eq!((r.status, r.text()), (200, r#"{"seq":3}"#), "{r:?}");
    for q in ["?token=s3cret%", "?token=s3cret%2", "?token=s3cre%zz"] {
        let r = c.request("GET", &format!("/api/channels/t/history{q}"), &[], None);
        assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{q}: {r:?}");
    }
    // Health needs no token.
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn channel_endpoints_follow_basic_auth_and_the_origin_allow_list() {
    let b = Binary::start(&["--basic-auth", "admin:pw", "--origin", "https://app.example"]);
    let mut c = Http::connect(b.addr);
    let app = "Origin: https://app.example";
    let evil = "Origin: https://evil.example";
    // What a cross-site form can send with no preflight: refused for its origin, credentials
    // or not, and nothing is published.
    for headers in [&[evil, "Content-Type: text/plain"][..], &[evil, GOOD_BASIC]] {
        let r = c.request("POST", "/api/channels/secret/publish", headers, Some(b"1"));
        assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"), "{headers:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), None, "{r:?}");
    }
    // No credentials, or wrong ones: 401 with the Basic challenge, on every endpoint.
    let bad = "Authorization: Basic YWRtaW46bm9wZQ==";
    for (method, action) in [("POST", "publish"), ("GET", "history"), ("GET", "events")] {
        for headers in [&[][..], &[app], &[bad], &["Authorization: Bearer YWRtaW46cHc="]] {
            let body = (method == "POST").then_some(&b"1"[..]);
            let r = c.request(method, &format!("/api/channels/secret/{action}"), headers, body);
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (401, "unauthorized"),
                "{action} {headers:?}: {r:?}"
            );
            assert_eq!(
                r.header("www-authenticate"),
                Some(r#"Basic realm="weir", charset="UTF-8""#),
                "{r:?}"
            );
        }
        let r = c.request(method, &format!("/api/channels/secret/{action}"), &[evil], None);
        assert_eq!(r.status, 403, "{action}: {r:?}");
    }
    // With the credentials, from an allowed origin or from no browser at all.
    for headers in [&[GOOD_BASIC][..], &[GOOD_BASIC, app]] {
        let r = c.request("POST", "/api/channels/secret/publish", headers, Some(b"{}"));
        assert_eq!(r.status, 200, "{headers:?}: {r:?}");
    }
    let r = c.request("GET", "/api/channels/secret/history", &[GOOD_BASIC, app], None);
    assert_eq!(history_seqs(&r), [1, 2]);
    let mut sse = Sse::open(b.addr, "/api/channels/secret/events?since=1", &[GOOD_BASIC, app]);
    assert_eq!(sse.event().seq(), 2);
    // Health, stats, metrics and the console stay open (they carry no channel data).
    for path in ["/healthz", "/api/stats", "/metrics", "/", "/console.js"] {
        let r = c.request("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    // A repeated Origin is refused, as on the upgrade, whichever comes first (RFC 6454 §7.3).
    for origins in [[app, evil], [evil, app]] {
        let mut c = Http::connect(b.addr);
        let headers = [origins[0], origins[1], GOOD_BASIC];
        let r = c.request("POST", "/api/channels/secret/publish", &headers, Some(b"{}"));
        assert_eq!(r.status, 400, "{origins:?}: {r:?}");
    }
    let r = c.request("GET", "/api/channels/secret/history", &[GOOD_BASIC], None);
    assert_eq!(history_seqs(&r), [1, 2], "nothing was published");
}

#[test]
fn channel_endpoints_with_basic_auth_and_no_allow_list_are_same_origin_only() {
    let b = Binary::start(&["--basic-auth", "admin:pw"]);
    let mut c = Http::connect(b.addr);
    // The helpers send `Host: localhost`: a page of that origin is the same origin.
    let r = c.request(
        "POST",
        "/api/channels/s/publish",
        &[GOOD_BASIC, "Origin: http://localhost"],
        Some(b"1"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    for origin in ["Origin: http://evil.example", "Origin: http://localhost:1", "Origin: null"] {
        for (method, action) in [("POST", "publish"), ("GET", "history"), ("GET", "events")] {
            let body = (method == "POST").then_some(&b"1"[..]);
            let target = format!("/api/channels/s/{action}");
            let r = c.request(method, &target, &[GOOD_BASIC, origin], body);
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (403, "forbidden"),
                "{origin} {action}: {r:?}"
            );
        }
    }
    let r = c.request("GET", "/api/channels/s/history", &[GOOD_BASIC], None);
    assert_eq!(history_seqs(&r), [1]);
}

#[test]
fn channel_endpoints_with_basic_auth_and_a_token_need_both() {
    let b = Binary::start(&["--basic-auth", "admin:pw", "--token", "s3cret"]);
    let mut c = Http::connect(b.addr);
    let path = "/api/channels/both/publish";
    // `Authorization` holds one scheme: with Basic in it, the token goes in the query.
    let r = c.request("POST", path, &[GOOD_BASIC], Some(b"1"));
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some(r#"Bearer realm="weir""#)),
        "{r:?}"
    );
    let r = c.request("POST", &format!("{path}?token=s3cret"), &[], Some(b"1"));
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Basic ")), "{r:?}");
    let r = c.request("POST", &format!("{path}?token=s3cret"), &[GOOD_BASIC], Some(b"1"));
    assert_eq!((r.status, r.text()), (200, r#"{"seq":1}"#), "{r:?}");
}

#[test]
fn history_since_and_limit() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    for i in 1..=5 {
        assert_eq!(publish(&mut c, "h", &format!("{{\"i\":{i}}}")), i);
    }
    let h =
        |c: &mut Http, q: &str| c.request("GET", &format!("/api/channels/h/history{q}"), &[], None);
    assert_eq!(history_seqs(&h(&mut c, "")), [1, 2, 3, 4, 5]);
    assert_eq!(history_seqs(&h(&mut c, "?since=2")), [3, 4, 5]);
    assert_eq!(history_seqs(&h(&mut c, "?since=2&limit=2")), [4, 5]);
    assert_eq!(history_seqs(&h(&mut c, "?limit=1")), [5]);
    assert_eq!(history_seqs(&h(&mut c, "?since=5")), Vec::<u64>::new());
    let r = h(&mut c, "?since=0");
    assert_eq!(u64_of(&r.json(), "seq"), 5);
    let r = h(&mut c, "?since=2");
    let v = r.json();
    let first = &v.get("messages").and_then(Value::as_array).unwrap()[0];
    assert_eq!(first.get("data").and_then(|d| d.get("i")).and_then(Value::as_u64), Some(3), "{v}");
    // Digits only: no sign, no space, at most 20 digits, no overflow.
    assert_eq!(history_seqs(&h(&mut c, "?since=00000000000000000003")), [4, 5]);
    assert_eq!(history_seqs(&h(&mut c, "?since=18446744073709551615")), Vec::<u64>::new());
    for q in [
        "?since=x",
        "?since=-1",
        "?limit=1.5",
        "?since=",
        "?since=+1",
        "?limit=+1",
        "?since=%2B1",
        "?since=1%20",
        "?since=%201",
        "?since=0x1",
        "?since=18446744073709551616",
        "?since=000000000000000000003",
    ] {
        let r = h(&mut c, q);
        assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{q}: {r:?}");
    }
    let r = c.request("GET", "/api/channels/nope/history", &[], None);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{r:?}");
    let r = c.request("GET", "/api/channels/bad$/history", &[], None);
    assert_eq!(r.status, 400, "{r:?}");
    let r = c.request("POST", "/api/channels/h/history", &[], Some(b"{}"));
    assert_eq!(r.status, 405, "{r:?}");
    let r = c.request("GET", "/api/channels/h/nothing", &[], None);
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn events_stream_publishes_with_multiline_data() {
    let b = Binary::start(&[]);
    let mut sse = Sse::open(b.addr, "/api/channels/demo/events", &[]);
    assert!(sse.head.contains("\r\nCache-Control: no-cache"), "{}", sse.head);
    let first = sse.block().expect("no first block");
    assert_eq!(first.retry.as_deref(), Some("2000"), "{first:?}");
    assert!(first.data.is_empty(), "{first:?}");
    let mut c = Http::connect(b.addr);
    assert_eq!(publish(&mut c, "demo", r#"{"k":"v"}"#), 1);
    let e = sse.event();
    assert_eq!((e.seq(), e.event.as_deref()), (1, Some("message")), "{e:?}");
    assert_eq!(e.data.len(), 1, "{e:?}");
    let v = e.json();
    assert_eq!(v.get("channel").and_then(Value::as_str), Some("demo"), "{v}");
    assert_eq!(v.get("data").and_then(|d| d.get("k")).and_then(Value::as_str), Some("v"), "{v}");
    // Newlines in the data JSON (whitespace between tokens): one `data:` line per line.
    let data = "{\"text\": \"a\\nb\",\n  \"list\": [1,\n 2]\n}";
    assert_eq!(publish(&mut c, "demo", data), 2);
    let e = sse.event();
    assert_eq!(e.seq(), 2);
    assert_eq!(e.data.len(), 4, "{e:?}");
    let v = e.json();
    assert_eq!(u64_of(&v, "seq"), 2, "{v}");
    let d = v.get("data").unwrap();
    assert_eq!(d.get("text").and_then(Value::as_str), Some("a\nb"), "{v}");
    let list: Vec<u64> = d
        .get("list")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(list, [1, 2], "{v}");
    assert!(e.data().contains(data), "the data is not as sent: {e:?}");
    // Another channel's messages do not arrive here.
    publish(&mut c, "other", "0");
    assert_eq!(publish(&mut c, "demo", "3"), 3);
    assert_eq!(sse.event().seq(), 3);
    // Only GET streams; a bad channel name is refused.
    let r = c.request("POST", "/api/channels/demo/events", &[], Some(b"1"));
    assert_eq!(r.status, 405, "{r:?}");
    let r = c.request("GET", "/api/channels/no$/events", &[], None);
    assert_eq!(r.status, 400, "{r:?}");
}

#[test]
fn events_resume_after_last_event_id_without_gap_or_duplicate() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    let mut sse = Sse::open(b.addr, "/api/channels/r/events", &[]);
    for i in 1..=3 {
        publish(&mut c, "r", &format!("{{\"i\":{i}}}"));
    }
    let seen: Vec<u64> = (0..3).map(|_| sse.event().seq()).collect();
    assert_eq!(seen, [1, 2, 3]);
    drop(sse);
    // Published while nobody listens.
    for i in 4..=6 {
        publish(&mut c, "r", &format!("{{\"i\":{i}}}"));
    }
    // What a reconnecting EventSource sends; it wins over `?since=`.
    let mut sse = Sse::open(b.addr, "/api/channels/r/events?since=1", &["Last-Event-ID: 3"]);
    let first = sse.block().unwrap();
    assert_eq!(first.retry.as_deref(), Some("2000"), "{first:?}");
    for i in 7..=8 {
        publish(&mut c, "r", &format!("{{\"i\":{i}}}"));
    }
    let got: Vec<(u64, u64)> = (0..5)
        .map(|_| {
            let e = sse.event();
            (
                e.seq(),
                e.json().get("data").and_then(|d| d.get("i")).and_then(Value::as_u64).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(4, 4), (5, 5), (6, 6), (7, 7), (8, 8)]);
    // Nothing repeated after them: the next event is the next message.
    publish(&mut c, "r", "9");
    assert_eq!(sse.event().seq(), 9);
    // `?since=` alone does the same.
    let mut since = Sse::open(b.addr, "/api/channels/r/events?since=6", &[]);
    let seqs: Vec<u64> = (0..3).map(|_| since.event().seq()).collect();
    assert_eq!(seqs, [7, 8, 9]);
    publish(&mut c, "r", "10");
    assert_eq!(since.event().seq(), 10);
    assert_eq!(sse.event().seq(), 10);
}

#[test]
fn events_refuse_a_bad_since_or_last_event_id() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    for i in 1..=3 {
        publish(&mut c, "n", &i.to_string());
    }
    let path = "/api/channels/n/events";
    // A bad `since` is refused as on history, not ignored (a stream that starts live would
    // hide the messages the client asked for).
    for q in ["?since=bad", "?since=+1", "?since=", "?since=-1", "?since=99999999999999999999"] {
        let r = c.request("GET", &format!("{path}{q}"), &[], None);
        assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{q}: {r:?}");
    }
    // A bad Last-Event-ID is refused too, even beside a good `since`: weir made every id a
    // browser resends, so a bad one is not from a browser.
    for id in ["+1", "x", "1.0", "-1", "1 2", "0x1"] {
        let r =
            c.request("GET", &format!("{path}?since=1"), &[&format!("Last-Event-ID: {id}")], None);
        assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{id}: {r:?}");
    }
    // A bad `since` beside a good Last-Event-ID is refused as well.
    let r = c.request("GET", &format!("{path}?since=x"), &["Last-Event-ID: 1"], None);
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_params"), "{r:?}");
    // Good ones still resume; the connection survived the refusals.
    let mut sse = Sse::open(b.addr, path, &["Last-Event-ID: 2"]);
    assert_eq!(sse.event().seq(), 3);
    let mut sse = Sse::open(b.addr, &format!("{path}?since=01"), &[]);
    assert_eq!(sse.event().seq(), 2);
    assert_eq!(publish(&mut c, "n", "4"), 4);
}

/// A stream that would create a channel past `--max-channels` is refused as a publish is: 403.
#[test]
fn events_past_the_channel_limit_are_403() {
    let b = Binary::start(&["--max-channels", "1"]);
    let mut c = Http::connect(b.addr);
    publish(&mut c, "one", "1");
    let r = c.request("GET", "/api/channels/two/events", &[], None);
    assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"), "{r:?}");
    let r = c.request("POST", "/api/channels/two/publish", &[], Some(b"1"));
    assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"), "{r:?}");
}

#[test]
fn an_event_stream_that_never_reads_is_dropped_and_others_keep_receiving() {
    let b = Binary::start(&["--queue-cap", "64KiB"]);
    let mut stuck = Sse::open(b.addr, "/api/channels/slow/events", &[]);
    let reader = Sse::open(b.addr, "/api/channels/slow/events", &[]);
    let last = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&last);
    let thread = std::thread::spawn(move || {
        let mut reader = reader;
        let mut want = 1;
        loop {
            let e = reader.event();
            assert_eq!(e.seq(), want, "a gap or a duplicate on the reading stream");
            seen.store(want, Ordering::SeqCst);
            if e.data().contains("\"last\"") {
                return reader;
            }
            want += 1;
        }
    });
    // Until the server drops the stuck one (the kernel buffers a few MB first), ~16 KiB a
    // message, pacing on the reader so that only the stuck stream falls behind.
    let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(16 << 10));
    let mut c = Http::connect(b.addr);
    let mut published = 0;
    while u64_of(&stats(&b), "slow_reader_disconnects") == 0 {
        assert!(published < 2000, "no slow-reader drop after {published} messages");
        for _ in 0..32 {
            published = publish(&mut c, "slow", &data);
        }
        eventually(Duration::from_secs(10), || {
            (last.load(Ordering::SeqCst) == published).then_some(())
        })
        .unwrap_or_else(|| panic!("the reader is stuck at {last:?} of {published}"));
    }
    let end = publish(&mut c, "slow", "{\"last\":true}");
    let mut reader = thread.join().unwrap();
    assert_eq!(last.load(Ordering::SeqCst), end);
    assert_eq!(u64_of(&stats(&b), "slow_reader_disconnects"), 1);
    // The stuck stream gets what was already on its way, in order, then EOF.
    stuck.socket().set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = stuck.rest(Duration::from_secs(15));
    assert!(!got.is_empty() && (got.len() as u64) < end, "{} of {end}", got.len());
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.seq(), i as u64 + 1);
    }
    // The reader still gets new messages.
    let n = publish(&mut c, "slow", "1");
    assert_eq!(reader.event().seq(), n);
}

#[test]
fn keep_alive_pipelining_and_close() {
    let b = Binary::start(&[]);
    // Sequential on one connection.
    let mut c = Http::connect(b.addr);
    for _ in 0..3 {
        let r = c.request("GET", "/healthz", &[], None);
        assert_eq!((r.status, r.closes()), (200, false), "{r:?}");
    }
    // Pipelined in one write: a GET, a POST with a body, a GET; answered in order.
    let mut req = http::build("GET", "/healthz", &[], None);
    req.extend(http::build("POST", "/api/channels/k/publish", &[], Some(b"[1]")));
    req.extend(http::build("GET", "/api/channels/k/history", &[], None));
    c.send(&req);
    assert_eq!(c.response().text(), "ok\n");
    assert_eq!(c.response().text(), r#"{"seq":1}"#);
    assert_eq!(history_seqs(&c.response()), [1]);
    // `Connection: close` is honoured.
    let r = c.request("GET", "/healthz", &["Connection: close"], None);
    assert_eq!((r.status, r.closes()), (200, true), "{r:?}");
    c.expect_eof(Duration::from_secs(5));
    // HTTP/1.0 closes after the response (no keep-alive without asking).
    let mut c = Http::connect(b.addr);
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.text(), r.closes()), (200, "ok\n", true), "{r:?}");
    c.expect_eof(Duration::from_secs(5));
}

#[test]
fn many_pipelined_requests_in_one_write_are_all_answered() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    c.set_timeout(Duration::from_secs(3));
    let n = 40;
    c.send(&http::build("GET", "/healthz", &[], None).repeat(n));
    for i in 0..n {
        let r = c.response();
        assert_eq!(r.status, 200, "response {i}: {r:?}");
    }
}

#[test]
fn malformed_requests_get_their_status_and_spare_other_connections() {
    let b = Binary::start(&[]);
    let mut bystander = Http::connect(b.addr);
    let r = bystander.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(10 << 10));
    let cases: [(&str, &[u8], u16); 12] = [
        ("bad request line", b"GET\r\n\r\n", 400),
        ("two spaces in the request line", b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("space before the colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (
            "Transfer-Encoding and Content-Length",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\n1\r\n0\r\n\r\n",
            400,
        ),
        (
            "Transfer-Encoding gzip",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (
            "invalid Content-Length",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n1",
            400,
        ),
        (
            "two different Content-Lengths",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n12",
            400,
        ),
        (
            "bad chunk size",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n1\r\n0\r\n\r\n",
            400,
        ),
        (
            // Before: the next request was read as a trailer line and never answered, where a
            // front end that ends lines at a bare LF would have forwarded it as a request.
            "bare LF ending the trailers, a request after it",
            b"POST /api/channels/m/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n1\r\n0\r\n\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        ("head too large", big.as_bytes(), 431),
        ("unknown path", b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        ("POST to /healthz", b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
    ];
    for (what, req, want) in cases {
        let mut c = Http::connect(b.addr);
        c.send(req);
        let r = c.response();
        assert_eq!(r.status, want, "{what}: {r:?}");
        assert!(r.closes(), "{what}: {r:?}");
        c.expect_eof(Duration::from_secs(5));
        // The other connection is still open and served.
        let r = bystander.request("GET", "/healthz", &[], None);
        assert_eq!((r.status, r.text()), (200, "ok\n"), "after {what}");
    }
    // Nothing was published by any of them.
    let r = bystander.request("GET", "/api/channels/m/history", &[], None);
    assert_eq!(r.status, 404, "{r:?}");
    // Requests the API refuses keep the connection.
    let r = bystander.request("GET", "/nowhere", &[], None);
    assert_eq!((r.status, r.closes()), (404, false), "{r:?}");
    let r = bystander.request("POST", "/healthz", &[], Some(b""));
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow"), Some("GET, HEAD"), "{r:?}");
    let r = bystander.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
}

/// The console's files go gzip-compressed to a client that accepts gzip (every browser), as the
/// binary carries them, and as they are to one that does not; either way they are the files in
/// `src/http/console/`, and the answer says it varies by `Accept-Encoding` (RFC 9110 §12.5.5).
#[test]
fn console_files_are_gzip_to_a_client_that_accepts_it() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    for name in ["index.html", "console.css", "console.js"] {
        let path = if name == "index.html" { "/".to_string() } else { format!("/{name}") };
        let file = std::fs::read(format!("{}/src/http/console/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
        for accept in ["gzip", "deflate, gzip;q=0.5, br", "x-gzip", "*"] {
            let header = format!("Accept-Encoding: {accept}");
            let r = c.request("GET", &path, &[&header], None);
            assert_eq!(r.status, 200, "{path} {accept}: {r:?}");
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{path} {accept}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path} {accept}");
            assert!(
                r.body.len() < file.len() / 2,
                "{path}: {} of {} bytes",
                r.body.len(),
                file.len()
            );
            assert_eq!(gunzip(&r.body), file, "{path} {accept}");
        }
        for accept in
            [None, Some("identity"), Some("gzip;q=0"), Some("br, gzip; q=0.000"), Some("*;q=0")]
        {
            let header = accept.map(|a| format!("Accept-Encoding: {a}"));
            let r = c.request(
                "GET",
                &path,
                header.as_slice().iter().map(|h| h.as_str()).collect::<Vec<_>>().as_slice(),
                None,
            );
            assert_eq!(r.status, 200, "{path} {accept:?}: {r:?}");
            assert_eq!(r.header("content-encoding"), None, "{path} {accept:?}");
            assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path} {accept:?}");
            assert!(
                r.body == file,
                "{path} {accept:?}: {} bytes, not the file's {}",
                r.body.len(),
                file.len()
            );
        }
    }
}

/// The data of a gzip member (RFC 1952) with no optional fields, its CRC-32 and size checked.
fn gunzip(gz: &[u8]) -> Vec<u8> {
    assert_eq!(gz[..4], [0x1f, 0x8b, 8, 0], "not a plain gzip member");
    let (body, trailer) = gz[10..].split_at(gz.len() - 18);
    let data = miniz_oxide::inflate::decompress_to_vec(body).expect("a whole DEFLATE stream");
    let crc = data.iter().fold(!0u32, |mut crc, &b| {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
        crc
    });
    assert_eq!(trailer[..4], (!crc).to_le_bytes(), "CRC-32");
    assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes(), "ISIZE");
    data
}

#[test]
fn the_console_and_its_assets() {
    let b = Binary::start(&[]);
    let mut c = Http::connect(b.addr);
    let r = c.request("GET", "/", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("<html"), "{}", r.text());
    for (path, ctype) in [
        ("/console.js", "text/javascript; charset=utf-8"),
        ("/console.css", "text/css; charset=utf-8"),
    ] {
        let r = c.request("GET", path, &[], None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert!(r.body.len() > 100, "{path}: {} bytes", r.body.len());
        // The page loads it (relative to itself).
        let page = get(b.addr, "/");
        assert!(
            page.text().contains(&format!("\"{}\"", &path[1..])),
            "the page does not load {path}"
        );
    }
    let r = c.request("POST", "/console.js", &[], Some(b""));
    assert_eq!(r.status, 405, "{r:?}");
}
