//! The differential (STYLE.md pattern 9): one stream fed whole, byte by byte, and in reads of
//! fuzzer-chosen sizes must give the same transcript, state, deadline and timer output.
//!
//! Input layout (parsed by hand, no `arbitrary`):
//! - byte 0: bit 0 is the role (0 server, 1 client); bits 1-4 are the number of read sizes
//!   minus one (1 to 16);
//! - then one byte per read size: `0x00-0x7F` is that many bytes (0 counts as 1),
//!   `0x80-0xFF` is `((b & 0x7F) + 1) * 64` bytes (64 to 8192); the sizes are cycled;
//! - the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::Role;

fuzz_target!(|data: &[u8]| {
    let Some((role, reads, stream)) = split(data) else {
        return;
    };
    let whole = weir_fuzz::conn::run(role, stream, &[]);
    let bytewise = weir_fuzz::conn::run(role, stream, &[1]);
    assert_eq!(whole, bytewise, "whole vs byte-by-byte");
    let chunked = weir_fuzz::conn::run(role, stream, &reads);
    assert_eq!(whole, chunked, "whole vs reads of {reads:?}");
});

fn split(data: &[u8]) -> Option<(Role, Vec<usize>, &[u8])> {
    let (&first, rest) = data.split_first()?;
    let role = if first & 1 == 0 { Role::Server } else { Role::Client };
    let count = usize::from((first >> 1) & 0x0F) + 1;
    let sizes = rest.get(..count)?;
    let reads = sizes
        .iter()
        .map(|&b| if b & 0x80 == 0 { usize::from(b) } else { (usize::from(b & 0x7F) + 1) * 64 })
        .collect();
    Some((role, reads, rest.get(count..)?))
}
