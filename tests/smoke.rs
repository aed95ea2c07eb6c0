//! Smoke tests: the echo server against tungstenite and raw sockets.
#![allow(clippy::unwrap_used)]
mod common;

use std::io::Write;
use tungstenite::Message;

#[test]
fn echo_with_tungstenite() {
    let addr = common::start(common::config());
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/echo")).unwrap();
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![7u8; 100_000])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 100_000]));
    ws.close(None).unwrap();
}

#[test]
fn healthz_and_frames_with_the_upgrade() {
    let addr = common::start(common::config());
    let mut s = common::raw(addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let all = String::from_utf8(common::read_to_end(&mut s)).unwrap();
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.ends_with("ok\n"), "{all}");
    let mut s = common::raw(addr);
    let mut req = common::UPGRADE.as_bytes().to_vec();
    req.extend(common::frame(0x81, b"same packet"));
    s.write_all(&req).unwrap();
    let head = common::read_head(&mut s);
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    let mut reply = [0u8; 13];
    std::io::Read::read_exact(&mut s, &mut reply).unwrap();
    assert_eq!(&reply[..2], &[0x81, 11]);
    assert_eq!(&reply[2..], b"same packet");
}
