//! Bounds on what publishers can make the hub keep, on the real binary: the byte budget of all
//! history (`--history-memory`), the rate of channel creation (`--channel-rate`), and `--rate`
//! applied per client address to HTTP publishes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/hub.rs"]
mod hub;

use common::Binary;
use http::{Http, Resp, get, publish, u64_of};
use hub::{Client, error_code};
use weir::json::Value;

/// The value of an unlabelled sample in `/metrics`.
fn metric(b: &Binary, name: &str) -> u64 {
    let r = get(b.addr, "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{}", r.text()))
}

/// The `seq` of every message in a history answer.
fn history_seqs(r: &Resp) -> Vec<u64> {
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    let msgs = v.get("messages").and_then(Value::as_array).unwrap_or_else(|| panic!("{v}"));
    msgs.iter().map(|m| u64_of(m, "seq")).collect()
}

/// About 60 KB of JSON.
fn big(n: usize) -> String {
    format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(60_000))
}

#[test]
fn history_of_all_channels_stays_within_its_byte_budget_newest_kept() {
    let b = Binary::start(&["--history-memory", "1MiB"]);
    let mut c = Http::connect(b.addr);
    // Each channel's first message; a channel made after others were forgotten starts above
    // every number they reached, so later ones may start above 1.
    let firsts: Vec<u64> = (0..50).map(|i| publish(&mut c, &format!("ch-{i}"), &big(i))).collect();
    assert_eq!(firsts[0], 1);
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
    let held = metric(&b, "weir_history_bytes");
    assert!(held <= 1 << 20, "{held} bytes of history held over a 1 MiB budget");
    // 16 messages of ~60 KB fit in 1 MiB: the budget is used, not emptied.
    assert!(held > 800_000, "only {held} bytes held");
    let kept = metric(&b, "weir_history_messages");
    assert!((10..=17).contains(&kept), "{kept} messages held");
    assert_eq!(metric(&b, "weir_history_evictions_total"), 50 - kept);
    // The newest are kept; the oldest went, and with nothing kept and nobody following it,
    // their channel is forgotten (it no longer counts against --max-channels).
    let r = c.request("GET", "/api/channels/ch-49/history", &[], None);
    assert_eq!(history_seqs(&r), [firsts[49]]);
    let r = c.request("GET", "/api/channels/ch-0/history", &[], None);
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"), "{r:?}");
    // Its sequence numbers do not start again: the next message is above the last it had.
    let seq = publish(&mut c, "ch-0", "1");
    assert!(seq > 1, "ch-0 numbered {seq} again");

    // Within one channel too: the newest messages are the ones kept.
    let last = (0..30).map(|i| publish(&mut c, "one", &big(i))).last().unwrap();
    let seqs = history_seqs(&c.request("GET", "/api/channels/one/history", &[], None));
    assert!((10..=17).contains(&seqs.len()), "{seqs:?}");
    let want: Vec<u64> = (last + 1 - seqs.len() as u64..=last).collect();
    assert_eq!(seqs, want);
    assert!(metric(&b, "weir_history_bytes") <= 1 << 20);
}

#[test]
fn a_followed_channel_keeps_its_numbers_when_its_history_is_evicted() {
    let b = Binary::start(&["--history-memory", "200KiB"]);
    let mut sub = Client::connect(b.addr);
    sub.ok("subscribe", r#"{"channel":"kept"}"#);
    let mut c = Http::connect(b.addr);
    assert_eq!(publish(&mut c, "kept", "1"), 1);
    for i in 0..5 {
        publish(&mut c, "flood", &big(i));
    }
    // Its message was evicted, but a followed channel stays: numbering goes on from 1.
    let v = c.request("GET", "/api/channels/kept/history", &[], None).json();
    assert_eq!(u64_of(&v, "seq"), 1, "{v}");
    assert_eq!(publish(&mut c, "kept", "2"), 2);
}

#[test]
fn http_publishes_obey_the_rate_per_client_address() {
    // 5 a second with a burst of 5: the test sends everything well within a second.
    let b = Binary::start(&["--rate", "5", "--rate-burst", "5"]);
    let mut c = Http::connect(b.addr);
    // Pipelined on one kept-alive connection, as the attack sent them.
    let mut all = Vec::new();
    for i in 0..20 {
        let body = i.to_string();
        all.extend(http::build("POST", "/api/channels/r/publish", &[], Some(body.as_bytes())));
    }
    c.send(&all);
    for i in 0..20 {
        let r = c.response();
        if i < 5 {
            assert_eq!(r.status, 200, "{i}: {r:?}");
            continue;
        }
        assert_eq!((r.status, r.error_code().as_str()), (429, "rate_limited"), "{i}: {r:?}");
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
        assert!(!r.closes(), "{r:?}");
    }
    // Per address, not per connection: a new connection from the same address waits too.
    let r = Http::connect(b.addr).request("POST", "/api/channels/r/publish", &[], Some(b"1"));
    assert_eq!(r.status, 429, "{r:?}");
    let v = c.request("GET", "/api/channels/r/history", &[], None).json();
    assert_eq!(u64_of(&v, "seq"), 5, "{v}");
    assert_eq!(metric(&b, "weir_rate_limited_total"), 16);
}

#[test]
fn channel_creation_is_rate_limited_per_client_address() {
    // 1 a second with a burst of 3: the test creates everything well within a second.
    let b = Binary::start(&["--channel-rate", "1", "--channel-rate-burst", "3"]);
    let mut ws = Client::connect(b.addr);
    for name in ["a", "b", "c"] {
        ws.ok("subscribe", &format!(r#"{{"channel":"{name}"}}"#));
    }
    let a = ws.call("subscribe", r#"{"channel":"d"}"#);
    assert_eq!(error_code(&a), "rate_limited", "{a}");
    // What exists is not created: subscribing to it and publishing to it go on.
    ws.ok("subscribe", r#"{"channel":"a"}"#);
    ws.ok("publish", r#"{"channel":"b","data":1}"#);
    // Another connection from the same address shares the allowance.
    let mut other = Client::connect(b.addr);
    assert_eq!(other.err("publish", r#"{"channel":"e","data":1}"#), "rate_limited");
    // So do HTTP publishes and event streams from it: 429 with Retry-After.
    let mut c = Http::connect(b.addr);
    for (method, target, body) in [
        ("POST", "/api/channels/f/publish", Some(&b"1"[..])),
        ("GET", "/api/channels/f/events", None),
    ] {
        let r = c.request(method, target, &[], body);
        assert_eq!((r.status, r.error_code().as_str()), (429, "rate_limited"), "{r:?}");
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    }
    assert_eq!(publish(&mut c, "a", "2"), 1);
    let v = c.request("GET", "/api/channels/f/history", &[], None);
    assert_eq!(v.status, 404, "{v:?}");
}
