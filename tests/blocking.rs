//! `examples/blocking.rs`, the core driven over blocking `std::net` sockets with no runtime,
//! against the real `weir` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../examples/blocking.rs"]
mod blocking;

use blocking::{Exchange, echo_once};

#[test]
fn the_blocking_example_is_echoed_and_closes_with_its_reason() {
    let weir = common::Binary::start(&[]);
    let addr = weir.addr.to_string();
    let text = "héllo from std::net ".repeat(200); // 4 KiB: more than one read on the way back
    let got = echo_once(&addr, "/echo", &text, "done here").unwrap();
    // weir echoes the close frame's code and reason (RFC 6455 §5.5.1).
    assert_eq!(got, Exchange { echo: text, close: Some((1000, "done here".into())) });
    // A path weir does not serve is refused in the handshake, with the status it answered.
    let refused = echo_once(&addr, "/nowhere", "x", "").unwrap_err();
    assert_eq!(refused.to_string(), "the server did not answer 101 (404)", "{refused:?}");
}
