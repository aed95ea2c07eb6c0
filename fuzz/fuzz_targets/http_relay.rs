//! `proto::relay::Exchange` (the proxy's plain HTTP exchange), fed whole against fed in reads
//! of a fuzzer-chosen size: the same bytes to the client, the same error, the same ends of both
//! messages, however the upstream's and the client's bytes are split.
//!
//! Input layout (parsed by hand, no `arbitrary`):
//! - byte 0: bit 0 the request is `HEAD`; bits 1-2 the request body's framing (none, a length
//!   of byte 1, chunked); bit 3 the client keeps its connection alive; bit 4 it is HTTP/1.0;
//! - byte 1: the request body's length, when framed by one;
//! - byte 2: the read size of the split run (0 counts as 1);
//! - bytes 3-4: how many of the rest are the client's (big-endian, cut to what there is);
//! - the rest: the client's bytes, then the upstream's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::body::{ChunkedDecoder, Framing};
use weir::proto::http::Limits;
use weir::proto::relay::{ClientHead, Exchange, RelayError};

/// What an exchange made of its input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// How much of the client's bytes went up, or the error.
    up: Result<usize, RelayError>,
    /// What went down to the client, or the error (with what went down before it, whole runs
    /// and split runs may differ: only the error is compared then).
    down: Result<Vec<u8>, RelayError>,
    /// What went up, decoded when chunked (the chunks are made anew, their sizes may differ).
    sent: Vec<u8>,
    request_done: bool,
    response_done: bool,
    started: bool,
    keep_alive: bool,
}

fuzz_target!(|data: &[u8]| {
    let [flags, len, read, a, b, rest @ ..] = data else {
        return;
    };
    let method = if flags & 1 != 0 { "HEAD" } else { "GET" };
    let framing = match (flags >> 1) & 3 {
        1 => Framing::Length(u64::from(*len)),
        2 | 3 => Framing::Chunked,
        _ => Framing::None,
    };
    let keep_alive = flags & 8 != 0;
    let http10 = flags & 16 != 0;
    let split = usize::from(u16::from_be_bytes([*a, *b])).min(rest.len());
    let (client, upstream) = rest.split_at(split);
    let read = usize::from(*read).max(1);
    let run = |read: usize| {
        let limits = Limits::default();
        let asked = ClientHead { framing, keep_alive, http10 };
        let (mut e, head) = Exchange::new(method, "/t", "up", &[], asked, limits);
        assert!(head.ends_with(b"\r\n\r\n"));
        let mut up = Ok(0);
        let mut sent = Vec::new();
        for piece in client.chunks(read) {
            match e.client_bytes(piece, &mut sent) {
                Ok(n) => {
                    assert!(n <= piece.len());
                    up = up.map(|u| u + n);
                }
                Err(err) => {
                    up = Err(err);
                    break;
                }
            }
        }
        let mut down = Ok(Vec::new());
        let mut out = Vec::new();
        for piece in upstream.chunks(read) {
            if let Err(err) = e.upstream_bytes(piece, &mut out) {
                down = Err(err);
                break;
            }
        }
        if let Ok(d) = &mut down {
            *d = out;
            // Rewriting a head adds at most a status line and `Connection: close` per head.
            assert!(d.len() <= upstream.len() * 2 + 64, "{} from {}", d.len(), upstream.len());
        }
        if framing == Framing::Chunked {
            let mut data = Vec::new();
            let mut d = ChunkedDecoder::new();
            let used = d.feed(&sent, &mut data, usize::MAX).expect("chunked anew");
            assert_eq!((used, d.is_done()), (sent.len(), e.request_done()), "what went up");
            sent = data;
        }
        Outcome {
            up,
            down,
            sent,
            request_done: e.request_done(),
            response_done: e.response_done(),
            started: e.started(),
            keep_alive: e.keep_alive(),
        }
    };
    let whole = run(client.len().max(upstream.len()).max(1));
    let split = run(read);
    assert_eq!(whole.up, split.up, "client bytes, whole against reads of {read}");
    match (&whole.down, &split.down) {
        (Ok(w), Ok(s)) => assert_eq!(w, s, "upstream bytes, whole against reads of {read}"),
        (w, s) => assert_eq!(w.as_ref().err(), s.as_ref().err(), "reads of {read}"),
    }
    if whole.up.is_ok() && whole.down.is_ok() {
        assert_eq!(whole, split, "reads of {read}");
    }
});
