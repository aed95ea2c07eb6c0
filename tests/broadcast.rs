//! `Context::broadcast` and `Context::broadcast_set` on the runtime with a handler of the test's
//! own: what a fragmented send in progress and a close in the same read do to broadcasts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use common::{UPGRADE, close_frame, frame, raw, read_frame, read_head, upgraded};
use weir::proto::connection::MessageKind;
use weir::server::{ConnId, Context, Decision, Handler, Request, Server};

const BIG: usize = 100_000;
/// Empty messages broadcast one by one: 200,000 bytes of frames.
const TINY: usize = 100_000;

/// A room: every connection is a member of one set. It greets each member with a broadcast
/// to the set from `on_open`; `frag` makes it open a fragmented message to the sender, try
/// both broadcasts to it, then finish the message.
#[derive(Default)]
struct Room {
    set: Rc<BTreeSet<ConnId>>,
    /// Bytes of a binary greeting each member gets from `on_open` after the broadcast.
    greeting: usize,
}

impl Handler for Room {
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, _req: &Request<'_>) -> Decision {
        Decision::accept()
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        Rc::make_mut(&mut self.set).insert(id);
        ctx.broadcast_set(&self.set, MessageKind::Text, b"joined");
        if self.greeting > 0 {
            let _ = ctx.send(id, MessageKind::Binary, &vec![7u8; self.greeting]);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, _kind: MessageKind, data: &[u8]) {
        if data == b"frag" {
            ctx.send_piece(id, MessageKind::Text, b"one ", false).unwrap();
            ctx.broadcast([id], MessageKind::Text, b"whole");
            ctx.broadcast_set(&self.set, MessageKind::Text, b"gathered");
            ctx.send_piece(id, MessageKind::Text, b"two", true).unwrap();
        } else if data == b"burst" {
            // Small ones are gathered; one past the gathering limit goes out on its own.
            ctx.broadcast_set(&self.set, MessageKind::Text, b"x");
            ctx.broadcast_set(&self.set, MessageKind::Text, &vec![b'a'; BIG]);
            ctx.broadcast_set(&self.set, MessageKind::Text, b"y");
            ctx.broadcast_set(&self.set, MessageKind::Text, b"z");
        } else if data == b"tiny" {
            // What a busy --broadcast room queues for a member whose socket is full: one
            // shared piece per message, each an empty message's 2-byte frame.
            for _ in 0..TINY {
                ctx.broadcast([id], MessageKind::Text, b"");
            }
        }
    }

    fn on_close(
        &mut self,
        _ctx: &mut Context<'_>,
        id: ConnId,
        _code: weir::proto::CloseCode,
        _reason: &str,
    ) {
        Rc::make_mut(&mut self.set).remove(&id);
    }
}

fn start_room() -> SocketAddr {
    start_room_with(common::config(), 0)
}

fn start_room_with(config: weir::server::Config, greeting: usize) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::bind(config, Room { greeting, ..Room::default() }).unwrap();
        tx.send(server.local_addrs()[0]).unwrap();
        server.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

// RFC 6455 §5.4: the fragments of one message must not be interleaved with another message
// (control frames may come between them, data frames may not). A broadcast reaching a member in
// the middle of a fragmented send skips it, shared frame or gathered piece alike.
#[test]
fn a_broadcast_does_not_enter_a_fragmented_message() {
    let addr = start_room();
    let mut s = upgraded(addr);
    let hello = read_frame(&mut s).expect("the greeting");
    assert_eq!((hello.opcode(), hello.payload.as_slice()), (1, &b"joined"[..]));

    s.write_all(&frame(0x81, b"frag")).unwrap();
    let first = read_frame(&mut s).expect("the first fragment");
    assert_eq!((first.opcode(), first.fin()), (1, false), "{first:?}");
    assert_eq!(first.payload, b"one ");
    let next = read_frame(&mut s).expect("the next frame");
    assert_eq!((next.opcode(), next.fin()), (0, true), "a continuation must come next: {next:?}");
    assert_eq!(next.payload, b"two");

    // Nothing was left queued behind the message: the next thing is the close handshake.
    s.write_all(&close_frame(1000, "")).unwrap();
    let close = read_frame(&mut s).expect("the close frame");
    assert_eq!(close.opcode(), 8, "{close:?}");
}

// A broadcast from `on_open` is gathered; frames that came with the upgrade are read in the
// same turn. A close frame among them must not overtake it: the greeting, then the close.
#[test]
fn a_close_with_the_upgrade_does_not_lose_a_broadcast_from_on_open() {
    let addr = start_room();
    let mut s = raw(addr);
    let mut burst = UPGRADE.as_bytes().to_vec();
    burst.extend(close_frame(1000, ""));
    s.write_all(&burst).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let hello = read_frame(&mut s).expect("the greeting");
    assert_eq!((hello.opcode(), hello.payload.as_slice()), (1, &b"joined"[..]), "{hello:?}");
    let close = read_frame(&mut s).expect("the close frame");
    assert_eq!(close.close_code(), 1000);
}

// Gathered broadcasts and one too large to gather keep their order, for every member.
#[test]
fn gathered_and_large_broadcasts_keep_their_order() {
    let addr = start_room();
    let mut a = upgraded(addr);
    assert_eq!(read_frame(&mut a).expect("greeting").payload, b"joined");
    let mut b = upgraded(addr);
    assert_eq!(read_frame(&mut b).expect("greeting").payload, b"joined");
    assert_eq!(read_frame(&mut a).expect("b's greeting").payload, b"joined");
    b.write_all(&frame(0x81, b"burst")).unwrap();
    for s in [&mut a, &mut b] {
        let got: Vec<(u8, usize)> = (0..4)
            .map(|_| {
                let f = read_frame(s).expect("a broadcast");
                (f.opcode(), f.payload.len())
            })
            .collect();
        assert_eq!(got, [(1, 1), (1, BIG), (1, 1), (1, 1)]);
    }
}

/// What `on_open` queues before the 101 is written: past the queue cap, the connection is
/// closed as a slow reader after its 101, not with a close frame in its place (as it was).
#[test]
fn a_greeting_past_the_queue_cap_comes_after_the_101() {
    let config = weir::server::Config { queue_cap: 4096, ..common::config() };
    let addr = start_room_with(config, 10_000);
    let mut s = raw(addr);
    s.write_all(UPGRADE.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head:?}");
    assert_eq!(common::expect_close(&mut s), 1008);
}

/// `--queue-cap` bounds what a queue holds, not only its bytes: each shared piece also takes a
/// slot in the queue (32 bytes). 100,000 empty broadcasts are 200 KB of frames but 3.4 MB held;
/// counted by their bytes alone they fitted a 256 KiB cap, so a room's tiny messages to a
/// member that does not read could hold 16 times the cap (512 MiB at the default 32 MiB).
#[test]
fn tiny_broadcasts_count_their_queue_slots_against_the_cap() {
    let config = weir::server::Config { queue_cap: 256 << 10, ..common::config() };
    let addr = start_room_with(config, 0);
    let mut s = upgraded(addr);
    assert_eq!(read_frame(&mut s).expect("greeting").payload, b"joined");
    s.write_all(&frame(0x81, b"tiny")).unwrap();
    let mut got = 0;
    let close = loop {
        let f = read_frame(&mut s).expect("EOF before a close frame");
        if f.opcode() == 0x8 {
            break f;
        }
        got += 1;
        assert!(got < TINY, "all {TINY} tiny broadcasts were queued: the cap never counted them");
    };
    assert_eq!((close.close_code(), &close.payload[2..]), (1008, &b"slow reader"[..]));
}
