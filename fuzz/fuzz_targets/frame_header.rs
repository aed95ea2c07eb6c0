//! `FrameHeader::decode` on arbitrary bytes: round trip through `encode`, agreement with
//! `len_from_prefix`, and every prefix of the input gives a consistent answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use weir::proto::{ProtocolError, Status};

fuzz_target!(|data: &[u8]| {
    let whole = FrameHeader::decode(data);
    match whole {
        Ok(Status::Complete((h, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n));
            assert!(n <= data.len());
            assert_eq!(n, FrameHeader::len_from_prefix(data[1]), "header length");
            assert!(h.rsv <= 0b111);
            assert!(h.payload_len >> 63 == 0, "§5.2: the top bit of a length is 0");
            if h.opcode.is_control() {
                assert!(h.fin, "§5.5: control frames are not fragmented");
                assert!(h.payload_len <= MAX_CONTROL_PAYLOAD as u64);
            }
            assert_eq!(h.mask.is_some(), data[1] & 0x80 != 0);

            let mut out = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut out);
            assert_eq!(m, FrameHeader::len_from_prefix(out[1]), "encoded length");
            // encode uses the shortest length form; the input may have used a longer one.
            assert!(m <= n, "encoded {m} bytes from a {n}-byte header");
            assert_eq!(
                FrameHeader::decode(&out[..m]),
                Ok(Status::Complete((h, m))),
                "decode(encode(h)) != h"
            );
            if m == n {
                // Same form: the same bytes.
                assert_eq!(&out[..m], &data[..n]);
            }
            // The checks that depend on the role and the limit never panic.
            let _ = h.check(true, u64::MAX);
            let _ = h.check(false, 0);
        }
        Ok(Status::Partial) => {
            assert!(data.len() < MAX_HEADER_LEN);
            if let [_, b1, ..] = *data {
                assert!(data.len() < FrameHeader::len_from_prefix(b1));
            }
        }
        Err(e) => assert!(data.len() >= 2, "{e:?} from fewer than two bytes"),
    }

    // Every prefix: Partial while shorter than the header, or the same error; never another
    // header or another error. Prefixes at least as long as the header give the same answer.
    let end = data.len().min(MAX_HEADER_LEN + 1);
    for cut in 0..end {
        let part = FrameHeader::decode(&data[..cut]);
        match (&whole, &part) {
            (_, Ok(Status::Partial)) => {
                if let Ok(Status::Complete((_, n))) = whole {
                    assert!(cut < n, "prefix of {cut} Partial, header is {n}");
                }
            }
            (Ok(Status::Complete((_, n))), _) if cut >= *n => assert_eq!(part, whole),
            (Err(e), Err(p)) => assert_eq!(p, e, "prefix {cut}"),
            _ => panic!("prefix {cut}: {part:?}, whole: {whole:?}"),
        }
    }
    // An error is only one of the header-time rules.
    if let Err(e) = whole {
        assert!(matches!(
            e,
            ProtocolError::ReservedOpcode
                | ProtocolError::ControlFrameTooLong
                | ProtocolError::FragmentedControlFrame
                | ProtocolError::LengthTopBitSet
        ));
    }
});
