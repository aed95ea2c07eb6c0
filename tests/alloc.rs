//! Steady-state echo of small messages allocates nothing per message: a counting global
//! allocator around the real server, driven by a client that allocates nothing itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests count every allocation in the process: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One echo round trip of a 64-byte text message with fixed buffers.
fn round_trip(s: &mut std::net::TcpStream, frame: &[u8], reply: &mut [u8; 66]) {
    s.write_all(frame).unwrap();
    s.read_exact(reply).unwrap();
    assert_eq!(&reply[..2], &[0x81, 64]);
}

#[test]
fn steady_state_echo_allocates_nothing_per_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let addr = common::start(common::config());
    let mut s = common::upgraded(addr);
    let frame = common::frame(0x81, &[b'a'; 64]);
    let mut reply = [0u8; 66];
    // Warm up: pools, queues and the timer wheel reach their working size.
    for _ in 0..2_000 {
        round_trip(&mut s, &frame, &mut reply);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    const N: u64 = 20_000;
    for _ in 0..N {
        round_trip(&mut s, &frame, &mut reply);
    }
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    // The only allocations allowed are incidental ones (a timer firing), not one per message.
    assert!(during < 10, "{during} allocations for {N} echoes");
}

/// A JSON text of about 1 KiB that is not one repeated byte (so it compresses as chat does).
fn json_1k() -> Vec<u8> {
    let mut s = String::from("{\"type\":\"chat\",\"messages\":[");
    let mut i = 0u32;
    while s.len() < 1100 {
        i += 1;
        s.push_str(&format!(
            "{{\"user\":\"u{}\",\"ts\":{},\"text\":\"w{} x{}\"}},",
            i * 7919 % 1000,
            1_733_480_000_000u64 + u64::from(i * 104_729),
            i * 31 % 97,
            i * 17 % 89
        ));
    }
    s.push_str("{}]}");
    s.into_bytes()
}

#[test]
fn steady_state_compressed_echo_allocates_little_per_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    use weir::server::{Compression, Mode};
    let mut config = common::config();
    config.compression = Some(Compression { mode: Mode::Shared, min_size: 1024 });
    let addr = common::start(config);
    let mut s = common::raw(addr);
    let offer = common::UPGRADE.replacen(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        1,
    );
    s.write_all(offer.as_bytes()).unwrap();
    let head = common::read_head(&mut s);
    assert!(head.contains("server_no_context_takeover"), "{head}");
    // One compressed message (RSV1, RFC 7692 §7.2.1), made before anything is counted.
    let json = json_1k();
    let mut packed = Vec::new();
    weir::proto::deflate::Deflater::new(15, false).compress_message(&json, &mut packed);
    let frame = common::frame(0xC1, &packed);
    // The echo comes compressed: read its header, then its payload, into fixed buffers.
    let mut payload = vec![0u8; 4096];
    let mut echo = |s: &mut std::net::TcpStream| -> usize {
        s.write_all(&frame).unwrap();
        let mut h = [0u8; 4];
        s.read_exact(&mut h[..2]).unwrap();
        assert_eq!(h[0], 0xC1, "a compressed text echo");
        let n = match h[1] {
            126 => {
                s.read_exact(&mut h[2..4]).unwrap();
                usize::from(u16::from_be_bytes([h[2], h[3]]))
            }
            n => usize::from(n),
        };
        s.read_exact(&mut payload[..n]).unwrap();
        n
    };
    for _ in 0..2_000 {
        echo(&mut s);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    const N: u64 = 5_000;
    for _ in 0..N {
        assert!(echo(&mut s) < json.len(), "compressed");
    }
    let per_message = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64;
    // The inflater is leased for the message, the message buffer keeps its pooled size, the
    // compressor's tables are on the stack, its output is copied into a pooled buffer, and the
    // box that holds the leased state is lent with it: none (41 allocations per echo at first,
    // then 1 for that box).
    assert!(per_message < 0.5, "{per_message:.2} allocations per compressed echo");
}
