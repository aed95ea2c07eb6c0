//! A server's response head, as a client reads it: found by `HeadReader` (whole, byte by byte,
//! in chunks), parsed, and checked against the handshake the client started.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Status;
use weir::proto::error::ResponseError;
use weir::proto::handshake::ClientHandshake;
use weir::proto::http::{self, Header, Limits};
use weir_fuzz::head::find_head;

/// RFC 6455 §1.3's sample nonce: key `dGhlIHNhbXBsZSBub25jZQ==`, accept
/// `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`, so hand-written seeds can carry the right accept value.
const NONCE: [u8; 16] = *b"the sample nonce";

const OFFERED: &[&str] = &["chat"];

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let len = match find_head(data, &limits) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) | Err(_) => return,
    };
    let mut slots = [Header::default(); 64];
    let resp = http::parse_response(&data[..len], &mut slots, &limits);
    // Parsing stops at the blank line, so the bytes after the head (the first frames) change
    // nothing.
    let mut slots_all = [Header::default(); 64];
    let resp_all = http::parse_response(data, &mut slots_all, &limits);
    assert_eq!(resp, resp_all, "bytes after the head changed the parse");
    let Ok(resp) = resp else { return };
    assert!((100..=999).contains(&resp.status));
    assert!(resp.minor_version <= 1);
    assert!(resp.headers.len() <= limits.max_headers);

    let handshake = ClientHandshake::new(NONCE);
    assert_eq!(handshake.key(), b"dGhlIHNhbXBsZSBub25jZQ==");
    match handshake.check_response(&resp, OFFERED) {
        Ok(protocol) => {
            assert_eq!(resp.status, 101);
            assert_eq!(resp.header_count("sec-websocket-accept"), 1);
            assert_eq!(resp.header("sec-websocket-accept"), Some(handshake.expected_accept()));
            assert_eq!(resp.header_count("sec-websocket-extensions"), 0);
            match protocol {
                Some(p) => assert!(OFFERED.contains(&p), "accepted unoffered {p:?}"),
                None => assert_eq!(resp.header_count("sec-websocket-protocol"), 0),
            }
        }
        Err(ResponseError::UnexpectedStatus(status)) => {
            assert_eq!(status, resp.status);
            assert_ne!(status, 101);
        }
        Err(e) => {
            // Client-side errors are not answered on the wire.
            assert_eq!(e.status(), 0, "{e:?} has an HTTP status");
        }
    }
});
