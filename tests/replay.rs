//! Replay as a cursor: a `history` answer, `subscribe` with `since` and an event stream with
//! `since` are written from the channel's history as the socket drains, not copied into the
//! queue up front. A client that does not read holds little memory; one that reads gets the
//! same bytes as before; live messages on other channels are neither lost nor reordered; a
//! replay the history drops from under is ended, never answered wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/hub.rs"]
mod hub_util;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{Binary, eventually};
use http::{Http, Sse, get, publish};
use hub_util::{Client, client_frame, raw_upgrade, read_raw_frame, text_frame};
use weir::json::Value;

fn stat(b: &Binary, key: &str) -> u64 {
    let r = get(b.addr, "/api/stats");
    assert_eq!(r.status, 200, "{r:?}");
    http::u64_of(&r.json(), key)
}

/// Publishes `n` messages of about `size` bytes each to `channel`, each different.
fn fill(b: &Binary, channel: &str, n: usize, size: usize) {
    let mut h = Http::connect(b.addr);
    for i in 0..n {
        let data = format!(r#"{{"i":{i},"pad":"{}\u00e9\"x"}}"#, "ab".repeat(size / 2));
        publish(&mut h, channel, &data);
    }
}

/// A raw hub connection, greeted, that is then never read (until the test says so).
fn raw_client(b: &Binary) -> BufReader<TcpStream> {
    let (s, head) = raw_upgrade(b.addr, "/ws", &[]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut r = BufReader::with_capacity(64 << 10, s);
    let (op, hello) = read_raw_frame(&mut r).expect("EOF before connected");
    assert_eq!(op, 1);
    assert!(hello.starts_with(br#"{"event":"connected""#));
    r
}

/// Ten connections each ask five times for the history of a channel that keeps about 6 MB,
/// and never read: before, each queued a copy of every answer (32 MiB a connection, just under
/// the cap); now each holds a cursor and a window of at most a few hundred KiB.
#[test]
fn history_answers_to_clients_that_do_not_read_hold_little_memory() {
    let b = Binary::start(&[]);
    fill(&b, "big", 100, 60_000);
    let base_rss = stat(&b, "rss_bytes");
    let base_in = stat(&b, "messages_in");
    let mut conns = Vec::new();
    for _ in 0..10 {
        let mut c = raw_client(&b);
        for i in 0..5 {
            let cmd = format!(r#"{{"id":{i},"method":"history","params":{{"channel":"big"}}}}"#);
            c.get_mut().write_all(&text_frame(&cmd)).unwrap();
        }
        conns.push(c);
    }
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") >= base_in + 50).then_some(()))
        .expect("the commands were not all read");
    let grown = stat(&b, "rss_bytes").saturating_sub(base_rss);
    eprintln!("50 unread history answers: the server grew by {grown} bytes");
    assert!(grown < 40 << 20, "50 unread history answers grew the server by {grown} bytes");
    // Nobody was cut off: each is a client that may still read its answers.
    assert_eq!(stat(&b, "slow_reader_disconnects"), 0);
    let mut c = conns.pop().unwrap();
    for i in 0..5 {
        let (op, payload) = whole_message(&mut c);
        assert_eq!(op, 1);
        let want = format!(r#"{{"id":{i},"ok":true,"result":{{"seq":100,"messages":["#);
        assert!(payload.starts_with(want.as_bytes()));
        assert!(payload.ends_with(b"]}}"));
    }
}

/// Twenty event streams ask for everything kept (`since=0`) and never read: before, each
/// queued the whole replay (about 6 MB); now each holds a cursor.
#[test]
fn event_stream_replays_to_clients_that_do_not_read_hold_little_memory() {
    // The stream that is read (the first opened) waits while the others open and the stats are
    // read: on a loaded machine (a full `cargo test` beside other builds) that can pass the 30 s
    // `--send-timeout`, which then drops it. That bound has its own test; this one is memory.
    let b = Binary::start(&["--send-timeout", "10m"]);
    fill(&b, "big", 100, 60_000);
    let base_rss = stat(&b, "rss_bytes");
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(Sse::open(b.addr, "/api/channels/big/events?since=0", &[]));
    }
    let grown = stat(&b, "rss_bytes").saturating_sub(base_rss);
    eprintln!("20 unread event-stream replays: the server grew by {grown} bytes");
    assert!(grown < 40 << 20, "20 unread replays grew the server by {grown} bytes");
    // One of them reads: every kept message, in order, then live ones.
    let s = &mut streams[0];
    for seq in 1..=100 {
        let e = s.event();
        assert_eq!(e.seq(), seq);
        assert_eq!(http::u64_of(&e.json(), "seq"), seq);
    }
    fill(&b, "big", 1, 10);
    assert_eq!(s.event().seq(), 101);
}

/// One frame: its first byte (FIN and opcode) and payload.
fn frame(r: &mut BufReader<TcpStream>) -> (u8, Vec<u8>) {
    let b0 = r.fill_buf().unwrap().first().copied().expect("EOF before a frame");
    let (_, payload) = read_raw_frame(r).expect("EOF inside a frame");
    (b0, payload)
}

/// One whole message off a raw connection, its fragments joined (RFC 6455 §5.4).
fn whole_message(r: &mut BufReader<TcpStream>) -> (u8, Vec<u8>) {
    let (b0, mut payload) = frame(r);
    let mut fin = b0 & 0x80 != 0;
    while !fin {
        let (b0, more) = frame(r);
        assert_eq!(b0 & 0x0F, 0, "a frame of another message inside a fragmented one");
        payload.extend_from_slice(&more);
        fin = b0 & 0x80 != 0;
    }
    (b0 & 0x0F, payload)
}

/// The answer a reader gets is the one it always got: `{"id","ok","result":{"seq",
/// "messages"}}` with the events exactly as they were sent live, whatever the size.
#[test]
fn a_history_answer_read_whole_is_byte_for_byte_the_same() {
    let b = Binary::start(&["--history", "200"]);
    let mut live = Client::connect(b.addr);
    live.ok("subscribe", r#"{"channel":"big"}"#);
    fill(&b, "big", 150, 30_000);
    let events: Vec<String> = (0..150).map(|_| live.message().1).collect();
    for (params, query, from, to) in [
        (r#"{"channel":"big"}"#, "", 0, 150),
        (r#"{"channel":"big","since":40}"#, "since=40", 40, 150),
        (r#"{"channel":"big","limit":70}"#, "limit=70", 80, 150),
        (r#"{"channel":"big","since":149}"#, "since=149", 149, 150),
        (r#"{"channel":"big","since":150}"#, "since=150", 150, 150),
    ] {
        let id = live.send_cmd("history", params);
        let got = live.next_text();
        let want = format!(
            r#"{{"id":{id},"ok":true,"result":{{"seq":150,"messages":[{}]}}}}"#,
            events[from..to].join(",")
        );
        assert!(got == want, "history {params}: {} bytes, want {}", got.len(), want.len());
        // The HTTP API gives the same result.
        let r = get(b.addr, &format!("/api/channels/big/history?{query}"));
        assert_eq!(r.status, 200, "{r:?}");
        assert!(want.contains(r.text()), "HTTP history {query}");
    }
    live.assert_quiet();
}

/// A client subscribed to `live` and `other` asks for a history answer of several MB, then
/// subscribes to `late` with `since`, and reads nothing while 200 messages are published to
/// the three, then sends a `ping`: it gets the whole answer, the `subscribe` answer, the kept
/// `late` messages, every live message in order once, then the ping's answer.
#[test]
fn live_messages_while_a_history_answer_is_in_flight_are_kept_in_order() {
    // A 20 MB answer: more than the kernel's socket buffers take on their own.
    let b = Binary::start(&["--max-publish-size", "256KiB"]);
    fill(&b, "big", 100, 200_000);
    let mut x = Client::connect(b.addr);
    x.ok("subscribe", r#"{"channel":"live"}"#);
    x.ok("subscribe", r#"{"channel":"other"}"#);
    let base_in = stat(&b, "messages_in");
    let hid = x.send_cmd("history", r#"{"channel":"big"}"#);
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") > base_in).then_some(()))
        .expect("the history command was not read");
    let out = stat(&b, "bytes_out");
    let mut h = Http::connect(b.addr);
    for i in 1..=3 {
        publish(&mut h, "late", &format!("{}", 1000 + i));
    }
    let sid = x.send_cmd("subscribe", r#"{"channel":"late","since":0}"#);
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") > base_in + 1).then_some(()))
        .expect("the subscribe was not read");
    for i in 1..=200u64 {
        let channel = ["other", "live", "late", "live"][i as usize % 4];
        publish(&mut h, channel, &i.to_string());
    }
    // The answer was still being written while all that was published.
    let written = stat(&b, "bytes_out") - out;
    assert!(written < 20_000_000, "{written} bytes written: the answer was not in flight");
    let pid = x.send_cmd("ping", "");
    let answer = x.next_text();
    let head = format!(r#"{{"id":{hid},"ok":true,"result":{{"seq":100,"messages":["#);
    assert!(answer.starts_with(&head), "{}", &answer[..80]);
    assert!(answer.ends_with("]}}"));
    assert_eq!(answer.matches(r#"{"event":"message","channel":"big","#).count(), 100);
    let s = x.next();
    assert_eq!(s.get("id").and_then(Value::as_u64), Some(sid), "{s}");
    for i in 1..=3 {
        let (ev, _) = x.message();
        assert_eq!(ev.get("data").and_then(Value::as_u64), Some(1000 + i), "{ev}");
    }
    for i in 1..=200u64 {
        let (ev, _) = x.message();
        assert_eq!(ev.get("data").and_then(Value::as_u64), Some(i), "{ev}");
    }
    let p = x.next();
    assert_eq!(p.get("id").and_then(Value::as_u64), Some(pid), "{p}");
    x.assert_quiet();
}

/// `subscribe` with `since` on a channel whose history then moves on past what the client
/// has not yet read: the client gets a prefix of the replay, in order, then close 1008; it
/// never gets a replay with a hole in it. An event stream is ended the same way.
#[test]
fn a_replay_the_history_drops_from_under_is_ended_not_answered_wrong() {
    // 40 MB of replay: more than the kernel's socket buffers take on their own.
    let b = Binary::start(&[
        "--history",
        "200",
        "--max-publish-size",
        "256KiB",
        "--queue-cap",
        "128MiB",
    ]);
    fill(&b, "c", 200, 200_000);
    let mut x = raw_client(&b);
    let base_in = stat(&b, "messages_in");
    let cmd = r#"{"id":1,"method":"subscribe","params":{"channel":"c","since":0}}"#;
    x.get_mut().write_all(&text_frame(cmd)).unwrap();
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") > base_in).then_some(()))
        .expect("the subscribe was not read");
    let mut sse = Sse::open(b.addr, "/api/channels/c/events?since=0", &[]);
    // The history now holds 201..=400 only.
    fill(&b, "c", 200, 10);
    let (op, ans) = whole_message(&mut x);
    assert_eq!(op, 1);
    assert!(ans.starts_with(br#"{"id":1,"ok":true,"#), "{}", String::from_utf8_lossy(&ans));
    let mut next = 1;
    loop {
        let (op, p) = whole_message(&mut x);
        if op == 0x8 {
            assert_eq!(u16::from_be_bytes([p[0], p[1]]), 1008);
            assert_eq!(&p[2..], b"replay overtaken");
            x.get_mut().write_all(&client_frame(0x88, &p)).unwrap();
            break;
        }
        assert_eq!(op, 1);
        let want = format!(r#"{{"event":"message","channel":"c","seq":{next},"#);
        assert!(p.starts_with(want.as_bytes()), "{}", String::from_utf8_lossy(&p[..60]));
        next += 1;
    }
    assert!(next <= 200, "the whole replay came through: the test proves nothing");
    eprintln!("the WebSocket got {} of 200 before 1008", next - 1);
    let mut seqs = Vec::new();
    for e in sse.rest(Duration::from_secs(10)) {
        seqs.push(e.seq());
    }
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, want, "a stream's replay is a prefix, then EOF");
    assert!(seqs.len() < 200, "the whole stream replay came through");
    eprintln!("the event stream got {} of 200 before its end", seqs.len());
}

/// What a replay owes counts against `--queue-cap` as the copy did: a history answer larger
/// than the cap to a client that has not read it closes the connection as a slow reader.
#[test]
fn a_history_answer_past_the_queue_cap_closes_as_a_slow_reader() {
    let b = Binary::start(&["--queue-cap", "1MiB"]);
    fill(&b, "big", 40, 60_000);
    let mut x = Client::connect(b.addr);
    x.send_cmd("history", r#"{"channel":"big"}"#);
    assert_eq!(x.expect_close(), (1008, "slow reader".to_string()));
    assert_eq!(stat(&b, "slow_reader_disconnects"), 1);
}

/// While a replay is written to a client it still counts as a subscriber (`presence`), and
/// an `unsubscribe` it sends meanwhile holds: nothing published after it reaches the client,
/// during the replay or after.
#[test]
fn a_client_with_a_replay_in_flight_is_present_and_can_unsubscribe() {
    let b = Binary::start(&["--max-publish-size", "256KiB"]);
    fill(&b, "big", 100, 200_000);
    // A channel that had a message is kept when its last subscriber leaves.
    fill(&b, "a", 1, 10);
    let mut x = Client::connect(b.addr);
    x.ok("subscribe", r#"{"channel":"a"}"#);
    let base_in = stat(&b, "messages_in");
    let hid = x.send_cmd("history", r#"{"channel":"big"}"#);
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") > base_in).then_some(()))
        .expect("the history command was not read");
    let mut y = Client::connect(b.addr);
    assert_eq!(hub_util::u64_of(&y.ok("presence", r#"{"channel":"a"}"#), "subscribers"), 1);
    let uid = x.send_cmd("unsubscribe", r#"{"channel":"a"}"#);
    eventually(Duration::from_secs(10), || (stat(&b, "messages_in") > base_in + 2).then_some(()))
        .expect("the unsubscribe was not read");
    assert_eq!(hub_util::u64_of(&y.ok("presence", r#"{"channel":"a"}"#), "subscribers"), 0);
    let mut h = Http::connect(b.addr);
    publish(&mut h, "a", "1");
    let answer = x.next_text();
    assert!(answer.starts_with(&format!(r#"{{"id":{hid},"ok":true,"#)));
    assert_eq!(x.next().get("id").and_then(Value::as_u64), Some(uid));
    publish(&mut h, "a", "2");
    x.assert_quiet();
}

/// A client the hub cuts off as a slow reader for what its replay owes is not read any more,
/// as the runtime's own slow readers are not. Before, what it sent was read and thrown away
/// for the whole --close-timeout.
#[test]
fn a_slow_reader_cut_off_for_its_replay_is_not_read() {
    let b = Binary::start(&["--queue-cap", "1MiB", "--close-timeout", "60s"]);
    fill(&b, "big", 40, 60_000);
    let mut c = raw_client(&b);
    let cmd = text_frame(r#"{"id":1,"method":"history","params":{"channel":"big"}}"#);
    c.get_mut().write_all(&cmd).unwrap();
    eventually(Duration::from_secs(10), || {
        (stat(&b, "slow_reader_disconnects") == 1).then_some(())
    })
    .expect("not cut off as a slow reader");
    let s = c.get_mut();
    s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk = client_frame(0x82, &[5u8; 64 << 10]);
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(10) {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    assert!(sent < 128 << 20, "the server read {sent} bytes from a slow reader it cut off");
}

/// A client that asks for a history answer of several MB and sends its close right after
/// (then shuts down its write side) gets the whole answer, then the echo of its close: the
/// close does not overtake what the replay still owes. Before, the echo went out after the
/// first window of the answer, inside its fragments, and the rest was dropped.
#[test]
fn a_close_after_a_history_command_comes_after_the_whole_answer() {
    let b = Binary::start(&[]);
    fill(&b, "big", 100, 60_000);
    let mut c = raw_client(&b);
    let mut out = text_frame(r#"{"id":7,"method":"history","params":{"channel":"big"}}"#);
    out.extend_from_slice(&client_frame(0x88, b"\x03\xe8bye"));
    c.get_mut().write_all(&out).unwrap();
    c.get_ref().shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let (code, reason) = loop {
        let (b0, payload) = frame(&mut c);
        match b0 & 0x0F {
            0x8 => break (u16::from_be_bytes([payload[0], payload[1]]), payload[2..].to_vec()),
            op => {
                assert_eq!(op, if answer.is_empty() { 1 } else { 0 }, "another message");
                answer.extend_from_slice(&payload);
            }
        }
    };
    assert!(answer.ends_with(b"]}}"), "the close came {} bytes into the answer", answer.len());
    assert!(answer.starts_with(br#"{"id":7,"ok":true,"result":{"seq":100,"messages":["#));
    let text = String::from_utf8(answer).unwrap();
    assert_eq!(text.matches(r#"{"event":"message","channel":"big","#).count(), 100);
    assert_eq!((code, reason.as_slice()), (1000, &b"bye"[..]));
}

/// `GET /api/channels/C/history` is a cursor as well: a client that sends it and does not read
/// holds a window, not a copy of the body. Before, the whole body was queued (about 20 MB here
/// for a request of 40 bytes, whatever --queue-cap says). One that reads gets the body it
/// always got: the `history` result over WebSocket, with its length.
#[test]
fn an_http_history_body_to_a_client_that_does_not_read_holds_little_memory() {
    let b = Binary::start(&["--max-publish-size", "256KiB"]);
    fill(&b, "big", 100, 200_000);
    let served = stat(&b, "http_requests");
    let mut h = Http::connect(b.addr);
    h.send(&http::build("GET", "/api/channels/big/history", &[], None));
    // This request of /api/stats is the first after `served`, the history one the second.
    eventually(Duration::from_secs(10), || (stat(&b, "http_requests") >= served + 2).then_some(()))
        .expect("the history request was not served");
    let text = get(b.addr, "/metrics").text().to_owned();
    let queued: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("weir_queued_bytes ")?.parse().ok())
        .expect("no weir_queued_bytes");
    assert!(queued < 1 << 20, "an unread HTTP history body holds {queued} bytes queued");
    let mut ws = Client::connect(b.addr);
    let id = ws.send_cmd("history", r#"{"channel":"big"}"#);
    let answer = ws.next_text();
    let head = format!(r#"{{"id":{id},"ok":true,"result":"#);
    let want = answer.strip_prefix(&head).and_then(|a| a.strip_suffix('}')).unwrap();
    h.set_timeout(Duration::from_secs(20));
    let r = h.response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.header("content-length"), Some(&*want.len().to_string()), "{}", r.head);
    assert!(r.text() == want, "the body differs ({} bytes, want {})", r.body.len(), want.len());
    // Kept alive: the next request on the connection is served after the body.
    let next = h.request("GET", "/api/channels/big/history?since=99", &[], None);
    assert_eq!(next.status, 200, "{}", next.head);
    assert_eq!(next.text().matches(r#"{"event":"message","channel":"big","#).count(), 1);
}
