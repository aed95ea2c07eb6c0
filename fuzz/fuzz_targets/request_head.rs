//! An upgrade request head, as a server reads it: found by `HeadReader` (whole, byte by byte,
//! in chunks), parsed, classified, and answered with a response that must itself parse.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Status;
use weir::proto::error::HandshakeError;
use weir::proto::handshake::{self, Classified, accept_key};
use weir::proto::http::{self, Header, Limits};
use weir_fuzz::head::find_head;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let len = match find_head(data, &limits) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return,
        Err(e) => return check_error_response(e),
    };
    let mut slots = [Header::default(); 64];
    let req = http::parse_request(&data[..len], &mut slots, &limits);
    // Parsing stops at the blank line, so the bytes after the head change nothing.
    let mut slots_all = [Header::default(); 64];
    let req_all = http::parse_request(data, &mut slots_all, &limits);
    assert_eq!(req, req_all, "bytes after the head changed the parse");
    let req = match req {
        Ok(req) => req,
        Err(e) => return check_error_response(e),
    };
    assert!(req.headers.len() <= limits.max_headers);
    assert!(req.target.len() <= limits.max_target_len);
    // No fragment gets through (RFC 9112 §3.2), nor a second Origin (RFC 6454 §7.3).
    assert!(!req.target.contains('#'), "{:?}", req.target);
    assert!(req.header_count("origin") <= 1);
    // The path is a part of the target (`/` for an absolute form without one), and it has
    // no `?`; the Host rules answer without panicking, with a value from the head.
    let path = req.path();
    assert!(path == "/" || req.target.contains(path), "{path:?} from {:?}", req.target);
    assert!(!path.contains('?'));
    match http::host(&req) {
        Ok(Some(h)) => assert!(req.headers.iter().any(|f| f.value == h)),
        Ok(None) => assert_eq!(req.minor_version, 0),
        Err(e) => check_error_response(e),
    }
    match handshake::classify(&req) {
        Ok(Classified::Plain) => {}
        Ok(Classified::Upgrade(up)) => {
            assert_eq!(up.key.len(), 24);
            assert_eq!(up.target, req.target);
            assert_eq!(up.path, req.path());
            let protocol = up.select_protocol(&["chat"]);
            assert!(protocol.is_none() || up.protocols().any(|p| p == "chat"));
            // Echo the value of the client's first header back under a name of our own: the
            // writer must keep the head whole whatever the value holds.
            let extra: Vec<(&str, &[u8])> =
                up.headers.iter().take(1).map(|h| ("X-Echo", h.value)).collect();
            let mut out = vec![0u8; 256];
            let n = match handshake::write_accept(&mut out, up.key, protocol, &extra) {
                Ok(n) => n,
                Err(too_small) => {
                    out.resize(too_small.needed, 0);
                    let n = handshake::write_accept(&mut out, up.key, protocol, &extra);
                    assert_eq!(n, Ok(too_small.needed), "the size write_accept asked for");
                    too_small.needed
                }
            };
            let mut slots = [Header::default(); 64];
            let resp = parse_written(&out[..n], &mut slots);
            assert_eq!(resp.status, 101);
            assert_eq!(resp.header("sec-websocket-accept"), Some(&accept_key(up.key)[..]));
            assert_eq!(resp.header("sec-websocket-protocol"), protocol.map(str::as_bytes));
        }
        Err(e) => check_error_response(e),
    }
});

/// The server answers every request error: the answer must be a well-formed response with the
/// error's status.
fn check_error_response(e: impl Into<HandshakeError>) {
    let e = e.into();
    let status = e.status();
    assert!((400..600).contains(&status), "{e:?} answered with {status}");
    let mut out = [0u8; 1024];
    let n = match handshake::write_error(&mut out, e) {
        Ok(n) => n,
        Err(too_small) => panic!("the answer to {e:?} needs {} bytes", too_small.needed),
    };
    let mut slots = [Header::default(); 64];
    let resp = parse_written(&out[..n], &mut slots);
    assert_eq!(resp.status, status);
}

/// Reads a head this crate wrote, which must be whole and well formed.
fn parse_written<'a, 'h>(bytes: &'a [u8], slots: &'h mut [Header<'a>]) -> http::Response<'a, 'h> {
    // Room for a client's value echoed back whole.
    let limits = Limits { max_head_len: 1 << 16, ..Limits::default() };
    let mut reader = http::HeadReader::new(&limits);
    let len = match reader.feed(bytes) {
        Ok(Status::Complete(len)) => len,
        other => {
            panic!("written head not found: {other:?} in {:?}", String::from_utf8_lossy(bytes))
        }
    };
    match http::parse_response(&bytes[..len], slots, &limits) {
        Ok(resp) => resp,
        Err(e) => {
            panic!("written head does not parse: {e:?} in {:?}", String::from_utf8_lossy(bytes))
        }
    }
}
