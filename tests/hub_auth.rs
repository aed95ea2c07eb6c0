//! Access to the hub at `/ws` over the real binary: bearer tokens (header, `?token=`, the
//! `authenticate` method, `--token-file`), the authentication timeout, HTTP Basic, allowed
//! origins and the same-origin rule, and the per-connection rate limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
#[path = "common/hub.rs"]
mod hub_util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Binary, eventually, has_header, request, status};
use hub_util::{Client, TIMEOUT, error_code, raw_upgrade, read_raw_frame, str_of, upgrade_request};

/// `admin:pw` and `admin:nope` in Base64.
const GOOD_BASIC: &str = "Authorization: Basic YWRtaW46cHc=";
const BAD_BASIC: &str = "Authorization: Basic YWRtaW46bm9wZQ==";

/// The status of an upgrade of `path` with extra header lines; a refusal's body is checked to
/// be the short text the hub sends, and a 101 to be followed by the `connected` event, whose
/// `auth_required` is returned.
fn upgrade(server: &Binary, path: &str, extra: &[&str]) -> (u16, Option<bool>, String) {
    let (s, head) = raw_upgrade(server.addr, path, extra);
    let code = status(&head);
    if code != 101 {
        // The server closes after a refusal: read the whole response again on a fresh one.
        drop(s);
        let req = upgrade_request(path, &server.addr.to_string(), extra);
        let (head, body) = request(server.addr, req.as_bytes());
        assert_eq!(status(&head), code);
        assert!(!body.is_empty() && body.len() < 100, "{body:?}");
        return (code, None, head);
    }
    let mut r = std::io::BufReader::new(s);
    let (op, hello) = read_raw_frame(&mut r).expect("EOF before connected");
    assert_eq!(op, 1);
    let hello = hub_util::parse(std::str::from_utf8(&hello).unwrap());
    assert_eq!(str_of(&hello, "event"), "connected");
    let auth_required = match hello.get("auth_required") {
        Some(weir::json::Value::Bool(b)) => *b,
        other => panic!("auth_required is {other:?}"),
    };
    (101, Some(auth_required), head)
}

#[test]
fn bearer_header_and_query_token_authenticate_and_wrong_tokens_get_401() {
    let server = Binary::start(&["--token", "s3cret", "--token", "other-T0k"]);
    let addr = server.addr;
    for (path, extra) in [
        ("/ws", &["Authorization: Bearer s3cret"][..]),
        ("/ws", &["Authorization: bearer   other-T0k  "]),
        ("/ws?token=s3cret", &[]),
        ("/ws?x=1&token=other-T0k", &[]),
    ] {
        assert_eq!(upgrade(&server, path, extra).0, 101, "{path} {extra:?}");
        assert_eq!(upgrade(&server, path, extra).1, Some(false), "{path} {extra:?}");
    }
    // Authenticated on the upgrade: everything works at once.
    let mut a = Client::connect_with(addr, "/ws", &[("Authorization", "Bearer s3cret")]).unwrap();
    assert!(!a.auth_required);
    a.ok("subscribe", r#"{"channel":"t"}"#);
    let mut b = Client::connect_with(addr, "/ws?token=other-T0k", &[]).unwrap();
    assert!(!b.auth_required);
    b.ok("publish", r#"{"channel":"t","data":"hi"}"#);
    assert_eq!(str_of(&a.message().0, "data"), "hi");

    // A wrong token on the upgrade is refused before any 101.
    for (path, extra) in [
        ("/ws", &["Authorization: Bearer wrong"][..]),
        ("/ws", &["Authorization: Bearer s3cre"]),
        ("/ws", &["Authorization: Bearer s3cret!"]),
        ("/ws", &["Authorization: Bearer S3CRET"]),
        ("/ws?token=wrong", &[]),
        ("/ws?token=", &[]),
        ("/ws?token=s3cret%21", &[]),
    ] {
        let (code, _, head) = upgrade(&server, path, extra);
        assert_eq!(code, 401, "{path} {extra:?}: {head}");
    }
    match Client::connect_with(addr, "/ws", &[("Authorization", "Bearer nope")]) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a wrong token was accepted"),
    }
    // No token at all (or another scheme): connected, but must authenticate.
    assert_eq!(upgrade(&server, "/ws", &[]).1, Some(true));
    assert_eq!(upgrade(&server, "/ws?tokens=s3cret", &[]).1, Some(true));
    assert_eq!(upgrade(&server, "/ws", &["Authorization: Token s3cret"]).1, Some(true));
}

#[test]
fn query_token_is_percent_decoded_and_a_bad_escape_is_401() {
    let server = Binary::start(&["--token", "ab+c/d="]);
    // What URLSearchParams and encodeURIComponent send, in either case of hex; the raw form;
    // '+' is the byte '+' (not a space, as a Base64 token needs).
    for path in [
        "/ws?token=ab%2Bc%2Fd%3D",
        "/ws?token=ab%2bc%2fd%3d",
        "/ws?x=%zz&token=%61b%2Bc/d=",
        "/ws?token=ab+c/d=",
    ] {
        assert_eq!(upgrade(&server, path, &[]).1, Some(false), "{path}");
    }
    for path in [
        "/ws?token=ab%20c%2Fd%3D",
        "/ws?token=ab%2Bc%2Fd%3D%00",
        "/ws?token=ab%2Bc%2Fd%3",
        "/ws?token=ab%2Bc%2Fd%",
        "/ws?token=ab%2Bc%2Fd%3D%",
        "/ws?token=ab%2Bc%2Fd%zz",
        "/ws?token=ab%+c/d=",
        "/ws?token=%4",
        "/ws?token=%",
    ] {
        let (code, _, head) = upgrade(&server, path, &[]);
        assert_eq!(code, 401, "{path}: {head}");
    }
    // A long run of escapes, near the 4 KiB request-target limit, is read like any other.
    let long = format!("/ws?token={}", "%41".repeat(1300));
    assert_eq!(upgrade(&server, &long, &[]).0, 401);
    // The server is still there.
    assert_eq!(upgrade(&server, "/ws?token=ab%2Bc%2Fd%3D", &[]).1, Some(false));
}

#[test]
fn authenticate_method_and_unauthorized_until_then() {
    let server = Binary::start(&["--token", "s3cret"]);
    let mut c = Client::connect(server.addr);
    assert!(c.auth_required);
    c.ok("ping", "");
    for (method, params) in [
        ("subscribe", r#"{"channel":"x"}"#),
        ("unsubscribe", r#"{"channel":"x"}"#),
        ("publish", r#"{"channel":"x","data":1}"#),
        ("history", r#"{"channel":"x"}"#),
        ("channels", ""),
        ("presence", r#"{"channel":"x"}"#),
        ("stats", ""),
    ] {
        assert_eq!(c.err(method, params), "unauthorized", "{method}");
    }
    assert_eq!(c.err("authenticate", r#"{"token":"wrong"}"#), "unauthorized");
    assert_eq!(c.err("authenticate", r#"{"token":""}"#), "unauthorized");
    assert_eq!(c.err("authenticate", "{}"), "invalid_params");
    // Still not in.
    assert_eq!(c.err("subscribe", r#"{"channel":"x"}"#), "unauthorized");
    let r = c.ok("authenticate", r#"{"token":"s3cret"}"#);
    assert_eq!(str_of(&r, "client"), c.name);
    let r = c.ok("subscribe", r#"{"channel":"x"}"#);
    assert_eq!(str_of(&r, "channel"), "x");
    c.ok("publish", r#"{"channel":"x","data":1}"#);
    c.message();
    c.ok("stats", "");
    // Authenticating again is harmless.
    c.ok("authenticate", r#"{"token":"s3cret"}"#);
    c.assert_quiet();

    // Without tokens configured, authenticate succeeds with anything.
    let open = Binary::start(&[]);
    let mut o = Client::connect(open.addr);
    assert!(!o.auth_required);
    assert_eq!(str_of(&o.ok("authenticate", r#"{"token":"whatever"}"#), "client"), o.name);
}

#[test]
fn unauthenticated_clients_are_closed_with_1008_at_the_auth_timeout() {
    let server = Binary::start(&["--token", "s3cret", "--auth-timeout", "700ms"]);
    let started = Instant::now();
    let mut late = Client::connect(server.addr);
    let mut by_method = Client::connect(server.addr);
    let mut by_header =
        Client::connect_with(server.addr, "/ws", &[("Authorization", "Bearer s3cret")]).unwrap();
    assert!(late.auth_required && by_method.auth_required && !by_header.auth_required);
    by_method.ok("authenticate", r#"{"token":"s3cret"}"#);
    // Until the deadline it stays open, answering unauthorized.
    assert_eq!(late.err("subscribe", r#"{"channel":"x"}"#), "unauthorized");
    late.ok("ping", "");
    let (code, reason) = late.expect_close();
    let took = started.elapsed();
    assert_eq!(code, 1008);
    assert_eq!(reason, "authentication timeout");
    assert!(took >= Duration::from_millis(600), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    // The deadline has passed for the other two as well: they stay.
    by_method.ok("subscribe", r#"{"channel":"x"}"#);
    by_header.ok("publish", r#"{"channel":"x","data":1}"#);
    assert_eq!(by_method.message().0.get("seq").and_then(weir::json::Value::as_u64), Some(1));
    by_method.assert_quiet();
    by_header.assert_quiet();
}

#[test]
fn token_file_is_read_at_start_up() {
    let path = std::env::temp_dir().join(format!("weir-hub-tokens-{}", std::process::id()));
    std::fs::write(&path, "# the tokens\n\n  file-tok  \nsecond\n#commented-out\n").unwrap();
    let server = Binary::start(&["--token-file", path.to_str().unwrap(), "--token", "flag-tok"]);
    let _ = std::fs::remove_file(&path);
    for tok in ["file-tok", "second", "flag-tok"] {
        let auth = format!("Authorization: Bearer {tok}");
        assert_eq!(upgrade(&server, "/ws", &[&auth]).1, Some(false), "{tok}");
        let mut c = Client::connect(server.addr);
        assert!(c.auth_required);
        c.ok("authenticate", &format!(r#"{{"token":"{tok}"}}"#));
    }
    for tok in ["#commented-out", "commented-out", "# the tokens", "file-tok  ", "secon"] {
        let auth = format!("Authorization: Bearer {tok}");
        // Trailing spaces are trimmed from the header, so "file-tok  " is file-tok.
        let want = if tok == "file-tok  " { 101 } else { 401 };
        assert_eq!(upgrade(&server, "/ws", &[&auth]).0, want, "{tok:?}");
        let mut c = Client::connect(server.addr);
        // The method takes the token as it is: no trimming there.
        let params = format!(r#"{{"token":"{tok}"}}"#);
        assert_eq!(c.err("authenticate", &params), "unauthorized", "{tok:?}");
    }

    // A token file that cannot be read stops the start-up (exit 2).
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["--listen", "127.0.0.1:0", "--token-file", "/nonexistent/weir-tokens"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exit = eventually(TIMEOUT, || child.try_wait().unwrap());
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(exit.expect("still running with a missing token file").code(), Some(2));
}

#[test]
fn basic_auth_refuses_with_www_authenticate_and_same_origin_only() {
    let server = Binary::start(&["--basic-auth", "admin:pw"]);
    let port = server.addr.port();
    for extra in [
        &[][..],
        &[BAD_BASIC],
        &["Authorization: Basic YWRtaW46cHc6eA=="],
        &["Authorization: Basic YWRtaW4="],
        &["Authorization: Basic !!not-base64!!"],
        &["Authorization: Bearer YWRtaW46cHc="],
        &["Authorization: YWRtaW46cHc="],
    ] {
        let (code, _, head) = upgrade(&server, "/ws", extra);
        assert_eq!(code, 401, "{extra:?}: {head}");
        assert!(
            has_header(&head, "WWW-Authenticate", r#"Basic realm="weir", charset="UTF-8""#),
            "{head}"
        );
    }
    assert_eq!(upgrade(&server, "/ws", &[GOOD_BASIC]).1, Some(false));
    assert_eq!(upgrade(&server, "/ws", &["authorization: basic   YWRtaW46cHc="]).0, 101);
    let mut c =
        Client::connect_with(server.addr, "/ws", &[("Authorization", "Basic YWRtaW46cHc=")])
            .unwrap();
    c.ok("subscribe", r#"{"channel":"b"}"#);

    // Same origin (the Origin's host is the Host header) passes; any other origin is refused,
    // credentials or not.
    let same = format!("Origin: http://127.0.0.1:{port}");
    assert_eq!(upgrade(&server, "/ws", &[GOOD_BASIC, &same]).0, 101);
    assert_eq!(upgrade(&server, "/ws", &[&same]).0, 401);
    for origin in [
        format!("Origin: http://localhost:{port}"),
        "Origin: http://127.0.0.1".into(),
        format!("Origin: http://127.0.0.1:{}", port.wrapping_add(1)),
        "Origin: https://evil.example".into(),
        "Origin: null".into(),
    ] {
        let (code, _, head) = upgrade(&server, "/ws", &[GOOD_BASIC, &origin]);
        assert_eq!(code, 403, "{origin}: {head}");
        assert_eq!(upgrade(&server, "/ws", &[&origin]).0, 403, "{origin}");
    }
}

#[test]
fn origin_allow_list() {
    let server =
        Binary::start(&["--origin", "http://app.example", "--origin", "https://b.example:8443"]);
    let port = server.addr.port();
    for ok in [
        "Origin: http://app.example",
        "Origin: HTTP://APP.EXAMPLE",
        "Origin: https://b.example:8443",
        // The same origin tuple: 80 is http's default port (RFC 6454 §4).
        "Origin: http://app.example:80",
    ] {
        assert_eq!(upgrade(&server, "/ws", &[ok]).1, Some(false), "{ok}");
    }
    // No Origin: not a browser, not refused for it.
    assert_eq!(upgrade(&server, "/ws", &[]).0, 101);
    let same = format!("Origin: http://127.0.0.1:{port}");
    for bad in [
        "Origin: http://evil.example",
        "Origin: https://app.example",
        "Origin: http://app.example.evil",
        "Origin: http://app.example:8080",
        "Origin: https://b.example",
        same.as_str(),
    ] {
        let (code, _, head) = upgrade(&server, "/ws", &[bad]);
        assert_eq!(code, 403, "{bad}: {head}");
    }
    match Client::connect_with(server.addr, "/ws", &[("Origin", "http://evil.example")]) {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
    let mut c =
        Client::connect_with(server.addr, "/ws", &[("Origin", "http://app.example")]).unwrap();
    c.ok("ping", "");
    // Origin is single-valued (RFC 6454 §7.3): a repeated one is refused, whichever comes first,
    // as a repeated Host is.
    for pair in [
        ["Origin: http://app.example", "Origin: http://evil.example"],
        ["Origin: http://evil.example", "Origin: http://app.example"],
        ["Origin: http://app.example", "origin: http://app.example"],
    ] {
        assert_eq!(upgrade(&server, "/ws", &pair).0, 400, "{pair:?}");
    }

    // With Basic auth, the allow-list decides (cross-origin allowed when listed).
    let both = Binary::start(&["--origin", "http://app.example", "--basic-auth", "admin:pw"]);
    assert_eq!(upgrade(&both, "/ws", &[GOOD_BASIC, "Origin: http://app.example"]).0, 101);
    assert_eq!(upgrade(&both, "/ws", &["Origin: http://app.example"]).0, 401);
    assert_eq!(upgrade(&both, "/ws", &[GOOD_BASIC, "Origin: http://evil.example"]).0, 403);
}

#[test]
fn rate_limit_refuses_then_closes_far_beyond() {
    // 1 message a second with a burst of 3: the test sends everything well within a second.
    let server = Binary::start(&["--rate", "1", "--rate-burst", "3"]);
    let mut c = Client::connect(server.addr);
    let ids: Vec<u64> = (0..7).map(|_| c.send_cmd("ping", "")).collect();
    for id in &ids[..3] {
        let a = c.answer(&id.to_string());
        assert!(matches!(a.get("ok"), Some(weir::json::Value::Bool(true))), "{a}");
    }
    // More refusals in a row than the burst: three refused, the fourth closes.
    for id in &ids[3..6] {
        assert_eq!(error_code(&c.answer(&id.to_string())), "rate_limited");
    }
    let (code, reason) = c.expect_close();
    assert_eq!((code, reason.as_str()), (1008, "rate limit exceeded"));

    // Others have buckets of their own.
    let mut d = Client::connect(server.addr);
    let s = d.ok("stats", "");
    assert_eq!(hub_util::u64_of(&s, "rate_limited"), 3, "{s}");
    d.ok("ping", "");
}

#[test]
fn rate_limited_connection_stays_open_and_recovers() {
    let server = Binary::start(&["--rate", "20", "--rate-burst", "2"]);
    let mut c = Client::connect(server.addr);
    let ids: Vec<u64> = (0..4).map(|_| c.send_cmd("ping", "")).collect();
    c.answer(&ids[0].to_string());
    c.answer(&ids[1].to_string());
    // Two refusals in a row: not more than the burst, so it stays open.
    assert_eq!(error_code(&c.answer(&ids[2].to_string())), "rate_limited");
    assert_eq!(error_code(&c.answer(&ids[3].to_string())), "rate_limited");
    // Tokens come back at 20 a second: waiting here is the thing under test.
    std::thread::sleep(Duration::from_millis(200));
    c.ok("ping", "");
    c.ok("subscribe", r#"{"channel":"r"}"#);
}

#[test]
fn malformed_frames_count_against_the_rate_limit() {
    let server = Binary::start(&["--rate", "1", "--rate-burst", "3"]);
    let mut c = Client::connect(server.addr);
    // Garbage is no cheaper to send than commands: a flood of it is refused and closed too.
    for _ in 0..3 {
        c.send_text("{not json");
        assert_eq!(error_code(&c.answer("null")), "parse_error");
    }
    for _ in 0..3 {
        c.send_text("{not json");
        assert_eq!(error_code(&c.answer("null")), "rate_limited");
    }
    c.send_binary(b"\x00");
    let (code, _) = c.expect_close();
    assert_eq!(code, 1008);
}
