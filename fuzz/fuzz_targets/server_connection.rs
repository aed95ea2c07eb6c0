//! A server connection fed arbitrary bytes (as if from a client) in one read, then left to its
//! timers: no panic, a coherent transcript, and only valid unmasked frames sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Role;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::conn::run(Role::Server, data, &[]);
});
