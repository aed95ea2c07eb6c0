//! `/metrics` after doing the counted thing: the histograms (handshake duration, publish to
//! delivery), and the gauges of open connections per endpoint kind and per route, read from
//! the real binary. (tests/metrics/check_metrics.sh parses the same text with
//! prometheus_client.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/hub.rs"]
mod hub;
#[path = "scripts/support.rs"]
mod support;

use std::time::Duration;

use common::{Binary, eventually};
use http::{Http, Sse, get, post};
use support::{connect, next_text};
use tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(10);

fn metrics(addr: std::net::SocketAddr) -> String {
    get(addr, "/metrics").text().to_owned()
}

/// The value of the sample `name` (with its labels, as written) in a `/metrics` text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A histogram's buckets `(le, cumulative count)` in order, its sum and its count; checks the
/// exposition rules on the way (HELP and TYPE, bounds rising, counts cumulative, `+Inf` last
/// and equal to `_count`).
fn histogram(m: &str, name: &str) -> (Vec<(f64, f64)>, f64, f64) {
    assert!(m.contains(&format!("\n# TYPE {name} histogram\n")), "{name}:\n{m}");
    assert!(m.contains(&format!("\n# HELP {name} ")), "{name}:\n{m}");
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = m
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|l| {
            let (le, value) = l.split_once("\"} ").unwrap();
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
            (le, value.parse().unwrap())
        })
        .collect();
    assert!(buckets.len() > 5, "{name}: too few buckets:\n{m}");
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{name}:\n{m}");
    let (last_le, last) = *buckets.last().unwrap();
    assert_eq!(last_le, f64::INFINITY, "{name}: +Inf is not last:\n{m}");
    let count = sample(m, &format!("{name}_count")).unwrap();
    let sum = sample(m, &format!("{name}_sum")).unwrap();
    assert_eq!(last, count, "{name}: +Inf is not the count:\n{m}");
    assert!(sum >= 0.0, "{name}:\n{m}");
    (buckets, sum, count)
}

#[test]
fn handshake_and_publish_to_delivery_histograms() {
    let weir = Binary::start(&["--broadcast", "/room"]);
    let m = metrics(weir.addr);
    let (_, _, before) = histogram(&m, "weir_handshake_duration_seconds");
    let (_, sum0, none) = histogram(&m, "weir_publish_delivery_seconds");
    assert_eq!((none, sum0), (0.0, 0.0), "nothing was published yet:\n{m}");
    // Two handshakes.
    let mut sub = hub::Client::connect(weir.addr);
    let mut sub2 = hub::Client::connect(weir.addr);
    let m = metrics(weir.addr);
    let (_, _, after) = histogram(&m, "weir_handshake_duration_seconds");
    assert_eq!(after - before, 2.0, "{m}");
    // Two subscribers get a publish: two deliveries once both have it (it is observed when
    // its last byte is written to each subscriber's socket).
    sub.ok("subscribe", r#"{"channel":"ch"}"#);
    sub2.ok("subscribe", r#"{"channel":"ch"}"#);
    let mut api = Http::connect(weir.addr);
    http::publish(&mut api, "ch", r#"{"n":1}"#);
    sub.event();
    sub2.event();
    let m = metrics(weir.addr);
    let (buckets, sum, count) = histogram(&m, "weir_publish_delivery_seconds");
    assert_eq!(count, 2.0, "{m}");
    assert!(sum < 10.0, "{m}");
    // Written within the test's own wait, the deliveries fall under the 10 s bucket.
    let ten = buckets.iter().find(|(le, _)| *le == 10.0).map(|b| b.1);
    assert_eq!(ten, Some(2.0), "{m}");
    // A --broadcast message is a delivery too, one per receiver.
    let mut a = connect(weir.addr, "/room");
    let mut b = connect(weir.addr, "/room");
    a.send(Message::text("to b")).unwrap();
    assert_eq!(next_text(&mut b), "to b");
    let r = post(weir.addr, "/api/broadcast/room", &[], b"to both");
    assert_eq!(r.status, 200);
    assert_eq!(next_text(&mut a), "to both");
    assert_eq!(next_text(&mut b), "to both");
    let m = metrics(weir.addr);
    assert_eq!(histogram(&m, "weir_publish_delivery_seconds").2, 5.0, "{m}");
}

#[test]
fn open_connections_by_endpoint_kind_and_by_route() {
    let upstream = Binary::start(&[]);
    let route = format!("/app=ws://{}/echo", upstream.addr);
    let cat = "a=cat";
    let exec = "/cat=cat";
    // A program that ends on its own: weir closes its client after the exec app let go of it.
    let once = r#"/once=sh -c "read line; echo bye""#;
    let weir = Binary::start(&[
        "--route",
        &route,
        "--broadcast",
        "/room",
        "--exec",
        exec,
        "--exec",
        once,
        "--agent",
        cat,
    ]);
    let kind = |m: &str, k: &str| {
        sample(m, &format!("weir_endpoint_connections_open{{kind=\"{k}\"}}"))
            .unwrap_or_else(|| panic!("no gauge for {k}:\n{m}"))
    };
    let m = metrics(weir.addr);
    assert!(m.contains("\n# TYPE weir_endpoint_connections_open gauge\n"), "{m}");
    assert!(m.contains("\n# TYPE weir_route_connections_open gauge\n"), "{m}");
    for k in ["hub", "echo", "route", "exec", "agent", "broadcast", "event_stream"] {
        assert_eq!(kind(&m, k), 0.0, "{k}:\n{m}");
    }
    // The /metrics request's own connection is a plain HTTP one.
    assert_eq!(kind(&m, "http"), 1.0, "{m}");
    assert_eq!(sample(&m, "weir_route_connections_open{route=\"/app\"}"), Some(0.0), "{m}");

    // An exec client is counted as such to its close, though its program ended first.
    let mut short = connect(weir.addr, "/once");
    short.send(Message::text("x")).unwrap();
    assert_eq!(next_text(&mut short), "bye");
    assert_eq!(kind(&metrics(weir.addr), "exec"), 1.0);
    assert_eq!(support::close_code(&mut short), 1000);
    drop(short);
    let gone = eventually(TIMEOUT, || {
        let m = metrics(weir.addr);
        (sample(&m, "weir_connections_open") == Some(0.0)).then_some(m)
    });
    let m = gone.expect("the exec client never closed");
    assert_eq!((kind(&m, "exec"), kind(&m, "echo")), (0.0, 0.0), "{m}");

    let hub = hub::Client::connect(weir.addr);
    let echo = [connect(weir.addr, "/echo"), connect(weir.addr, "/echo")];
    let mut routed = connect(weir.addr, "/app");
    routed.send(Message::text("through")).unwrap();
    assert_eq!(next_text(&mut routed), "through");
    let mut cat = connect(weir.addr, "/cat");
    cat.send(Message::text("line")).unwrap();
    assert_eq!(next_text(&mut cat), "line");
    let (agent, _) = support::Client::connect(weir.addr, "a");
    let room = connect(weir.addr, "/room");
    let mut stream = Sse::open(weir.addr, "/api/channels/c/events", &[]);
    let _ = stream.block(); // `retry:`: the stream is open
    let idle = Http::connect(weir.addr); // kept alive, no request yet
    let expected = [
        ("hub", 1.0),
        ("echo", 2.0),
        ("route", 1.0),
        ("exec", 1.0),
        ("agent", 1.0),
        ("broadcast", 1.0),
        ("event_stream", 1.0),
    ];
    let m = eventually(TIMEOUT, || {
        let m = metrics(weir.addr);
        // The idle connection and this request's: 2 (once the idle one is accepted).
        (kind(&m, "http") == 2.0).then_some(m)
    })
    .expect("the idle HTTP connection is never counted");
    for (k, n) in expected {
        assert_eq!(kind(&m, k), n, "{k}:\n{m}");
    }
    assert_eq!(sample(&m, "weir_route_connections_open{route=\"/app\"}"), Some(1.0), "{m}");
    // All the upstream's side of the route is not a client of this server's endpoints, but
    // it is an open WebSocket: weir_connections_open counts it.
    assert_eq!(sample(&m, "weir_connections_open"), Some(8.0), "{m}");

    drop((hub, echo, routed, cat, agent, room, stream, idle));
    let m = eventually(TIMEOUT, || {
        let m = metrics(weir.addr);
        expected.iter().all(|(k, _)| kind(&m, k) == 0.0).then_some(m)
    });
    let m = m.unwrap_or_else(|| panic!("gauges never went back to 0:\n{}", metrics(weir.addr)));
    assert_eq!(sample(&m, "weir_route_connections_open{route=\"/app\"}"), Some(0.0), "{m}");
    assert_eq!(kind(&m, "http"), 1.0, "{m}");
}

/// A peer chooses its close code, and RFC 6455 §7.4.2 gives applications 3000-4999: counted
/// code by code, 2,000 connections would add 4,000 series (received and echoed). Those codes
/// are counted as two ranges, `3xxx` and `4xxx`; the protocol's own stay one series each.
#[test]
fn application_close_codes_are_counted_as_ranges() {
    let weir = Binary::start(&[]);
    for code in [4001u16, 4321, 3999, 1000] {
        let mut s = common::upgraded(weir.addr);
        use std::io::Write;
        s.write_all(&common::close_frame(code, "bye")).unwrap();
        assert_eq!(common::expect_close(&mut s), code, "the code is echoed");
    }
    let want = |name: &str, code: &str, n: f64| {
        let key = format!("{name}{{code=\"{code}\"}}");
        eventually(TIMEOUT, || (sample(&metrics(weir.addr), &key) == Some(n)).then_some(()))
            .unwrap_or_else(|| panic!("{key} is not {n}:\n{}", metrics(weir.addr)));
    };
    for name in ["weir_close_codes_received_total", "weir_close_codes_sent_total"] {
        want(name, "4xxx", 2.0);
        want(name, "3xxx", 1.0);
        want(name, "1000", 1.0);
    }
    let m = metrics(weir.addr);
    assert!(!m.contains("code=\"4321\"") && !m.contains("code=\"3999\""), "{m}");
}
