//! What a peer can make the server queue for it, on the real binary: a ping flood holds at most
//! one pong, output nobody drains is dropped after `--send-timeout` and bounded in total by
//! `--max-queued-total`, a half-closed peer still gets everything queued for it, and a slow
//! reader is not read from once it is cut off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Binary, eventually, expect_close, frame, read_frame, upgraded};

/// A sample of `/metrics` (0 when the line is absent).
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let text = http::get(addr, "/metrics").text().to_owned();
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0)
}

/// A field of `/proc/PID/status`, in kB.
fn status_kb(pid: u32, name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
}

/// Reads what is in flight until the server's EOF or reset, failing if the socket stays open.
fn read_until_closed(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the socket stayed open: {e}"),
        }
    }
}

/// Whether an echo on a fresh connection to `path` still works.
fn canary_echoes(addr: SocketAddr, path: &str) {
    let mut s = common::raw(addr);
    s.write_all(common::UPGRADE.replace("GET /echo", &format!("GET {path}")).as_bytes()).unwrap();
    assert!(common::read_head(&mut s).starts_with("HTTP/1.1 101"));
    if path == "/echo" {
        s.write_all(&frame(0x81, b"canary")).unwrap();
        assert_eq!(read_frame(&mut s).unwrap().payload, b"canary");
    } else {
        // The hub's first message ("connected") comes before the pong.
        s.write_all(&frame(0x89, b"canary")).unwrap();
        let f = std::iter::from_fn(|| read_frame(&mut s)).find(|f| f.opcode() == 0xA).unwrap();
        assert_eq!(f.payload, b"canary");
    }
}

/// RFC 6455 §5.5.3: a client that sends pings and never reads gets at most one pong queued
/// (the newest ping's), counted against --queue-cap; the server's memory does not grow with
/// the pings.
#[test]
fn a_ping_flood_queues_one_pong() {
    for path in ["/echo", "/ws"] {
        let server = Binary::start(&["--queue-cap", "1MiB"]);
        let pid = server.pid();
        let mut s = common::raw(server.addr);
        s.write_all(common::UPGRADE.replace("GET /echo", &format!("GET {path}")).as_bytes())
            .unwrap();
        assert!(common::read_head(&mut s).starts_with("HTTP/1.1 101"));
        let rss_before = status_kb(pid, "VmRSS:");
        // 600,000 pings of 125 bytes (78 MB), each with its number in front; never read.
        const PINGS: usize = 600_000;
        let mut flood = Vec::with_capacity(PINGS * 131);
        for i in 0..PINGS {
            let mut payload = [b'x'; 125];
            payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
            flood.extend_from_slice(&frame(0x89, &payload));
        }
        // Then one text message: once it is counted, every ping before it was read.
        flood.extend_from_slice(&frame(0x81, b"{}"));
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(&flood).unwrap();
        eventually(Duration::from_secs(60), || {
            (metric(server.addr, "weir_messages_in_total") == 1).then_some(())
        })
        .unwrap_or_else(|| panic!("{path}: the server did not read the pings"));
        let grown = status_kb(pid, "VmHWM:").saturating_sub(rss_before);
        assert!(grown < 24 << 10, "{path}: the server grew by {grown} kB for the pongs");
        assert_eq!(metric(server.addr, "weir_slow_reader_disconnects_total"), 0, "{path}");
        assert!(metric(server.addr, "weir_queued_bytes") < 64 << 10, "{path}");
        canary_echoes(server.addr, path);
        // The newest ping is answered (after the pongs in flight and the message's answer).
        let last = (PINGS as u64 - 1).to_be_bytes();
        loop {
            let f = read_frame(&mut s).unwrap_or_else(|| panic!("{path}: EOF before the pong"));
            if f.opcode() == 0xA && f.payload[..8] == last {
                break;
            }
        }
    }
}

/// A connection whose queued output is not written for --send-timeout is dropped, whatever it
/// keeps sending (unsolicited pongs here).
#[test]
fn pings_sent_together_to_a_reader_each_get_their_pong() {
    // Autobahn 2.10: ten pings in one write, each with its own payload, to a peer that reads.
    // RFC 6455 §5.5.3 lets a server answer only the latest of pings it has not answered yet;
    // weir does so only while its writes to the peer are blocked (the flood above).
    let weir = Binary::start(&[]);
    let mut s = upgraded(weir.addr);
    let pings: Vec<u8> = (0..10u8).flat_map(|i| frame(0x89, &[b'p', b'0' + i])).collect();
    s.write_all(&pings).unwrap();
    for i in 0..10u8 {
        let f = read_frame(&mut s).expect("a pong");
        assert_eq!((f.opcode(), f.payload.as_slice()), (0xA, &[b'p', b'0' + i][..]), "pong {i}");
    }
}

#[test]
fn undrained_output_is_dropped_after_the_send_timeout() {
    let server = Binary::start(&[
        "--send-timeout",
        "1s",
        "--max-message-size",
        "64MiB",
        "--max-frame-size",
        "64MiB",
    ]);
    let mut s = upgraded(server.addr);
    // An echo larger than any socket buffers, never read.
    let big = vec![7u8; 24 << 20];
    s.write_all(&frame(0x82, &big)).unwrap();
    let start = Instant::now();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let gone = eventually(Duration::from_secs(15), || {
        // Unsolicited pongs (RFC 6455 §5.5.3): input, not progress on the output.
        if s.write_all(&frame(0x8A, b"still here")).is_err() {
            return Some(());
        }
        (metric(server.addr, "weir_send_timeouts_total") == 1).then_some(())
    });
    assert!(gone.is_some(), "not dropped; log:\n{}", server.log());
    assert!(start.elapsed() >= Duration::from_millis(900), "dropped before the timeout");
    // Its socket is closed: what was in flight, then EOF or a reset.
    read_until_closed(&mut s);
    eventually(Duration::from_secs(5), || server.log().contains("send timeout").then_some(()))
        .unwrap_or_else(|| panic!("no log line:\n{}", server.log()));
    assert_eq!(metric(server.addr, "weir_queued_bytes"), 0);
    canary_echoes(server.addr, "/echo");
}

/// Past --max-queued-total, the connection holding the most queued bytes is cut first.
#[test]
fn the_largest_queue_is_cut_past_the_total_budget() {
    let server = Binary::start(&[
        "--max-queued-total",
        "8MiB",
        "--max-message-size",
        "64MiB",
        "--max-frame-size",
        "64MiB",
        "--send-timeout",
        "60s",
    ]);
    let mut small = upgraded(server.addr);
    let small_msg: Vec<u8> = (0..6 << 20).map(|i| (i % 251) as u8).collect();
    small.write_all(&frame(0x82, &small_msg)).unwrap();
    let mut large = upgraded(server.addr);
    large.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // Under --queue-cap (32 MiB): only the total is passed.
    large.write_all(&frame(0x82, &vec![1u8; 24 << 20])).unwrap();
    eventually(Duration::from_secs(20), || {
        (metric(server.addr, "weir_queue_budget_disconnects_total") == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("nothing cut; log:\n{}", server.log()));
    eventually(Duration::from_secs(5), || {
        server.log().contains("over the queued total").then_some(())
    })
    .unwrap_or_else(|| panic!("no log line:\n{}", server.log()));
    // The large one is closed; the small one gets its whole echo.
    read_until_closed(&mut large);
    let f = read_frame(&mut small).unwrap();
    assert_eq!(f.payload, small_msg);
    assert!(metric(server.addr, "weir_queued_bytes") < 8 << 20);
}

/// A peer that sends a large message and its close, then shuts down its write side, still gets
/// the whole echo and the close frame (1000); the close code is counted once it is written.
#[test]
fn a_half_closed_peer_gets_everything_queued() {
    let server = Binary::start(&["--max-message-size", "64MiB", "--max-frame-size", "64MiB"]);
    let mut s = upgraded(server.addr);
    let msg: Vec<u8> = (0..24 << 20).map(|i| (i % 253) as u8).collect();
    let mut out = frame(0x82, &msg);
    out.extend_from_slice(&common::close_frame(1000, "done"));
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&out).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The server has the close frame (and the FIN after it: read in the same or the next turn,
    // which the second scrape waits out).
    let received = "weir_close_codes_received_total{code=\"1000\"}";
    eventually(Duration::from_secs(20), || (metric(server.addr, received) == 1).then_some(()))
        .unwrap_or_else(|| panic!("no close received; log:\n{}", server.log()));
    let sent = "weir_close_codes_sent_total{code=\"1000\"}";
    assert_eq!(metric(server.addr, sent), 0, "counted before it was written");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let f = read_frame(&mut s).expect("EOF before the echo");
    assert_eq!((f.opcode(), f.fin()), (0x2, true));
    assert!(f.payload == msg, "the echo differs ({} bytes)", f.payload.len());
    assert_eq!(expect_close(&mut s), 1000);
    common::expect_eof(&mut s, Duration::from_secs(5));
    eventually(Duration::from_secs(5), || (metric(server.addr, sent) == 1).then_some(()))
        .unwrap_or_else(|| panic!("close not counted; log:\n{}", server.log()));
}

/// A slow reader cut off (1008) is not read from any more, and its socket is closed without
/// waiting for the close timeout.
#[test]
fn a_slow_reader_is_not_read_after_it_is_cut_off() {
    let server =
        Binary::start(&["--queue-cap", "1MiB", "--close-timeout", "60s", "--send-timeout", "1s"]);
    let mut s = upgraded(server.addr);
    s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let chunk = frame(0x82, &[5u8; 64 << 10]);
    let start = Instant::now();
    let mut sent = 0usize;
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(10) {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert_eq!(metric(server.addr, "weir_slow_reader_disconnects_total"), 1, "{}", server.log());
    assert!(sent < 128 << 20, "the server read {sent} bytes from a slow reader");
    assert!(closed, "the slow reader's socket stayed open for 10 s ({sent} bytes sent)");
    canary_echoes(server.addr, "/echo");
}
