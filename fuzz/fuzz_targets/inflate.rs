//! `proto::inflate` against miniz_oxide, the reference inflater.
//!
//! The first byte picks a split size and a compression level. Two checks:
//! - round trip: the rest, compressed by miniz_oxide, inflates to itself, whole and in splits;
//! - differential: the rest, taken as a compressed stream, inflates to the same bytes as
//!   miniz_oxide's, or both refuse it; whole input and input in splits give the same result,
//!   and so does an output buffer of a few bytes. Where weir refuses a stream miniz_oxide
//!   inflates, zlib must refuse it too (zlib refuses incomplete codes; miniz_oxide does not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::proto::inflate::{InflateError, Inflater};

/// Inflates `input` in calls of `chunk` input bytes and `room` output bytes, to the end of the
/// stream, the end of the input, or an error.
fn inflate(input: &[u8], chunk: usize, room: usize) -> (Vec<u8>, Result<bool, InflateError>) {
    let mut z = Inflater::new(15);
    let mut out = Vec::new();
    let mut buf = vec![0u8; room];
    let mut at = 0;
    loop {
        let end = (at + chunk).min(input.len());
        match z.inflate(&input[at..end], &mut buf) {
            Err(e) => return (out, Err(e)),
            Ok(p) => {
                out.extend_from_slice(&buf[..p.produced]);
                at += p.consumed;
                assert!(out.len() <= 64 << 20, "bounded by the test's input");
                if p.done {
                    return (out, Ok(true));
                }
                if p.produced == 0 && at == input.len() {
                    return (out, Ok(false));
                }
            }
        }
    }
}

/// zlib's raw inflate of the whole input (at most 64 MiB out): `None` if it refuses the stream
/// or it does not end.
fn zlib(input: &[u8]) -> Option<Vec<u8>> {
    let mut z = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        let at = usize::try_from(z.total_in()).ok()?;
        match z.decompress_vec(&input[at..], &mut out, flate2::FlushDecompress::Finish) {
            Ok(flate2::Status::StreamEnd) => return Some(out),
            Ok(_) if out.len() == out.capacity() && out.len() < 64 << 20 => out.reserve(1 << 16),
            _ => return None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let chunk = usize::from(pick & 0x0F) + 1;
    let level = pick >> 4 & 0x0F;

    let packed = miniz_oxide::deflate::compress_to_vec(rest, level.min(10));
    for (c, room) in
        [(packed.len().max(1), 1 << 16), (chunk, 1 << 16), (packed.len().max(1), chunk)]
    {
        let (out, end) = inflate(&packed, c, room);
        assert_eq!(end, Ok(true), "round trip ends");
        assert_eq!(out, rest, "round trip");
    }

    let whole = inflate(rest, rest.len().max(1), 1 << 16);
    let split = inflate(rest, chunk, 1 << 16);
    let narrow = inflate(rest, rest.len().max(1), chunk);
    // On an error, what the failing call wrote is not reported: compare the errors alone.
    let same = |a: &(Vec<u8>, Result<bool, InflateError>),
                b: &(Vec<u8>, Result<bool, InflateError>)| {
        if a.1.is_err() || b.1.is_err() { a.1 == b.1 } else { a == b }
    };
    assert!(same(&whole, &split), "whole and split: {whole:?} {split:?}");
    assert!(same(&whole, &narrow), "wide and narrow output: {whole:?} {narrow:?}");
    let reference = miniz_oxide::inflate::decompress_to_vec_with_limit(rest, 64 << 20);
    match (&whole.1, reference) {
        (Ok(true), Ok(r)) => assert_eq!(whole.0, r, "same output as the reference"),
        (Ok(true), Err(e)) => panic!("weir ended the stream, miniz_oxide refused it: {e:?}"),
        (Err(_), Ok(r)) => {
            // weir refuses what zlib refuses (incomplete codes, which miniz_oxide accepts).
            if let Some(z) = zlib(rest) {
                panic!(
                    "weir refused ({:?}) what miniz_oxide ({}) and zlib ({}) inflated",
                    whole.1,
                    r.len(),
                    z.len()
                )
            }
        }
        (Ok(false), Ok(r)) => {
            panic!("weir wants more input where miniz_oxide ended ({} bytes)", r.len())
        }
        // A stream cut short, or refused by both.
        _ => {}
    }
});
