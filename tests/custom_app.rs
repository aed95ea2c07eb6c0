//! `examples/custom_app.rs`, the embedding example, served and talked to: its WebSocket
//! endpoint echoes in upper case and its HTTP answer counts what it echoed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

#[path = "../examples/custom_app.rs"]
#[allow(dead_code)]
mod custom_app;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use common::{frame, raw, read_frame, read_head, request, status};

fn start() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        custom_app::serve(common::config(), |addr| tx.send(addr).unwrap()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

#[test]
fn the_example_app_echoes_in_upper_case_and_counts() {
    let addr = start();
    let mut s = raw(addr);
    let upgrade = common::UPGRADE.replacen("GET /echo ", "GET /upper ", 1);
    s.write_all(upgrade.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for text in ["hello", "weir ünïcode"] {
        s.write_all(&frame(0x81, text.as_bytes())).unwrap();
        let echo = read_frame(&mut s).expect("the echo");
        assert_eq!((echo.opcode(), echo.payload), (1, text.to_ascii_uppercase().into_bytes()));
    }
    let (head, body) =
        request(addr, b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!((status(&head), body.as_str()), (200, "2\n"), "{head}");
    let (head, _) = request(addr, b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status(&head), 404);
}
