//! `proto::tunnel::codec::decode` on arbitrary bytes: an answer, never a panic; a decoded
//! message encodes back to exactly the input (the format has one encoding per message); and a
//! message cut short is refused or decodes to a message of the same type and stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::tunnel::codec::{self, HEADER_LEN, MAX_PAYLOAD, MAX_WINDOW, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = codec::decode(data) else { return };
    assert!(data.len() <= HEADER_LEN + MAX_PAYLOAD);
    assert_ne!(m.stream(), 0);
    assert!(m.credit() <= MAX_PAYLOAD);
    match m {
        Message::Open { window, target, .. } => {
            assert!(window <= MAX_WINDOW);
            assert!(codec::valid_target(target.as_bytes()));
        }
        Message::OpenOk { window, .. } => assert!(window <= MAX_WINDOW),
        Message::Window { increment, .. } => assert!((1..=MAX_WINDOW).contains(&increment)),
        Message::Relay { opcode, more, data, .. } if opcode.is_control() => {
            assert!(!more && data.len() <= 125, "RFC 6455 §5.5");
        }
        _ => {}
    }
    let mut out = vec![0u8; data.len()];
    assert_eq!(codec::encode(&m, &mut out), Ok(data.len()));
    assert_eq!(out, data, "{m:?}");
    assert!(codec::encode(&m, &mut out[..data.len() - 1]).is_err());
    for cut in 0..data.len() {
        if let Ok(short) = codec::decode(&data[..cut]) {
            assert_eq!(short.stream(), m.stream());
            assert_eq!(core::mem::discriminant(&short), core::mem::discriminant(&m));
        }
    }
});
