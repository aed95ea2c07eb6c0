//! Protocol violations over a raw socket: each gets a close frame with its code (RFC 6455
//! §7.4.1), and then the server closes the TCP connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::io::Write;
use std::time::Duration;

use weir::server::Config;

/// Opens a WebSocket, sends `bytes`, and asserts the close code and the EOF after it.
fn assert_fails(config: Config, bytes: &[u8], code: u16) {
    let addr = common::start(config);
    let mut s = common::upgraded(addr);
    s.write_all(bytes).unwrap();
    let f = common::read_frame(&mut s).expect("EOF before the close frame");
    assert_eq!(f.b0, 0x88, "expected a final close frame first, got {f:?}");
    assert_eq!(
        f.close_code(),
        code,
        "close reason: {:?}",
        String::from_utf8_lossy(&f.payload[2..])
    );
    // RFC 6455 §7.1.7: a failed connection is closed; the server closes TCP first (§7.1.1).
    common::expect_eof(&mut s, Duration::from_secs(5));
}

/// `len` bytes of text with one 0xFF at `at`.
fn bad_at(len: usize, at: usize) -> Vec<u8> {
    let mut v = vec![b'a'; len];
    v[at] = 0xFF;
    v
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// One `#[test]` per violation, with the default config unless one is given.
macro_rules! violations {
    ($($name:ident: $bytes:expr => $code:expr $(, $config:expr)?;)*) => {$(
        #[test]
        fn $name() {
            #[allow(unused_mut, unused_assignments)]
            let mut config = common::config();
            $(config = $config;)?
            assert_fails(config, &$bytes, $code);
        }
    )*};
}

fn small_limit() -> Config {
    let mut c = common::config();
    c.ws.max_message_size = 1024;
    c.ws.max_frame_size = 1024;
    c
}

fn small_message_limit() -> Config {
    let mut c = common::config();
    c.ws.max_message_size = 1024;
    c
}

use common::{close_frame, frame};

violations! {
    rsv1_set_is_1002: frame(0xC1, b"x") => 1002;
    rsv2_set_is_1002: frame(0xA1, b"x") => 1002;
    rsv3_set_is_1002: frame(0x92, b"x") => 1002;
    reserved_data_opcode_is_1002: frame(0x83, b"x") => 1002;
    reserved_control_opcode_is_1002: frame(0x8B, b"") => 1002;
    unmasked_client_frame_is_1002: [0x81u8, 0x02, b'h', b'i'] => 1002;
    control_frame_over_125_is_1002: frame(0x89, &[7u8; 126]) => 1002;
    fragmented_ping_is_1002: frame(0x09, b"x") => 1002;
    fragmented_close_is_1002: frame(0x08, &1000u16.to_be_bytes()) => 1002;
    continuation_with_nothing_open_is_1002: frame(0x80, b"x") => 1002;
    new_message_inside_fragmented_one_is_1002:
        cat(&[frame(0x01, b"a"), frame(0x81, b"b")]) => 1002;
    length_with_top_bit_set_is_1002:
        [0x82u8, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4] => 1002;
    invalid_utf8_is_1007: frame(0x81, b"ok \xFF") => 1007;
    overlong_utf8_is_1007: frame(0x81, b"\xC0\xAF") => 1007;
    invalid_utf8_across_fragments_is_1007:
        cat(&[frame(0x01, b"\xE2\x82"), frame(0x80, b"(")]) => 1007;
    utf8_cut_short_at_the_end_is_1007: frame(0x81, b"ab\xE2\x82") => 1007;
    // Past the first read: this byte reaches weir through a read straight into the message.
    invalid_utf8_deep_in_a_large_frame_is_1007: frame(0x81, &bad_at(1 << 20, 900_000)) => 1007;
    invalid_utf8_in_close_reason_is_1007: frame(0x88, b"\x03\xE8\xFF") => 1007;
    close_code_999_is_1002: close_frame(999, "") => 1002;
    close_code_1004_is_1002: close_frame(1004, "") => 1002;
    close_code_1005_is_1002: close_frame(1005, "") => 1002;
    close_code_1006_is_1002: close_frame(1006, "") => 1002;
    close_code_1015_is_1002: close_frame(1015, "") => 1002;
    close_code_2999_is_1002: close_frame(2999, "") => 1002;
    close_code_5000_is_1002: close_frame(5000, "") => 1002;
    one_byte_close_payload_is_1002: frame(0x88, &[3]) => 1002;
    message_over_max_message_size_is_1009: frame(0x82, &[0u8; 1025]) => 1009, small_limit();
    fragments_over_max_message_size_are_1009:
        cat(&[frame(0x02, &[0u8; 600]), frame(0x80, &[0u8; 600])]) => 1009,
        small_message_limit();
}

#[test]
fn message_at_max_message_size_is_accepted() {
    let addr = common::start(small_limit());
    let mut s = common::upgraded(addr);
    s.write_all(&frame(0x82, &[9u8; 1024])).unwrap();
    let f = common::read_frame(&mut s).unwrap();
    assert_eq!((f.b0, f.payload), (0x82, vec![9u8; 1024]));
}
