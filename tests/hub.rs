//! The hub at `/ws` over the real binary: every method and error code, fan-out, history and
//! `subscribe` with `since`, verbatim data, limits, and a slow subscriber among 1,000 others.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
#[path = "common/hub.rs"]
mod hub_util;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Binary, eventually};
use hub_util::{
    Client, TIMEOUT, client_frame, error_code, field, parse, raw_upgrade, read_raw_frame, str_of,
    text_frame, u64_of,
};
use weir::json::Value;

fn seqs(messages: &Value) -> Vec<u64> {
    messages.as_array().unwrap().iter().map(|m| u64_of(m, "seq")).collect()
}

#[test]
fn connected_event_ping_and_ids() {
    let server = Binary::start(&[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    assert!(!a.auth_required);
    assert_ne!(a.name, b.name, "client names are unique");

    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64;
    let ts = u64_of(&a.ok("ping", ""), "ts");
    assert!(ts + 5_000 >= before && ts <= before + 5_000, "ping ts {ts} vs now {before}");

    // A string id comes back as the same string, an integer as the same integer.
    a.send_text(r#"{"id": "req-\u0041 7", "method": "ping"}"#);
    let v = a.answer(r#""req-A 7""#);
    assert!(matches!(v.get("ok"), Some(Value::Bool(true))), "{v}");
    a.send_text(r#"{"id": 123456789012, "method": "ping", "params": null}"#);
    let v = a.answer("123456789012");
    assert!(field(&v, "result").get("ts").is_some(), "{v}");

    // No id: carried out, nothing answered (errors included).
    a.ok("subscribe", r#"{"channel":"n"}"#);
    b.send_text(r#"{"method":"publish","params":{"channel":"n","data":"quiet"}}"#);
    b.send_text(r#"{"method":"no_such_method"}"#);
    b.send_text(r#"{"method":"publish","params":{"channel":"bad name","data":1}}"#);
    b.assert_quiet();
    let (m, _) = a.message();
    assert_eq!(str_of(&m, "data"), "quiet");
    assert_eq!(str_of(&m, "from"), b.name);
    a.assert_quiet();
}

#[test]
fn frames_that_are_not_commands_are_answered_not_ignored() {
    let server = Binary::start(&[]);
    let mut a = Client::connect(server.addr);
    // Other systems' frames (no `id`, no `method`), and frames that are no command at all:
    // each gets an error with `"id": null`, never silence.
    for (frame, code) in [
        (r#"{"type":"ping"}"#, "invalid_request"),
        (r#"{"type":"command","command":"pause","request_id":"r1"}"#, "invalid_request"),
        ("[]", "invalid_request"),
        (r#""x""#, "invalid_request"),
        (r#"{"method":5}"#, "invalid_request"),
        (r#"{"method":"publish","params":[1]}"#, "invalid_params"),
    ] {
        a.send_text(frame);
        assert_eq!(error_code(&a.answer("null")), code, "{frame}");
    }
    a.send_binary(b"\x00");
    assert_eq!(error_code(&a.answer("null")), "invalid_request");
    // A Go agent-control client matches answers by `request_id`: it is echoed (string or
    // integer, as written), beside `"id": null`.
    for (frame, echoed) in [
        (r#"{"type":"command","command":"pause","request_id":"r1"}"#, r#""r1""#),
        (r#"{"type":"command","command":"kill","request_id":7}"#, "7"),
    ] {
        a.send_text(frame);
        let v = a.answer("null");
        assert_eq!(error_code(&v), "invalid_request", "{v}");
        assert_eq!(field(&v, "request_id").to_string(), echoed, "{v}");
    }
    a.send_text(r#"{"type":"ping","request_id":{"x":1}}"#);
    assert!(a.answer("null").get("request_id").is_none(), "not an id: not echoed");
    // With an id, the answer carries it.
    a.send_text(r#"{"id":"r2","type":"ping"}"#);
    assert_eq!(error_code(&a.answer(r#""r2""#)), "invalid_request");
    a.assert_quiet();
}

#[test]
fn a_frame_over_the_rate_that_is_no_command_is_refused_for_the_rate() {
    let server = Binary::start(&["--rate", "1", "--rate-burst", "1"]);
    let mut a = Client::connect(server.addr);
    a.ok("ping", "");
    a.send_text(r#"{"type":"ping"}"#);
    assert_eq!(error_code(&a.answer("null")), "rate_limited");
}

/// The value of the sample `name` (with its labels, as written) in a `/metrics` text.
fn sample(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_hub_errors_by_code_and_the_timeouts() {
    let server = Binary::start(&["--handshake-timeout", "300ms", "--idle-timeout", "600ms"]);
    let metrics = || {
        let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        common::request(server.addr, req).1
    };
    let invalid = r#"weir_hub_errors_total{code="invalid_request"}"#;
    let unknown = r#"weir_hub_errors_total{code="unknown_method"}"#;
    let m = metrics();
    for name in ["weir_handshake_timeouts_total", "weir_idle_timeouts_total", invalid, unknown] {
        assert_eq!(sample(&m, name), Some(0), "{name}:\n{m}");
    }
    for (name, kind) in [
        ("weir_hub_errors_total", "counter"),
        ("weir_handshake_timeouts_total", "counter"),
        ("weir_idle_timeouts_total", "counter"),
    ] {
        assert!(m.contains(&format!("\n# TYPE {name} {kind}\n")), "{name}:\n{m}");
    }
    // A connection that never sends its handshake is dropped at the handshake timeout.
    let mut silent = common::raw(server.addr);
    common::expect_eof(&mut silent, TIMEOUT);
    // Refused commands count by code, a notification's too (it is not answered).
    let mut a = Client::connect(server.addr);
    for _ in 0..2 {
        a.send_text(r#"{"type":"ping"}"#);
        assert_eq!(error_code(&a.answer("null")), "invalid_request");
    }
    assert_eq!(a.err("nope", ""), "unknown_method");
    a.send_text(r#"{"method":"nope"}"#);
    // Then it sends nothing, and the idle timeout closes it.
    assert_eq!(a.expect_close().0, 1001);
    let m = metrics();
    assert_eq!(sample(&m, "weir_handshake_timeouts_total"), Some(1), "{m}");
    assert_eq!(sample(&m, "weir_idle_timeouts_total"), Some(1), "{m}");
    assert_eq!(sample(&m, invalid), Some(2), "{m}");
    assert_eq!(sample(&m, unknown), Some(2), "{m}");
    assert_eq!(sample(&m, r#"weir_hub_errors_total{code="parse_error"}"#), Some(0), "{m}");
}

#[test]
fn subscribe_publish_unsubscribe_between_two_clients() {
    let server = Binary::start(&[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);

    let r = a.ok("subscribe", r#"{"channel":"room"}"#);
    assert_eq!(str_of(&r, "channel"), "room");
    assert_eq!((u64_of(&r, "seq"), u64_of(&r, "subscribers")), (0, 1));
    let r = b.ok("subscribe", r#"{"channel":"room"}"#);
    assert_eq!((u64_of(&r, "seq"), u64_of(&r, "subscribers")), (0, 2));
    // Subscribing twice is harmless: still two subscribers, one event each.
    let r = b.ok("subscribe", r#"{"channel":"room"}"#);
    assert_eq!(u64_of(&r, "subscribers"), 2);

    // A publishes: the event reaches A (before A's answer) and B.
    let id = a.send_cmd("publish", r#"{"channel":"room","data":{"from":"a"}}"#);
    let (ev, _) = a.message();
    let ans = a.answer(&id.to_string());
    assert_eq!(u64_of(field(&ans, "result"), "seq"), 1);
    for (who, ev) in [("a", ev), ("b", b.message().0)] {
        assert_eq!(str_of(&ev, "channel"), "room", "{who}");
        assert_eq!(u64_of(&ev, "seq"), 1, "{who}");
        assert_eq!(str_of(&ev, "from"), a.name, "{who}");
        assert_eq!(field(&ev, "data").to_string(), r#"{"from":"a"}"#, "{who}");
        assert!(u64_of(&ev, "ts") > 1_600_000_000_000, "{who}: {ev}");
    }
    // B publishes: A sees it too.
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"room","data":[2]}"#), "seq"), 2);
    let (ev, _) = b.message();
    assert_eq!((u64_of(&ev, "seq"), str_of(&ev, "from")), (2, b.name.as_str()));
    let (ev, _) = a.message();
    assert_eq!((u64_of(&ev, "seq"), str_of(&ev, "from")), (2, b.name.as_str()));
    a.assert_quiet();
    b.assert_quiet();

    // Unsubscribe: {} and no more events; a second time is not_found.
    let r = b.ok("unsubscribe", r#"{"channel":"room"}"#);
    assert_eq!(r.to_string(), "{}");
    assert_eq!(b.err("unsubscribe", r#"{"channel":"room"}"#), "not_found");
    assert_eq!(b.err("unsubscribe", r#"{"channel":"never"}"#), "not_found");
    assert_eq!(u64_of(&a.ok("publish", r#"{"channel":"room","data":3}"#), "seq"), 3);
    assert_eq!(u64_of(&a.message().0, "seq"), 3);
    // The event to A was queued before A's answer; had B still been subscribed, its copy would
    // be queued before the answer to this ping.
    b.assert_quiet();
    assert_eq!(u64_of(&b.ok("presence", r#"{"channel":"room"}"#), "subscribers"), 1);

    // A publisher that is not subscribed gets only its answer.
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"room","data":4}"#), "seq"), 4);
    b.assert_quiet();
    assert_eq!(u64_of(&a.message().0, "seq"), 4);

    // A closed connection leaves its channels.
    a.close();
    let left = eventually(TIMEOUT, || {
        let n = u64_of(&b.ok("presence", r#"{"channel":"room"}"#), "subscribers");
        (n == 0).then_some(())
    });
    assert!(left.is_some(), "the closed client is still counted");
}

#[test]
fn history_channels_presence_and_stats() {
    let server = Binary::start(&["--history", "5"]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    assert_eq!(a.err("history", r#"{"channel":"h"}"#), "not_found");
    assert_eq!(a.err("presence", r#"{"channel":"h"}"#), "not_found");
    for i in 1..=8 {
        let r = a.ok("publish", &format!(r#"{{"channel":"h","data":{{"i":{i}}}}}"#));
        assert_eq!(u64_of(&r, "seq"), i);
    }
    // The last 5 are kept; the default and largest limit is --history.
    let h = a.ok("history", r#"{"channel":"h"}"#);
    assert_eq!(u64_of(&h, "seq"), 8);
    let msgs = field(&h, "messages");
    assert_eq!(seqs(msgs), [4, 5, 6, 7, 8]);
    let first = &msgs.as_array().unwrap()[0];
    assert_eq!(str_of(first, "event"), "message");
    assert_eq!(str_of(first, "channel"), "h");
    assert_eq!(str_of(first, "from"), a.name);
    assert_eq!(field(first, "data").to_string(), r#"{"i":4}"#);

    let cases: [(&str, &[u64]); 9] = [
        (r#""since":6"#, &[7, 8]),
        (r#""since":0,"limit":2"#, &[7, 8]),
        (r#""since":3,"limit":3"#, &[6, 7, 8]),
        (r#""since":5,"limit":100"#, &[6, 7, 8]),
        (r#""since":1"#, &[4, 5, 6, 7, 8]),
        (r#""limit":0"#, &[]),
        (r#""since":8"#, &[]),
        (r#""since":1000"#, &[]),
        (r#""limit":1"#, &[8]),
    ];
    for (params, want) in cases {
        let h = a.ok("history", &format!(r#"{{"channel":"h",{params}}}"#));
        assert_eq!(seqs(field(&h, "messages")), want, "{params}");
        assert_eq!(u64_of(&h, "seq"), 8, "{params}");
    }
    for params in [
        r#"{"channel":"h","since":-1}"#,
        r#"{"channel":"h","since":"3"}"#,
        r#"{"channel":"h","since":1.5}"#,
        r#"{"channel":"h","limit":-2}"#,
        r#"{"channel":"h","limit":null}"#,
        r#"{"channel":7}"#,
        r#"{}"#,
    ] {
        assert_eq!(a.err("history", params), "invalid_params", "{params}");
    }

    // subscribe with since replays from the kept messages, then live ones.
    let r = b.ok("subscribe", r#"{"channel":"h","since":6}"#);
    assert_eq!(u64_of(&r, "seq"), 8);
    assert_eq!(u64_of(&b.message().0, "seq"), 7);
    assert_eq!(u64_of(&b.message().0, "seq"), 8);
    b.assert_quiet();
    a.ok("publish", r#"{"channel":"h","data":9}"#);
    assert_eq!(u64_of(&b.message().0, "seq"), 9);
    // A since older than the history replays what is kept.
    let mut c = Client::connect(server.addr);
    c.ok("subscribe", r#"{"channel":"h","since":0}"#);
    let got: Vec<u64> = (0..5).map(|_| u64_of(&c.message().0, "seq")).collect();
    assert_eq!(got, [5, 6, 7, 8, 9]);
    c.assert_quiet();
    assert_eq!(c.err("subscribe", r#"{"channel":"h2","since":"x"}"#), "invalid_params");
    assert_eq!(c.err("subscribe", r#"{"channel":"h2","since":-3}"#), "invalid_params");

    // channels: sorted, with a prefix filter.
    a.ok("subscribe", r#"{"channel":"app/b"}"#);
    b.ok("subscribe", r#"{"channel":"app/b"}"#);
    a.ok("publish", r#"{"channel":"app/a","data":null}"#);
    a.ok("publish", r#"{"channel":"app/a","data":null}"#);
    let list = a.ok("channels", r#"{"prefix":"app/"}"#);
    assert_eq!(
        list.to_string(),
        r#"{"channels":[{"name":"app/a","subscribers":0,"seq":2},{"name":"app/b","subscribers":2,"seq":0}]}"#
    );
    let all = a.ok("channels", "");
    let names: Vec<&str> =
        field(&all, "channels").as_array().unwrap().iter().map(|c| str_of(c, "name")).collect();
    assert_eq!(names, ["app/a", "app/b", "h"]);
    assert_eq!(field(&a.ok("channels", r#"{"prefix":"zz"}"#), "channels").to_string(), "[]");
    assert_eq!(u64_of(&a.ok("presence", r#"{"channel":"app/b"}"#), "subscribers"), 2);
    assert_eq!(u64_of(&a.ok("presence", r#"{"channel":"h"}"#), "subscribers"), 2);
    assert_eq!(a.err("presence", r#"{"channel":"bad name"}"#), "invalid_params");

    let s = a.ok("stats", "");
    assert_eq!(u64_of(&s, "connections"), 3);
    assert_eq!(u64_of(&s, "connections_total"), 3);
    assert_eq!(u64_of(&s, "channels"), 3);
    assert_eq!(u64_of(&s, "subscriptions"), 4);
    assert_eq!(u64_of(&s, "published"), 11);
    assert_eq!(u64_of(&s, "slow_reader_disconnects"), 0);
    assert_eq!(u64_of(&s, "rate_limited"), 0);
    assert!(u64_of(&s, "messages_in") > 30 && u64_of(&s, "messages_out") > 30, "{s}");
    assert!(u64_of(&s, "bytes_in") > 1000 && u64_of(&s, "bytes_out") > 1000, "{s}");
    assert!(field(&s, "uptime_ms").as_u64().is_some(), "{s}");
    assert!(u64_of(&s, "delivered") > 0 && u64_of(&s, "rss_bytes") > 0, "{s}");
}

#[test]
fn request_errors_keep_the_connection_open() {
    let server = Binary::start(&["--max-publish-size", "1KiB", "--max-message-size", "8KiB"]);
    let mut a = Client::connect(server.addr);

    // Invalid JSON: parse_error with id null, and the connection lives.
    for bad in [r#"{"id":1,"method":"ping""#, "{'id':1}", "[1,]", r#"{"id":01}"#, "", "\"\\x\""] {
        a.send_text(bad);
        let v = a.answer("null");
        assert_eq!(error_code(&v), "parse_error", "{bad:?}");
        a.ok("ping", "");
    }
    // Nesting deeper than the parser allows is a parse error too.
    a.send_text(&format!(
        r#"{{"id":1,"method":"ping","params":{{"x":{}1{}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    ));
    assert_eq!(error_code(&a.answer("null")), "parse_error");

    // invalid_request: a binary frame, a non-object, a bad id, a missing method.
    a.send_binary(br#"{"id":1,"method":"ping"}"#);
    assert_eq!(error_code(&a.answer("null")), "invalid_request");
    for bad in ["[1,2]", "42", r#""ping""#, "null"] {
        a.send_text(bad);
        assert_eq!(error_code(&a.answer("null")), "invalid_request", "{bad}");
    }
    for bad in [
        r#"{"id":1.5,"method":"ping"}"#,
        r#"{"id":null,"method":"ping"}"#,
        r#"{"id":[1],"method":"ping"}"#,
        r#"{"id":true,"method":"ping"}"#,
    ] {
        a.send_text(bad);
        assert_eq!(error_code(&a.answer("null")), "invalid_request", "{bad}");
    }
    a.send_text(r#"{"id":"m","params":{}}"#);
    assert_eq!(error_code(&a.answer(r#""m""#)), "invalid_request");
    a.send_text(r#"{"id":"m2","method":7}"#);
    assert_eq!(error_code(&a.answer(r#""m2""#)), "invalid_request");

    // unknown_method and invalid_params.
    assert_eq!(a.err("subscrbe", r#"{"channel":"x"}"#), "unknown_method");
    assert_eq!(a.err("PING", ""), "unknown_method");
    a.send_text(r#"{"id":9,"method":"subscribe","params":["x"]}"#);
    assert_eq!(error_code(&a.answer("9")), "invalid_params");
    assert_eq!(a.err("subscribe", "{}"), "invalid_params");
    assert_eq!(a.err("publish", r#"{"channel":"x"}"#), "invalid_params");
    assert_eq!(a.err("authenticate", r#"{"token":5}"#), "invalid_params");
    assert_eq!(a.err("channels", r#"{"prefix":5}"#), "invalid_params");

    // too_large: data over --max-publish-size (1 KiB as JSON text); exactly 1 KiB passes.
    let at_limit = format!("\"{}\"", "a".repeat(1022));
    let over = format!("\"{}\"", "a".repeat(1023));
    let r = a.ok("publish", &format!(r#"{{"channel":"big","data":{at_limit}}}"#));
    assert_eq!(u64_of(&r, "seq"), 1);
    assert_eq!(a.err("publish", &format!(r#"{{"channel":"big","data":{over}}}"#)), "too_large");
    let nested = format!("[{}]", vec!["{\"k\":[1,2,3,4,5,6,7,8,9]}"; 60].join(","));
    assert_eq!(a.err("publish", &format!(r#"{{"channel":"big","data":{nested}}}"#)), "too_large");
    a.ok("ping", "");
    // The refused ones were not sequenced.
    assert_eq!(u64_of(&a.ok("history", r#"{"channel":"big"}"#), "seq"), 1);
    assert_eq!(a.err("history", r#"{"channel":"big","limit":"all"}"#), "invalid_params");
    a.assert_quiet();
    // A frame over --max-message-size is no hub error: the WebSocket layer closes with 1009.
    a.send_text(&format!(
        r#"{{"id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(9000)
    ));
    assert_eq!(a.expect_close().0, 1009);
}

#[test]
fn channel_names_are_validated() {
    let server = Binary::start(&[]);
    let mut a = Client::connect(server.addr);
    let long_ok = "x".repeat(128);
    let too_long = "x".repeat(129);
    for good in ["builds", "a.b:c/d@e-f_9", "A", long_ok.as_str(), "0", "--", "user@host:1/x.y"] {
        let r = a.ok("subscribe", &format!(r#"{{"channel":"{good}"}}"#));
        assert_eq!(str_of(&r, "channel"), good);
        a.ok("publish", &format!(r#"{{"channel":"{good}","data":1}}"#));
        assert_eq!(u64_of(&a.message().0, "seq"), 1);
        a.ok("presence", &format!(r#"{{"channel":"{good}"}}"#));
        a.ok("history", &format!(r#"{{"channel":"{good}"}}"#));
        assert_eq!(a.ok("unsubscribe", &format!(r#"{{"channel":"{good}"}}"#)).to_string(), "{}");
    }
    let bad_names = [
        "\"\"".to_string(),
        format!("\"{too_long}\""),
        "\"with space\"".into(),
        "\"\u{fc}\"".into(),
        "\"a,b\"".into(),
        "\"a\\u0000b\"".into(),
        "\"{}\"".into(),
        "\"#x\"".into(),
        "\"a*\"".into(),
        "7".into(),
        "null".into(),
        "[\"x\"]".into(),
    ];
    for name in &bad_names {
        for method in ["subscribe", "unsubscribe", "publish", "history", "presence"] {
            let params = format!(r#"{{"channel":{name},"data":1}}"#);
            assert_eq!(a.err(method, &params), "invalid_params", "{method} {name}");
        }
    }
    // None of the bad ones were created.
    let all = a.ok("channels", "");
    assert_eq!(field(&all, "channels").as_array().unwrap().len(), 7, "{all}");
    a.assert_quiet();
}

#[test]
fn channel_limits_are_forbidden() {
    let server = Binary::start(&["--max-channels-per-connection", "2", "--max-channels", "3"]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.ok("subscribe", r#"{"channel":"c1"}"#);
    a.ok("subscribe", r#"{"channel":"c2"}"#);
    assert_eq!(a.err("subscribe", r#"{"channel":"c3"}"#), "forbidden");
    // Already subscribed: still fine.
    a.ok("subscribe", r#"{"channel":"c2"}"#);
    // A freed slot can be used again; c1, which nobody subscribes to any more and which never
    // had a message, is forgotten.
    a.ok("unsubscribe", r#"{"channel":"c1"}"#);
    a.ok("subscribe", r#"{"channel":"c3"}"#);
    assert_eq!(a.err("subscribe", r#"{"channel":"c1"}"#), "forbidden");
    b.ok("subscribe", r#"{"channel":"c4"}"#);
    // Three channels exist (c2, c3, c4): a fourth cannot be created by anyone, by subscribe or
    // publish, but the existing ones still work.
    assert_eq!(b.err("subscribe", r#"{"channel":"c5"}"#), "forbidden");
    assert_eq!(b.err("publish", r#"{"channel":"c5","data":1}"#), "forbidden");
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"c2","data":1}"#), "seq"), 1);
    assert_eq!(u64_of(&a.message().0, "seq"), 1);
    assert_eq!(b.err("history", r#"{"channel":"c5"}"#), "not_found");
    assert_eq!(field(&b.ok("channels", ""), "channels").as_array().unwrap().len(), 3);
    // Left by its last subscriber, a channel that had a message is kept (its sequence numbers
    // never repeat), one that had none is forgotten.
    a.ok("unsubscribe", r#"{"channel":"c2"}"#);
    a.ok("unsubscribe", r#"{"channel":"c3"}"#);
    let names = b.ok("channels", "");
    let names: Vec<&str> =
        field(&names, "channels").as_array().unwrap().iter().map(|c| str_of(c, "name")).collect();
    assert_eq!(names, ["c2", "c4"]);
    a.ok("subscribe", r#"{"channel":"c2"}"#);
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"c2","data":2}"#), "seq"), 2);
    assert_eq!(u64_of(&a.message().0, "seq"), 2);
    a.assert_quiet();
    b.assert_quiet();
}

/// One client that subscribes to many names and leaves them must not use up `--max-channels`
/// for everyone: a channel nobody follows and nothing was published to is forgotten, whether
/// it was followed over WebSocket, by an event stream, or by a connection that closed.
#[test]
fn channels_left_unused_do_not_count_against_the_limit() {
    let server = Binary::start(&["--max-channels", "3"]);
    let mut a = Client::connect(server.addr);
    for i in 0..20 {
        let ch = format!(r#"{{"channel":"junk-{i}"}}"#);
        a.ok("subscribe", &ch);
        a.ok("unsubscribe", &ch);
    }
    for i in 0..3 {
        a.ok("subscribe", &format!(r#"{{"channel":"held-{i}"}}"#));
    }
    drop(a);
    // Event streams, opened (the channel exists while one follows it) and closed.
    for i in 0..10 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let req = format!("GET /api/channels/sse-{i}/events HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&got).contains("retry: 2000") {
            let n = std::io::Read::read(&mut s, &mut buf).unwrap();
            assert!(n > 0, "stream {i} ended: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    }
    let mut b = Client::connect(server.addr);
    // Everything above is gone once `a` is: a new channel can be made.
    let made = eventually(Duration::from_secs(5), || {
        let mut c = Client::connect(server.addr);
        c.call("subscribe", r#"{"channel":"new"}"#)
            .get("ok")
            .and_then(Value::as_bool)
            .filter(|&ok| ok)
    });
    assert!(made.is_some(), "channels were not forgotten");
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"p","data":1}"#), "seq"), 1);
    b.assert_quiet();
}

#[test]
fn published_data_is_forwarded_byte_for_byte() {
    let server = Binary::start(&[]);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    b.ok("subscribe", r#"{"channel":"raw"}"#);
    let datas = [
        "123456789012345678901234567890123456789",
        "-0.000000000000000000000000000001e-400",
        "1.50E+2",
        r#"[1, {"big": 98765432109876543210987654321, "f": 1.0, "e": 1e400}, [[[ ]]] ]"#,
        r#"{ "z" : "\u00e9\ud83d\ude00\n" , "a" : [ true , false , null ] , "z" : 2 }"#,
        r#""caf\u00e9 \"quoted\" \\ /""#,
        "\"\u{e9}\u{1f600} raw utf-8\"",
        "{}",
        "0",
    ];
    for (i, data) in datas.iter().enumerate() {
        // Whitespace around the value is not part of it.
        a.send_text(&format!(
            "{{\"id\":{i}, \"method\":\"publish\", \"params\":{{\"channel\":\"raw\", \"data\":  {data}  }}}}"
        ));
        let ans = a.answer(&i.to_string());
        assert!(matches!(ans.get("ok"), Some(Value::Bool(true))), "{ans}");
        let (ev, text) = b.message();
        assert_eq!(u64_of(&ev, "seq"), i as u64 + 1);
        let want = format!(r#""data":{data},"from":"#);
        assert!(text.contains(&want), "data not verbatim:\n sent {data}\n  got {text}");
    }
    // History keeps the same bytes.
    let id = a.send_cmd("history", r#"{"channel":"raw"}"#);
    let text = loop {
        let t = a.next_text();
        if parse(&t).get("id").and_then(Value::as_u64) == Some(id) {
            break t;
        }
    };
    for data in datas {
        assert!(text.contains(&format!(r#""data":{data},"from":"#)), "{data} not in {text}");
    }
    b.assert_quiet();
}

/// A publisher sends 500 messages while a second client subscribes with `since` midway: it
/// gets every message after `since` exactly once, in order.
#[test]
fn subscribe_since_during_a_burst_has_no_gap_and_no_duplicate() {
    let server = Binary::start(&["--history", "1000"]);
    const TOTAL: u64 = 500;
    for since in [200u64, 0, 249] {
        let channel = format!("burst{since}");
        let mut publisher = Client::connect(server.addr);
        let mut sub = Client::connect(server.addr);
        let (tx, rx) = mpsc::channel();
        let ch = channel.clone();
        let t = std::thread::spawn(move || {
            for i in 1..=TOTAL {
                if i == 251 {
                    tx.send(()).unwrap();
                }
                let r = publisher.ok("publish", &format!(r#"{{"channel":"{ch}","data":{i}}}"#));
                assert_eq!(u64_of(&r, "seq"), i);
            }
        });
        // Subscribe while the second half is being published.
        rx.recv_timeout(TIMEOUT).expect("the publisher stalled");
        let r = sub.ok("subscribe", &format!(r#"{{"channel":"{channel}","since":{since}}}"#));
        let at = u64_of(&r, "seq");
        assert!((250..=TOTAL).contains(&at), "{r}");
        assert_eq!(u64_of(&r, "subscribers"), 1);
        eprintln!("since {since}: subscribed at seq {at} of {TOTAL}");
        let mut got = Vec::new();
        while got.last() != Some(&TOTAL) {
            assert!(got.len() < TOTAL as usize, "too many events: {got:?}");
            let (ev, _) = sub.message();
            assert_eq!(str_of(&ev, "channel"), channel);
            let seq = u64_of(&ev, "seq");
            assert_eq!(field(&ev, "data").as_u64(), Some(seq));
            got.push(seq);
        }
        let want: Vec<u64> = (since + 1..=TOTAL).collect();
        assert_eq!(got, want, "since {since}, subscribed at seq {at}");
        sub.assert_quiet();
        t.join().unwrap();
    }
}

/// One raw hub connection: upgraded, greeted, subscribed to `channels`.
fn raw_subscriber(addr: std::net::SocketAddr, channels: &[&str]) -> BufReader<TcpStream> {
    let (mut s, head) = raw_upgrade(addr, "/ws", &[]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for (i, ch) in channels.iter().enumerate() {
        let cmd = format!(r#"{{"id":{i},"method":"subscribe","params":{{"channel":"{ch}"}}}}"#);
        s.write_all(&text_frame(&cmd)).unwrap();
    }
    let mut r = BufReader::with_capacity(64 << 10, s);
    let (op, hello) = read_raw_frame(&mut r).expect("EOF before connected");
    assert_eq!(op, 1);
    assert!(hello.starts_with(br#"{"event":"connected""#));
    for i in 0..channels.len() {
        let (op, ans) = read_raw_frame(&mut r).expect("EOF before the subscribe answer");
        assert_eq!(op, 1);
        let want = format!(r#"{{"id":{i},"ok":true,"#);
        assert!(ans.starts_with(want.as_bytes()), "{}", String::from_utf8_lossy(&ans));
    }
    r
}

/// Reads what a cut-off slow reader still gets: whole messages (the fan ones a prefix of the
/// sequence: nothing is dropped out of the middle), then the close frame 1008 "slow reader",
/// then EOF once the close is answered. Returns how many fan messages it got.
fn drain_slow(slow: &mut BufReader<TcpStream>) -> u64 {
    let mut fan = 0;
    for _ in 0..100_000 {
        let (op, p) = read_raw_frame(slow).expect("EOF before the close frame");
        if op == 0x8 {
            assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1008);
            assert_eq!(&p[2..], b"slow reader");
            slow.get_mut().write_all(&client_frame(0x88, &p)).unwrap();
            assert!(read_raw_frame(slow).is_none(), "more after the close frame");
            return fan;
        }
        assert_eq!(op, 1);
        if p.starts_with(br#"{"event":"message","channel":"fan","#) {
            let want = format!(r#"{{"event":"message","channel":"fan","seq":{},"#, fan + 1);
            assert!(p.starts_with(want.as_bytes()), "{}", String::from_utf8_lossy(&p[..80]));
            fan += 1;
        } else {
            assert!(p.starts_with(br#"{"event":"message","channel":"flood","#));
        }
    }
    panic!("no close frame");
}

/// A subscriber that never reads is cut off (1008 "slow reader") while 1,000 others on the
/// same channel receive every message, in order, exactly once.
#[test]
fn slow_subscriber_is_cut_off_while_a_thousand_others_get_everything() {
    const READERS: usize = 1000;
    const THREADS: usize = 4;
    const MESSAGES: u64 = 300;
    let server = Binary::start(&[
        "--queue-cap",
        "256KiB",
        "--max-connections-per-ip",
        "0",
        "--max-connections",
        "1100",
        "--rate",
        "0",
    ]);
    let addr = server.addr;
    let started = Instant::now();

    // The readers: THREADS threads, each with its share of raw connections subscribed to "fan".
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let readers: Vec<_> = (0..THREADS)
        .map(|_| {
            let ready_tx = ready_tx.clone();
            let go_rx = std::sync::Arc::clone(&go_rx);
            std::thread::spawn(move || {
                let mut conns: Vec<_> =
                    (0..READERS / THREADS).map(|_| raw_subscriber(addr, &["fan"])).collect();
                ready_tx.send(()).unwrap();
                go_rx.lock().unwrap().recv_timeout(Duration::from_secs(30)).unwrap();
                // Each connection in turn, to the last message: the others wait in their
                // queues meanwhile (all 300 messages fit well under the cap).
                for (n, r) in conns.iter_mut().enumerate() {
                    let mut next = 1;
                    while next <= MESSAGES {
                        let (op, p) = read_raw_frame(r).unwrap_or_else(|| panic!("EOF at {next}"));
                        assert_eq!(op, 1, "conn {n}: {}", String::from_utf8_lossy(&p));
                        let prefix = format!(
                            r#"{{"event":"message","channel":"fan","seq":{next},"data":"{next}:"#
                        );
                        assert!(
                            p.starts_with(prefix.as_bytes()),
                            "conn {n}: wanted seq {next}, got {}",
                            String::from_utf8_lossy(&p[..p.len().min(80)])
                        );
                        if n == 0 && next == 1 {
                            parse(std::str::from_utf8(&p).unwrap());
                        }
                        next += 1;
                    }
                }
                conns
            })
        })
        .collect();
    drop(ready_tx);
    for _ in 0..THREADS {
        ready_rx.recv_timeout(Duration::from_secs(30)).expect("readers failed to connect");
    }
    let connect_time = started.elapsed();

    // The slow one: subscribed to "fan" and to "flood" (which only it gets), and never reads.
    let mut slow = Some(raw_subscriber(addr, &["fan", "flood"]));
    let mut publisher = Client::connect(addr);
    assert_eq!(
        u64_of(&publisher.ok("presence", r#"{"channel":"fan"}"#), "subscribers"),
        READERS as u64 + 1
    );
    for _ in 0..THREADS {
        go_tx.send(()).unwrap();
    }

    // 300 small messages to everybody (~200 KiB per reader in all, under the cap even unread),
    // each followed by 48 KiB to the slow one alone until it is cut off: far past the cap and
    // the socket buffers. Once it is, it is drained at once (before the close timeout) on a
    // thread of its own while the publishing goes on.
    let pad = "p".repeat(560);
    let flood = format!(r#"{{"channel":"flood","data":"{}"}}"#, "f".repeat(48 << 10));
    let mut drain = None;
    let mut floods = 0;
    for i in 1..=MESSAGES {
        let r = publisher.ok("publish", &format!(r#"{{"channel":"fan","data":"{i}:{pad}"}}"#));
        assert_eq!(u64_of(&r, "seq"), i);
        // Bounded: a few flood messages per fan message while the slow one is still there.
        for _ in 0..4 {
            if drain.is_some() {
                break;
            }
            publisher.ok("publish", &flood);
            floods += 1;
            if u64_of(&publisher.ok("stats", ""), "slow_reader_disconnects") > 0 {
                let mut slow = slow.take().unwrap();
                drain = Some(std::thread::spawn(move || drain_slow(&mut slow)));
            }
        }
    }
    let drain = drain.unwrap_or_else(|| panic!("not cut off after {floods} floods of 48 KiB"));

    let mut conns = Vec::new();
    for t in readers {
        conns.extend(t.join().unwrap());
    }
    assert_eq!(conns.len(), READERS);
    let s = publisher.ok("stats", "");
    assert_eq!(u64_of(&s, "slow_reader_disconnects"), 1, "only the slow one: {s}");
    let fan_seen = drain.join().unwrap();
    assert!(fan_seen < MESSAGES, "the slow one got all {fan_seen} fan messages");
    // Once it is gone, the channel has the 1,000 left.
    let left = eventually(TIMEOUT, || {
        let n = u64_of(&publisher.ok("presence", r#"{"channel":"fan"}"#), "subscribers");
        (n == READERS as u64).then_some(())
    });
    assert!(left.is_some(), "the slow reader is still subscribed");
    // Every reader is still connected and still served.
    assert_eq!(u64_of(&publisher.ok("publish", r#"{"channel":"fan","data":"last"}"#), "seq"), 301);
    for r in conns.iter_mut().step_by(97) {
        let (op, p) = read_raw_frame(r).expect("a reader was dropped");
        assert_eq!(op, 1);
        assert!(p.starts_with(br#"{"event":"message","channel":"fan","seq":301,"#));
    }
    eprintln!(
        "fan-out: {READERS} readers connected in {connect_time:?}, all in {:?}",
        started.elapsed()
    );
}

/// A frame from the hub in a few characters: `a:3` for a message on channel `a` with data 3,
/// `ack:7` for the answer to id 7, `close:1000` for a close frame.
fn label(op: u8, payload: &[u8]) -> String {
    if op == 8 {
        return format!("close:{}", u16::from_be_bytes([payload[0], payload[1]]));
    }
    assert_eq!(op, 1, "a text frame");
    let v = parse(std::str::from_utf8(payload).unwrap());
    if v.get("event").is_some() {
        format!("{}:{}", str_of(&v, "channel"), field(&v, "data"))
    } else {
        assert!(matches!(v.get("ok"), Some(Value::Bool(true))), "{v}");
        format!("ack:{}", field(&v, "id"))
    }
}

/// The next `n` frames, as labels.
fn labels(r: &mut BufReader<TcpStream>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (op, p) = read_raw_frame(r).expect("EOF before the frames expected");
            label(op, &p)
        })
        .collect()
}

fn publish(id: Option<u64>, channel: &str, data: u64) -> Vec<u8> {
    let id = id.map(|i| format!(r#""id":{i},"#)).unwrap_or_default();
    text_frame(&format!(
        r#"{{{id}"method":"publish","params":{{"channel":"{channel}","data":{data}}}}}"#
    ))
}

// Publishes to one channel in one read are gathered and reach each subscriber as one piece
// (src/server/batch.rs). Every connection must still get exactly the frames, in exactly the
// order, it would have had if each was queued at once.
#[test]
fn gathered_publishes_keep_every_connections_order() {
    let server = Binary::start(&[]);
    let mut sub = raw_subscriber(server.addr, &["a", "b"]);
    let mut only_a = raw_subscriber(server.addr, &["a"]);

    // A publisher subscribed to nothing: a:1 and a:2 are gathered for `sub`, b:3 (another
    // set) queues them first, and a:4 queues b:3 first.
    let mut quiet = raw_subscriber(server.addr, &[]);
    let mut burst = publish(None, "a", 1);
    burst.extend(publish(None, "a", 2));
    burst.extend(publish(None, "b", 3));
    burst.extend(publish(None, "a", 4));
    burst.extend(publish(Some(5), "a", 5));
    quiet.get_mut().write_all(&burst).unwrap();
    assert_eq!(labels(&mut quiet, 1), ["ack:5"]);
    assert_eq!(labels(&mut sub, 5), ["a:1", "a:2", "b:3", "a:4", "a:5"]);
    assert_eq!(labels(&mut only_a, 4), ["a:1", "a:2", "a:4", "a:5"]);

    // A publisher subscribed to `a`: each answer comes after its own copy of the message, an
    // unsubscribe and a subscribe in the same read take effect in order, and a message still
    // pending when its close frame is read precedes the close.
    let mut publisher = raw_subscriber(server.addr, &["a"]);
    let mut burst = publish(Some(6), "a", 6);
    burst.extend(publish(None, "a", 7));
    burst.extend(publish(Some(8), "b", 8));
    burst.extend(text_frame(r#"{"id":9,"method":"unsubscribe","params":{"channel":"a"}}"#));
    burst.extend(publish(Some(10), "a", 10));
    burst.extend(text_frame(r#"{"id":11,"method":"subscribe","params":{"channel":"a"}}"#));
    burst.extend(publish(None, "a", 12));
    burst.extend(client_frame(0x88, &1000u16.to_be_bytes()));
    publisher.get_mut().write_all(&burst).unwrap();
    assert_eq!(
        labels(&mut publisher, 9),
        ["a:6", "ack:6", "a:7", "ack:8", "ack:9", "ack:10", "ack:11", "a:12", "close:1000"]
    );
    assert!(read_raw_frame(&mut publisher).is_none(), "EOF after the close handshake");
    assert_eq!(labels(&mut sub, 5), ["a:6", "a:7", "b:8", "a:10", "a:12"]);
}

// A subscribe with `since` between gathered publishes: the messages before it come once, by
// replay, and the ones after it live; the others subscribed get every one once.
#[test]
fn subscribe_since_between_gathered_publishes_has_no_gap_and_no_duplicate() {
    let server = Binary::start(&[]);
    let mut sub = raw_subscriber(server.addr, &["c"]);
    let mut late = raw_subscriber(server.addr, &[]);
    let mut burst = Vec::new();
    burst.extend(publish(None, "c", 1));
    burst.extend(publish(None, "c", 2));
    burst.extend(text_frame(r#"{"id":3,"method":"subscribe","params":{"channel":"c","since":0}}"#));
    burst.extend(publish(None, "c", 4));
    burst.extend(publish(Some(5), "c", 5));
    late.get_mut().write_all(&burst).unwrap();

    assert_eq!(labels(&mut late, 5), ["ack:3", "c:1", "c:2", "c:4", "c:5"]);
    assert_eq!(labels(&mut late, 1), ["ack:5"]);
    assert_eq!(labels(&mut sub, 4), ["c:1", "c:2", "c:4", "c:5"]);
    // Nothing more for either: a duplicate would be next.
    let probe = text_frame(r#"{"id":6,"method":"ping"}"#);
    late.get_mut().write_all(&probe).unwrap();
    sub.get_mut().write_all(&probe).unwrap();
    assert_eq!(labels(&mut late, 1), ["ack:6"]);
    assert_eq!(labels(&mut sub, 1), ["ack:6"]);
}

// The publisher's own message is gathered when its next frame breaks the protocol: the message
// is queued before the input that fails the connection is handled, so it still precedes the
// close frame (1002), as it would have had it been queued at once.
#[test]
fn a_gathered_message_precedes_the_close_for_a_protocol_error_in_the_same_read() {
    let server = Binary::start(&[]);
    let mut publisher = raw_subscriber(server.addr, &["a"]);
    let mut burst = publish(None, "a", 1);
    burst.extend(client_frame(0x83, b"")); // reserved opcode 3: 1002
    publisher.get_mut().write_all(&burst).unwrap();
    assert_eq!(labels(&mut publisher, 2), ["a:1", "close:1002"]);
}

/// A connection the server has closed (here as a slow reader) has no more commands run: what it
/// sends while the close handshake runs is dropped, so it cannot go on publishing.
#[test]
fn commands_after_the_server_closed_the_connection_are_not_run() {
    let server = Binary::start(&["--queue-cap", "1KiB", "--close-timeout", "10s"]);
    let mut b = Client::connect(server.addr);
    b.ok("subscribe", r#"{"channel":"x"}"#);
    b.ok("publish", &format!(r#"{{"channel":"h","data":"{}"}}"#, "a".repeat(3000)));
    let (mut s, head) = raw_upgrade(server.addr, "/ws", &[]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut r = BufReader::new(s.try_clone().unwrap());
    // The answer to this is over the queue cap: the server closes with 1008.
    s.write_all(&text_frame(r#"{"id":1,"method":"history","params":{"channel":"h"}}"#)).unwrap();
    loop {
        let (op, p) = read_raw_frame(&mut r).expect("EOF before the close frame");
        if op == 8 {
            assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1008);
            break;
        }
    }
    // No close frame back: the connection stays in its close handshake, and publishes.
    let before = u64_of(&b.ok("stats", ""), "messages_in");
    s.write_all(&text_frame(r#"{"id":2,"method":"publish","params":{"channel":"x","data":1}}"#))
        .unwrap();
    // Read by the server once the count passes this call's own stats command and the publish.
    eventually(Duration::from_secs(5), || {
        (u64_of(&b.ok("stats", ""), "messages_in") >= before + 2).then_some(())
    })
    .expect("the server never read the publish");
    assert_eq!(u64_of(&b.ok("publish", r#"{"channel":"x","data":2}"#), "seq"), 1);
    let (event, _) = b.message();
    assert_eq!((u64_of(&event, "seq"), event.get("data").and_then(Value::as_u64)), (1, Some(2)));
    b.assert_quiet();
    // A subscriber being closed is not counted as present (it gets nothing more).
    let (mut s2, head) = raw_upgrade(server.addr, "/ws", &[]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut r2 = BufReader::new(s2.try_clone().unwrap());
    s2.write_all(&text_frame(r#"{"id":1,"method":"subscribe","params":{"channel":"x"}}"#)).unwrap();
    s2.write_all(&text_frame(r#"{"id":2,"method":"history","params":{"channel":"h"}}"#)).unwrap();
    loop {
        let (op, _) = read_raw_frame(&mut r2).expect("EOF before the close frame");
        if op == 8 {
            break;
        }
    }
    assert_eq!(u64_of(&b.ok("presence", r#"{"channel":"x"}"#), "subscribers"), 1);
}

#[test]
fn the_channels_answer_is_bounded_and_pages_on() {
    // A 40-byte command must not answer with every channel at once (issue 15: ten clients that
    // never read, five commands each, would hold 1.7 MB each with 10,000 channels).
    let server = Binary::start(&["--rate", "0", "--channel-rate", "0"]);
    let mut a = Client::connect(server.addr);
    for i in 0..1200 {
        a.ok("publish", &format!(r#"{{"channel":"c{i:04}","data":1}}"#));
    }
    let first = a.ok("channels", "");
    let names = |v: &Value| -> Vec<String> {
        field(v, "channels")
            .as_array()
            .unwrap()
            .iter()
            .map(|c| str_of(c, "name").to_string())
            .collect()
    };
    let page = names(&first);
    assert_eq!(page.len(), 1000);
    assert_eq!((page[0].as_str(), page[999].as_str()), ("c0000", "c0999"));
    assert_eq!(field(&first, "more").as_bool(), Some(true), "{first}");
    let next = a.ok("channels", r#"{"after":"c0999"}"#);
    let rest = names(&next);
    assert_eq!((rest.len(), rest[0].as_str()), (200, "c1000"));
    assert!(next.get("more").is_none(), "{next}");
    let small = a.ok("channels", r#"{"prefix":"c1","limit":3}"#);
    assert_eq!(names(&small), ["c1000", "c1001", "c1002"]);
    assert_eq!(a.err("channels", r#"{"limit":0}"#), "invalid_params");
    assert_eq!(a.err("channels", r#"{"limit":1001}"#), "invalid_params");
    assert_eq!(a.err("channels", r#"{"after":5}"#), "invalid_params");
}
