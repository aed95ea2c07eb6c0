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

/// One echo round trip of a 64-byte text message with fixed buffers.
fn round_trip(s: &mut std::net::TcpStream, frame: &[u8], reply: &mut [u8; 66]) {
    s.write_all(frame).unwrap();
    s.read_exact(reply).unwrap();
    assert_eq!(&reply[..2], &[0x81, 64]);
}

#[test]
fn steady_state_echo_allocates_nothing_per_message() {
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
