//! `proto::deflate` round trip: messages compressed by weir inflate to themselves with weir's
//! inflater and with miniz_oxide's, for every window size, with and without context takeover.
//! The first byte picks the window bits and the takeover; the rest is split into messages at
//! 0xFF bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::deflate::Deflater;
use weir::proto::inflate::Inflater;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let bits = 8 + (pick & 0x07);
    let takeover = pick & 0x08 != 0;
    let mut d = Deflater::new(bits, takeover);
    let mut z = Inflater::new(bits);
    let mut out = vec![0u8; rest.len() + 1];
    for message in rest.split(|&b| b == 0xFF) {
        // Repeat the message a few times so the window is exercised.
        let message = message.repeat(usize::from(pick >> 4) + 1);
        let mut packed = Vec::new();
        d.compress_message(&message, &mut packed);
        assert!(
            packed.len() <= message.len() + 5 * (message.len() / 65_535 + 1) + 8,
            "bounded expansion"
        );
        packed.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        if !takeover {
            z.reset();
            let mut full = packed.clone();
            full.extend_from_slice(&[0x03, 0x00]);
            let r =
                miniz_oxide::inflate::decompress_to_vec(&full).expect("the reference inflates it");
            assert_eq!(r, message, "reference round trip");
        }
        if out.len() < message.len() + 1 {
            out.resize(message.len() + 1, 0);
        }
        let p = z.inflate(&packed, &mut out).expect("weir inflates it");
        assert_eq!(p.consumed, packed.len());
        assert_eq!(&out[..p.produced], &message[..], "weir round trip");
    }
});
