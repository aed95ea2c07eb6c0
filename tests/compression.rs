//! permessage-deflate (RFC 7692) on the binary, with Node `ws` as the client (tests/node):
//! negotiation per mode, and text, binary, large, fragmented and empty messages echoed through
//! it; and the raw rules a client must not break.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::node::{Node, node_ready};
use common::{Binary, read_frame, read_head};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Node's client against weir started with `args`: the extension answer it got.
fn node_echo(args: &[&str], options: &str) -> String {
    let weir = Binary::start(args);
    let url = format!("ws://{}/echo", weir.addr);
    let mut node = Node::spawn("pmd-client.js", &[&url, options]);
    let ext = node.expect_line("EXT ", TIMEOUT);
    assert_eq!(node.expect_line("CLOSE ", TIMEOUT), "4000 done here");
    assert!(node.wait_exit(TIMEOUT).success());
    ext
}

#[test]
fn node_ws_round_trips_through_each_mode() {
    if !node_ready() {
        return;
    }
    let dedicated = node_echo(&["--compression", "dedicated", "--compression-min-size", "0"], "{}");
    assert_eq!(dedicated, "permessage-deflate");
    let small = node_echo(&["--compression", "dedicated:9"], "{}");
    assert_eq!(small, "permessage-deflate; server_max_window_bits=9");
    let shared = node_echo(&["--compression", "shared"], "{}");
    assert_eq!(
        shared,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    // The client asks for a small server window: honoured in the shared mode too.
    let asked = node_echo(&["--compression", "shared"], r#"{"serverMaxWindowBits":10}"#);
    assert!(asked.contains("server_max_window_bits=10"), "{asked}");
    // Off: declined, and the messages still go through.
    assert_eq!(node_echo(&[], "{}"), "");
}

/// A raw client that offers the extension on /echo and reads the 101.
fn raw_with_extension(weir: &Binary, offer: &str) -> (std::net::TcpStream, String) {
    let mut s = common::raw(weir.addr);
    let req = format!(
        "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s);
    (s, head)
}

#[test]
fn bad_offers_are_declined_and_broken_frames_fail_the_connection() {
    let weir = Binary::start(&["--compression", "dedicated"]);
    // A bad parameter declines that offer; the next one is taken (RFC 7692 §5, §7.1).
    let (_, head) = raw_with_extension(
        &weir,
        "permessage-deflate; server_max_window_bits=7, permessage-deflate",
    );
    assert!(head.contains("Sec-WebSocket-Extensions: permessage-deflate\r\n"), "{head}");
    let (_, head) = raw_with_extension(&weir, "permessage-deflate; x=1");
    assert!(head.starts_with("HTTP/1.1 101") && !head.contains("Extensions"), "{head}");

    // RSV1 on a continuation frame: 1002.
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    s.write_all(&common::frame(0x01, b"a")).unwrap();
    s.write_all(&common::frame(0x80 | 0x40, b"b")).unwrap();
    assert_eq!(common::expect_close(&mut s), 1002);

    // Data that does not inflate: 1007.
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    s.write_all(&common::frame(0x80 | 0x40 | 0x2, &[0xFF; 8])).unwrap();
    assert_eq!(common::expect_close(&mut s), 1007);

    // A bomb (8 MiB of zeros in about 8 KiB) past --max-message-size (1 MiB here): 1009.
    let weir = Binary::start(&["--compression", "dedicated", "--max-message-size", "1MiB"]);
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 8 << 20], 6);
    s.write_all(&common::frame(0x80 | 0x40 | 0x2, &bomb)).unwrap();
    assert_eq!(common::expect_close(&mut s), 1009);
    // A compressed message from the server carries RSV1 and inflates to what was sent.
    let weir = Binary::start(&["--compression", "dedicated", "--compression-min-size", "0"]);
    let (mut s, _) = raw_with_extension(&weir, "permessage-deflate");
    let packed = miniz_oxide::deflate::compress_to_vec(b"hello hello hello", 6);
    s.write_all(&common::frame(0x80 | 0x40 | 0x1, &packed)).unwrap();
    let f = read_frame(&mut s).expect("an echo");
    assert_eq!(f.opcode(), 1);
    assert!(f.b0 & 0x40 != 0, "RSV1 set on a compressed message");
    let mut input = f.payload.clone();
    // The tail left off (RFC 7692 §7.2.2), then an empty final block to end the stream.
    input.extend_from_slice(&[0, 0, 0xFF, 0xFF, 0x03, 0x00]);
    let data = miniz_oxide::inflate::decompress_to_vec(&input).unwrap();
    assert_eq!(data, b"hello hello hello");
}
