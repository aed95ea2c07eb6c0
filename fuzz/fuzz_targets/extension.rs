//! permessage-deflate negotiation (`proto::extension`): any header value is parsed without a
//! panic; every offer a server accepts is answered with a value that the offer's own parser
//! reads back, and that a client whose offer asked for nothing more takes as the same agreement.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::extension::{self, Policy};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else { return };
    let server = Policy {
        max_window_bits: 8 + (pick & 0x07),
        no_context_takeover: pick & 0x08 != 0,
        peer_no_context_takeover: pick & 0x10 != 0,
    };
    let mut offers = Vec::new();
    let _ = extension::parse_offers([value], |o| offers.push(o));
    for offer in offers.into_iter().flatten() {
        let Some(agreed) = server.accept(&offer) else { continue };
        assert!((8..=15).contains(&agreed.server_max_window_bits));
        assert!((8..=15).contains(&agreed.client_max_window_bits));
        if let Some(n) = offer.server_max_window_bits {
            assert!(agreed.server_max_window_bits <= n, "within the client's limit");
        }
        let mut answer = String::new();
        agreed.write(&offer, &mut answer);
        let mut again = Vec::new();
        extension::parse_offers([answer.as_bytes()], |o| again.push(o)).expect("answer parses");
        assert_eq!(again.len(), 1);
        assert!(again[0].is_ok(), "{answer}");
        // A client that made this offer (its window given or not) takes the answer.
        let client = Policy {
            max_window_bits: offer.client_max_window_bits.flatten().unwrap_or(15),
            no_context_takeover: offer.client_no_context_takeover,
            peer_no_context_takeover: offer.server_no_context_takeover,
        };
        let back = extension::check_response([answer.as_bytes()], &client);
        assert_eq!(back, Ok(Some(agreed)), "{answer}");
    }
});
