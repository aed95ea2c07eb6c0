//! The hub on Redis (`--redis`, issue 19) over real processes: three `weir` nodes on one real
//! `redis-server` (tests/common/redis.rs starts it), clients on each. Per-channel order and no
//! duplicates across nodes; a client moving nodes and resuming with `since`; Redis restarted
//! empty (a new epoch: `recovered: false`); Redis paused then resumed (`unavailable`, 503,
//! reconnects, subscribers kept); a node killed with subscribers on the others; history kept by
//! Redis's append-only file across a restart of every process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http_util;
#[path = "common/hub.rs"]
mod hub_util;

use std::time::{Duration, Instant};

use common::Binary;
use common::redis::Redis;
use http_util::Http;
use hub_util::{Client, error_code, field, str_of, u64_of};
use weir::json::Value;

/// A weir node on `redis`.
fn node(redis: &Redis) -> Binary {
    Binary::start(&["--redis", &redis.url()])
}

/// Waits (at most 15 s) until the node's links are both ready, as `/api/stats` says.
fn ready(node: &Binary) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = Http::connect(node.addr).request("GET", "/api/stats", &[], None).json();
        let r = field(&stats, "redis");
        let up = |k| matches!(r.get(k), Some(Value::Bool(true)));
        if up("commands_ready") && up("subscriber_ready") {
            return;
        }
        assert!(Instant::now() < deadline, "links not ready: {stats}\n{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Publishes `data` and returns the answer's `(seq, epoch)`.
fn publish(c: &mut Client, channel: &str, data: &str) -> (u64, String) {
    let r = c.ok("publish", &format!(r#"{{"channel":"{channel}","data":{data}}}"#));
    (u64_of(&r, "seq"), str_of(&r, "epoch").to_string())
}

/// Publishes until an attempt succeeds (Redis coming back), at most `within`.
fn publish_eventually(
    c: &mut Client,
    channel: &str,
    data: &str,
    within: Duration,
) -> (u64, String) {
    let deadline = Instant::now() + within;
    loop {
        let a = c.call("publish", &format!(r#"{{"channel":"{channel}","data":{data}}}"#));
        if let Some(r) = a.get("result") {
            return (u64_of(r, "seq"), str_of(r, "epoch").to_string());
        }
        assert_eq!(error_code(&a), "unavailable", "{a}");
        assert!(Instant::now() < deadline, "publishes still unavailable after {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next `message` event: `(seq, epoch, data as JSON text)`.
fn message(c: &mut Client) -> (u64, String, String) {
    let (v, _) = c.message();
    (u64_of(&v, "seq"), str_of(&v, "epoch").to_string(), field(&v, "data").to_string())
}

fn subscribe(c: &mut Client, params: &str) -> Value {
    c.ok("subscribe", params)
}

/// Asks `/api/stats` of `node` until `redis.nodes` (the nodes alive on its Redis) is `n`.
fn nodes_reach(node: &Binary, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let stats = Http::connect(node.addr).request("GET", "/api/stats", &[], None).json();
        if field(&stats, "redis").get("nodes").and_then(Value::as_u64) == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "redis.nodes never became {n}: {stats}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client of `node` subscribed to `channel`.
fn follower(node: &Binary, channel: &str) -> Client {
    let mut c = Client::connect(node.addr);
    subscribe(&mut c, &format!(r#"{{"channel":"{channel}"}}"#));
    c
}

/// `presence` of `channel` as `c` asks it.
fn count(c: &mut Client, channel: &str) -> u64 {
    u64_of(&c.ok("presence", &format!(r#"{{"channel":"{channel}"}}"#)), "subscribers")
}

/// Asks `presence` of `channel` until it is `n`, at most `within`.
fn count_reaches(c: &mut Client, channel: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while count(c, channel) != n {
        assert!(Instant::now() < deadline, "presence of {channel} never became {n} in {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_nodes_one_order_no_duplicates() {
    let Some(redis) = Redis::start(false) else { return };
    let nodes: Vec<Binary> = (0..3).map(|_| node(&redis)).collect();
    for n in &nodes {
        ready(n);
    }
    // Two subscribers and a publisher on each node.
    let mut subs: Vec<Client> = Vec::new();
    for n in &nodes {
        for _ in 0..2 {
            let mut c = Client::connect(n.addr);
            let r = subscribe(&mut c, r#"{"channel":"room"}"#);
            assert_eq!(u64_of(&r, "seq"), 0, "{r}");
            subs.push(c);
        }
    }
    let mut pubs: Vec<Client> = nodes.iter().map(|n| Client::connect(n.addr)).collect();
    let rounds = 20;
    let mut answered = Vec::new();
    for i in 0..rounds {
        for (p, publisher) in pubs.iter_mut().enumerate() {
            answered.push(publish(publisher, "room", &format!(r#"{{"n":{i},"p":{p}}}"#)));
        }
    }
    // An HTTP publish on the third node joins the same order.
    let r = Http::connect(nodes[2].addr).request(
        "POST",
        "/api/channels/room/publish",
        &[],
        Some(br#"{"http":true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let total = rounds * 3 + 1;
    assert_eq!(u64_of(&r.json(), "seq"), total as u64);
    let epoch = answered[0].1.clone();
    assert!(answered.iter().all(|(_, e)| *e == epoch));
    let mut seqs: Vec<u64> = answered.iter().map(|(s, _)| *s).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..total as u64).collect::<Vec<_>>(), "each publish its own offset");
    // Every subscriber, whatever its node, gets every message once, in one order.
    let mut first: Option<Vec<String>> = None;
    for c in &mut subs {
        let got: Vec<(u64, String, String)> = (0..total).map(|_| message(c)).collect();
        let order: Vec<u64> = got.iter().map(|m| m.0).collect();
        assert_eq!(order, (1..=total as u64).collect::<Vec<_>>(), "{}", c.name);
        assert!(got.iter().all(|m| m.1 == epoch));
        let data: Vec<String> = got.into_iter().map(|m| m.2).collect();
        match &first {
            None => first = Some(data),
            Some(f) => assert_eq!(&data, f),
        }
        c.assert_quiet();
    }
}

#[test]
fn a_client_moves_nodes_and_resumes_with_since() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b, c) = (node(&redis), node(&redis), node(&redis));
    for n in [&a, &b, &c] {
        ready(n);
    }
    let mut on_a = Client::connect(a.addr);
    subscribe(&mut on_a, r#"{"channel":"feed"}"#);
    let mut pb = Client::connect(b.addr);
    for i in 1..=5 {
        publish(&mut pb, "feed", &i.to_string());
    }
    let mut last = (0, String::new());
    for i in 1..=5 {
        let (seq, epoch, data) = message(&mut on_a);
        assert_eq!((seq, data), (i, i.to_string()));
        last = (seq, epoch);
    }
    drop(on_a);
    for i in 6..=9 {
        publish(&mut pb, "feed", &i.to_string());
    }
    // On another node, after what it had: what it missed, then live.
    let mut on_c = Client::connect(c.addr);
    let r = subscribe(
        &mut on_c,
        &format!(r#"{{"channel":"feed","since":{},"epoch":"{}"}}"#, last.0, last.1),
    );
    assert_eq!(u64_of(&r, "seq"), 9, "{r}");
    assert_eq!(str_of(&r, "epoch"), last.1);
    assert!(matches!(r.get("recovered"), Some(Value::Bool(true))), "{r}");
    for i in 6..=9 {
        let (seq, _, data) = message(&mut on_c);
        assert_eq!((seq, data), (i, i.to_string()));
    }
    publish(&mut pb, "feed", "10");
    assert_eq!(message(&mut on_c).0, 10);
    on_c.assert_quiet();
    // The history, from any node, over WebSocket and HTTP.
    let h = Client::connect(a.addr).ok("history", r#"{"channel":"feed","since":7}"#);
    assert_eq!(u64_of(&h, "seq"), 10);
    let seqs: Vec<u64> =
        field(&h, "messages").as_array().unwrap().iter().map(|m| u64_of(m, "seq")).collect();
    assert_eq!(seqs, [8, 9, 10]);
    let r = Http::connect(b.addr).request("GET", "/api/channels/feed/history?since=8", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    let n = field(&r.json(), "messages").as_array().unwrap().len();
    assert_eq!(n, 2);
    // HEAD: the head of the GET's answer (its Content-Length), no body (RFC 9110 §9.3.2).
    let mut h = Http::connect(b.addr);
    let head = h.request("HEAD", "/api/channels/feed/history?since=8", &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(r.body.len().to_string().as_str()));
    // Kept alive: the next answer on the connection starts right after the head.
    let next = h.request("GET", "/api/channels/feed/history?since=8", &["Connection: close"], None);
    assert_eq!((next.status, next.body), (200, r.body));
    h.expect_eof(Duration::from_secs(5));
    let r = Http::connect(b.addr).request("GET", "/api/channels/none/history", &[], None);
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn redis_restarted_empty_is_a_new_epoch_and_not_recovered() {
    let Some(mut redis) = Redis::start(false) else { return };
    let (a, b) = (node(&redis), node(&redis));
    ready(&a);
    ready(&b);
    let mut sub = Client::connect(b.addr);
    subscribe(&mut sub, r#"{"channel":"news"}"#);
    let mut p = Client::connect(a.addr);
    let mut old = (0, String::new());
    for i in 1..=3 {
        old = publish(&mut p, "news", &i.to_string());
        assert_eq!(message(&mut sub).0, i);
    }
    redis.restart(false);
    // The nodes come back; the subscriber kept its connection and follows the new epoch.
    let (seq, epoch) = publish_eventually(&mut p, "news", r#""after""#, Duration::from_secs(20));
    assert_eq!(seq, 1);
    assert_ne!(epoch, old.1);
    let (s, e, data) = message(&mut sub);
    assert_eq!((s, e.as_str(), data.as_str()), (1, epoch.as_str(), r#""after""#));
    // A client that resumes from the old epoch is told what it had is gone.
    let mut late = Client::connect(a.addr);
    let r = subscribe(
        &mut late,
        &format!(r#"{{"channel":"news","since":{},"epoch":"{}"}}"#, old.0, old.1),
    );
    assert!(matches!(r.get("recovered"), Some(Value::Bool(false))), "{r}");
    assert_eq!(str_of(&r, "epoch"), epoch);
}

#[test]
fn redis_paused_answers_unavailable_and_keeps_subscribers() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b) = (node(&redis), node(&redis));
    ready(&a);
    ready(&b);
    let mut sub = Client::connect(b.addr);
    subscribe(&mut sub, r#"{"channel":"t"}"#);
    let mut p = Client::connect(a.addr);
    publish(&mut p, "t", "1");
    assert_eq!(message(&mut sub).0, 1);
    redis.pause();
    // The reply deadline (2 s) passes: the publish is lost with the link, and answered so.
    let started = Instant::now();
    let a1 = p.call("publish", r#"{"channel":"t","data":2}"#);
    assert_eq!(error_code(&a1), "unavailable", "{a1}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // While the link is down, at once; over HTTP, 503.
    let r = Http::connect(a.addr).request("POST", "/api/channels/t/publish", &[], Some(b"3"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error_code(), "unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    redis.resume();
    let (seq, _) = publish_eventually(&mut p, "t", "4", Duration::from_secs(20));
    // The subscriber kept its connection and gets what Redis has after what it had.
    let mut got = Vec::new();
    while got.last() != Some(&seq) {
        got.push(message(&mut sub).0);
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert!(got[0] >= 2, "{got:?}");
    let metrics = Http::connect(a.addr).request("GET", "/metrics", &[], None);
    let text = metrics.text();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(value("weir_redis_reconnects_total{link=\"commands\"}") >= 1);
    assert!(value("weir_redis_requests_lost_total") >= 1);
    assert_eq!(value("weir_redis_link_up{link=\"commands\"}"), 1);
    assert!(a.log().contains("redis: link lost"), "{}", a.log());
}

#[test]
fn a_node_killed_leaves_the_others_delivering() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b, c) = (node(&redis), node(&redis), node(&redis));
    for n in [&a, &b, &c] {
        ready(n);
    }
    let mut on_a = Client::connect(a.addr);
    subscribe(&mut on_a, r#"{"channel":"k"}"#);
    let mut on_b = Client::connect(b.addr);
    subscribe(&mut on_b, r#"{"channel":"k"}"#);
    let mut on_c = Client::connect(c.addr);
    subscribe(&mut on_c, r#"{"channel":"k"}"#);
    let mut pa = Client::connect(a.addr);
    publish(&mut pa, "k", "1");
    drop(a);
    let mut pb = Client::connect(b.addr);
    publish(&mut pb, "k", "2");
    for s in [&mut on_b, &mut on_c] {
        assert_eq!(message(s).0, 1);
        assert_eq!(message(s).0, 2);
    }
}

#[test]
fn history_survives_a_restart_of_every_process_with_aof() {
    let Some(mut redis) = Redis::start(true) else { return };
    let a = node(&redis);
    ready(&a);
    let mut p = Client::connect(a.addr);
    let mut epoch = String::new();
    for i in 1..=5 {
        epoch = publish(&mut p, "log", &i.to_string()).1;
    }
    drop(p);
    drop(a);
    redis.restart(true);
    let b = node(&redis);
    ready(&b);
    let mut c = Client::connect(b.addr);
    let h = c.ok("history", r#"{"channel":"log"}"#);
    assert_eq!(str_of(&h, "epoch"), epoch);
    let data: Vec<String> = field(&h, "messages")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| field(m, "data").to_string())
        .collect();
    assert_eq!(data, ["1", "2", "3", "4", "5"]);
    let r = subscribe(&mut c, &format!(r#"{{"channel":"log","since":3,"epoch":"{epoch}"}}"#));
    assert!(matches!(r.get("recovered"), Some(Value::Bool(true))), "{r}");
    assert_eq!(message(&mut c).0, 4);
    assert_eq!(message(&mut c).0, 5);
}

#[test]
fn without_redis_reachable_publishes_are_unavailable() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let n = Binary::start(&["--redis", &format!("redis://127.0.0.1:{port}")]);
    let mut c = Client::connect(n.addr);
    assert_eq!(c.err("publish", r#"{"channel":"x","data":1}"#), "unavailable");
    assert_eq!(c.err("subscribe", r#"{"channel":"x"}"#), "unavailable");
    assert_eq!(c.err("history", r#"{"channel":"x"}"#), "unavailable");
    let r = Http::connect(n.addr).request("POST", "/api/channels/x/publish", &[], Some(b"1"));
    assert_eq!(r.status, 503, "{}", r.text());
    c.assert_quiet();
}

#[test]
fn a_lost_subscription_link_reads_what_it_missed() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b) = (node(&redis), node(&redis));
    ready(&a);
    ready(&b);
    let mut sub = Client::connect(b.addr);
    subscribe(&mut sub, r#"{"channel":"g"}"#);
    let mut late = Client::connect(b.addr);
    subscribe(&mut late, r#"{"channel":"g"}"#);
    let mut p = Client::connect(a.addr);
    publish(&mut p, "g", "1");
    assert_eq!(message(&mut sub).0, 1);
    // Redis drops every pub/sub connection: what is published before the nodes subscribe
    // again is not sent to them, and is read from the history instead.
    let killed = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(killed.starts_with(b":"), "{}", String::from_utf8_lossy(&killed));
    for i in 2..=6 {
        publish(&mut p, "g", &i.to_string());
    }
    let got: Vec<u64> = (0..5).map(|_| message(&mut sub).0).collect();
    assert_eq!(got, [2, 3, 4, 5, 6]);
    let got: Vec<u64> = (0..6).map(|_| message(&mut late).0).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    sub.assert_quiet();
    late.assert_quiet();
    b.log_with("redis: link lost", Duration::from_secs(5));
}

#[test]
fn presence_counts_the_subscribers_of_every_node() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b) = (node(&redis), node(&redis));
    ready(&a);
    ready(&b);
    let _on_a = follower(&a, "here");
    let on_b = follower(&b, "here");
    let mut b2 = follower(&b, "here");
    let mut asker = Client::connect(a.addr);
    // Each entry is added once its subscribe is answered; the count is Redis's.
    count_reaches(&mut asker, "here", 3, Duration::from_secs(10));
    // Leaving removes the entry at once (on the node's next tick), closing too.
    b2.ok("unsubscribe", r#"{"channel":"here"}"#);
    on_b.close();
    count_reaches(&mut asker, "here", 1, Duration::from_secs(10));
    let members = redis.command(&["ZCARD", "weir:{here}:p"]);
    assert_eq!(members, b":1\r\n");
}

#[test]
fn a_channel_left_and_followed_again_at_once_stays_followed() {
    let Some(redis) = Redis::start(false) else { return };
    let a = node(&redis);
    ready(&a);
    let mut c = Client::connect(a.addr);
    subscribe(&mut c, r#"{"channel":"again"}"#);
    // Left and followed again before the node tells Redis anything: it stays subscribed in
    // Redis, and the second subscribe must not wait for a confirmation that never comes.
    let leave = c.send_cmd("unsubscribe", r#"{"channel":"again"}"#);
    let join = c.send_cmd("subscribe", r#"{"channel":"again"}"#);
    c.answer(&leave.to_string());
    let r = c.answer(&join.to_string());
    assert!(matches!(r.get("ok"), Some(Value::Bool(true))), "{r}");
    let mut p = Client::connect(a.addr);
    publish(&mut p, "again", "1");
    assert_eq!(message(&mut c).0, 1);
}

#[test]
fn an_event_stream_resumes_from_redis_on_any_node() {
    let Some(redis) = Redis::start(false) else { return };
    let (a, b) = (node(&redis), node(&redis));
    ready(&a);
    ready(&b);
    let mut p = Client::connect(a.addr);
    for i in 1..=4 {
        publish(&mut p, "s", &i.to_string());
    }
    // On the other node, after 2 (as a reconnecting EventSource asks): 3 and 4, then live.
    let mut sse = http_util::Sse::open(b.addr, "/api/channels/s/events", &["Last-Event-ID: 2"]);
    let got: Vec<(u64, String)> = (0..2)
        .map(|_| {
            let e = sse.event();
            (e.seq(), field(&e.json(), "data").to_string())
        })
        .collect();
    assert_eq!(got, [(3, "3".to_string()), (4, "4".to_string())]);
    publish(&mut p, "s", "5");
    let e = sse.event();
    assert_eq!((e.seq(), u64_of(&e.json(), "seq")), (5, 5));
}

#[test]
fn http_publishes_keep_their_connection_sequential_and_pipelined() {
    let Some(redis) = Redis::start(false) else { return };
    let a = node(&redis);
    ready(&a);
    let mut h = Http::connect(a.addr);
    // One after another on one socket: each answered after Redis, the connection kept.
    let mut seqs = Vec::new();
    for i in 1..=3 {
        let r = h.request("POST", "/api/channels/ka/publish", &[], Some(i.to_string().as_bytes()));
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!r.closes(), "a kept-alive publish closes: {r:?}");
        seqs.push(u64_of(&r.json(), "seq"));
    }
    // Pipelined in one write, with a plain request behind them: answered in order.
    let mut bytes = Vec::new();
    for i in 4..=6 {
        let body = i.to_string();
        bytes.extend(http_util::build(
            "POST",
            "/api/channels/ka/publish",
            &[],
            Some(body.as_bytes()),
        ));
    }
    bytes.extend(http_util::build("GET", "/api/channels/ka/history", &[], None));
    h.send(&bytes);
    for _ in 4..=6 {
        let r = h.response();
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!r.closes(), "{r:?}");
        seqs.push(u64_of(&r.json(), "seq"));
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let history = h.response();
    assert_eq!(history.status, 200, "{history:?}");
    let text = history.text().to_string();
    assert!(text.contains("\"seq\":6"), "{text}");
    // Closed by the client's word: the answer says so and the connection ends.
    let r = h.request("POST", "/api/channels/ka/publish", &["Connection: close"], Some(b"7"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.closes(), "{r:?}");
    h.expect_eof(Duration::from_secs(5));
}

/// `rediss://`: both links over TLS, the server's certificate verified against `--tls-ca`.
#[cfg(feature = "tls")]
#[test]
fn rediss_links_verify_the_certificate_and_carry_the_hub() {
    let certs = common::tls::Certs::new();
    let Some(redis) = Redis::start_tls(certs.cert(), certs.key()) else { return };
    let url = redis.tls_url();
    let ca = certs.ca_str();
    let (a, b) = (
        Binary::start(&["--redis", &url, "--tls-ca", &ca]),
        Binary::start(&["--redis", &url, "--tls-ca", &ca]),
    );
    ready(&a);
    ready(&b);
    let mut sub = Client::connect(b.addr);
    subscribe(&mut sub, r#"{"channel":"sealed"}"#);
    let mut p = Client::connect(a.addr);
    assert_eq!(publish(&mut p, "sealed", "1").0, 1);
    let (seq, _, data) = message(&mut sub);
    assert_eq!((seq, data.as_str()), (1, "1"));
    // Roots that do not hold the test CA: the handshake fails, the links never get ready, and
    // the log says why.
    let other = common::tls::Certs::new();
    let c = Binary::start(&["--redis", &url, "--tls-ca", &other.ca_str()]);
    let log = c.log_with("redis: connection closed", Duration::from_secs(10));
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    let stats = Http::connect(c.addr).request("GET", "/api/stats", &[], None).json();
    assert!(
        matches!(field(&stats, "redis").get("commands_ready"), Some(Value::Bool(false))),
        "{stats}"
    );
}

/// Without the `tls` feature, `rediss://` is refused at start with the reason.
#[cfg(not(feature = "tls"))]
#[test]
fn rediss_without_the_tls_feature_is_refused_at_start() {
    let out = common::weir(&["--redis", "rediss://127.0.0.1:6380"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rediss://") && err.contains("cargo build --features tls"), "{err}");
}

/// `--redis-channel-ttl`: a channel's stream and hash expire that long after its last publish
/// (each publish sets it again); a client resuming after is told `recovered: false`, and the
/// next publish starts a new epoch at offset 1.
#[test]
fn an_idle_channel_expires_in_redis_after_its_ttl() {
    let Some(redis) = Redis::start(false) else { return };
    let a = Binary::start(&["--redis", &redis.url(), "--redis-channel-ttl", "1s"]);
    ready(&a);
    let mut p = Client::connect(a.addr);
    publish(&mut p, "idle", "1");
    let (seq, epoch) = publish(&mut p, "idle", "2");
    assert_eq!(seq, 2);
    let pttl = |key: &str| {
        let r = String::from_utf8(redis.command(&["PTTL", key])).unwrap();
        r.trim_start_matches(':').trim_end().parse::<i64>().unwrap()
    };
    for key in ["weir:{idle}:s", "weir:{idle}:m"] {
        let ttl = pttl(key);
        assert!((1..=1000).contains(&ttl), "{key}: PTTL {ttl}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.command(&["EXISTS", "weir:{idle}:s", "weir:{idle}:m"]) != b":0\r\n" {
        assert!(Instant::now() < deadline, "the channel's keys never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Client::connect(a.addr);
    let r = subscribe(&mut c, &format!(r#"{{"channel":"idle","since":2,"epoch":"{epoch}"}}"#));
    assert!(matches!(r.get("recovered"), Some(Value::Bool(false))), "{r}");
    let (seq, new_epoch) = publish(&mut p, "idle", "3");
    assert_eq!(seq, 1);
    assert_ne!(new_epoch, epoch);
    assert_eq!(message(&mut c).0, 1);
    // The default keeps a channel a day after its last publish.
    let b = node(&redis);
    ready(&b);
    publish(&mut Client::connect(b.addr), "daily", "1");
    let ttl = pttl("weir:{daily}:m");
    assert!((86_000_000..=86_400_000).contains(&ttl), "PTTL {ttl}");
}

/// `--redis-presence-ttl`: a node that dies takes its presence entries with it within the TTL
/// (its members are refreshed every third of it while it lives).
#[test]
fn a_killed_nodes_presence_entries_expire() {
    let Some(redis) = Redis::start(false) else { return };
    let short = ["--redis", &redis.url(), "--redis-presence-ttl", "1s"];
    let (a, b) = (Binary::start(&short), Binary::start(&short));
    ready(&a);
    ready(&b);
    let (on_a, _on_b) = (follower(&a, "room"), follower(&b, "room"));
    let mut asker = Client::connect(b.addr);
    count_reaches(&mut asker, "room", 2, Duration::from_secs(10));
    // `/api/stats` counts the nodes on this Redis, each registered as its presence is.
    nodes_reach(&b, 2, Duration::from_secs(5));
    // Three TTLs on, both entries are still there: their nodes refreshed them.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&mut asker, "room"), 2);
    // Node a is killed (SIGKILL: it removes nothing); its entry expires within the TTL (and
    // a tick or two of the asker's).
    drop(a);
    count_reaches(&mut asker, "room", 1, Duration::from_secs(3));
    nodes_reach(&b, 1, Duration::from_secs(3));
    assert_eq!(redis.command(&["ZCARD", "weir:{room}:p"]), b":1\r\n");
    drop(on_a);
}
