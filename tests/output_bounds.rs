//! What a peer can make the server queue for it, on the real binary: a ping flood holds at most
//! one pong, and a half-closed peer still gets everything queued for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

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
