//! A coalescing connection (`Context::set_coalesce`, a tunnel's WebSocket) is written once per
//! turn of the loop: what every socket read in the turn sent into it goes out together, not
//! after each read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{frame, read_frame, upgrade};
use weir::proto::MessageKind;
use weir::server::{ConnId, Context, Decision, Handler, Request};

/// `/sink` is the coalescing connection; `/feed` connections are paused once open, and what
/// they send goes to the sink; a message on `/go` resumes every feeder at once, so that all are
/// read in the same turn of the loop.
#[derive(Default)]
struct Relay {
    sink: Option<ConnId>,
    feeders: Vec<ConnId>,
    go: Option<ConnId>,
    /// The sink's unsent bytes right after each feeder's message was queued to it.
    queued: Arc<Mutex<Vec<usize>>>,
}

impl Handler for Relay {
    fn on_upgrade(&mut self, _ctx: &mut Context<'_>, req: &Request<'_>) -> Decision {
        match req.path {
            "/sink" => self.sink = Some(req.id),
            "/feed" => self.feeders.push(req.id),
            _ => self.go = Some(req.id),
        }
        Decision::accept()
    }

    fn on_open(&mut self, ctx: &mut Context<'_>, id: ConnId) {
        if Some(id) == self.sink {
            ctx.set_coalesce(id, true);
        } else if self.feeders.contains(&id) {
            ctx.pause_reading(id);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, id: ConnId, kind: MessageKind, data: &[u8]) {
        if Some(id) == self.go {
            for &f in &self.feeders {
                ctx.resume_reading(f);
            }
        } else if let Some(sink) = self.sink.filter(|_| self.feeders.contains(&id)) {
            ctx.send(sink, kind, data).unwrap();
            self.queued.lock().unwrap().push(ctx.queued_bytes(sink));
        }
    }
}

#[test]
fn a_coalescing_connection_is_written_once_for_a_whole_turn() {
    let queued = Arc::new(Mutex::new(Vec::new()));
    let addr = common::serve(Relay { queued: Arc::clone(&queued), ..Relay::default() });
    let mut sink = upgrade(addr, "/sink");
    let mut a = upgrade(addr, "/feed");
    let mut b = upgrade(addr, "/feed");
    let mut go = upgrade(addr, "/go");
    // On loopback a write is in the server's socket buffer once it returns: both feeders are
    // readable (and paused) before the go.
    a.write_all(&frame(0x82, b"from a")).unwrap();
    b.write_all(&frame(0x82, b"from b")).unwrap();
    go.write_all(&frame(0x82, b"go")).unwrap();
    let mut got: Vec<Vec<u8>> =
        (0..2).map(|_| read_frame(&mut sink).expect("a relayed message").payload).collect();
    got.sort();
    assert_eq!(got, [b"from a".to_vec(), b"from b".to_vec()]);
    // Each frame is 2 + 6 bytes. Written after each read, the sink would hold one frame when
    // the second was queued; coalesced, it holds both until the turn ends.
    assert_eq!(*queued.lock().unwrap(), [8, 16]);
}
