//! weir's DEFLATE (`weir::proto::deflate`) against zlib level 1 (flate2 on the system's libz) on
//! the data sets of Autobahn|Testsuite's cases 12.* (the files in autobahntestsuite/testdata):
//! each file cut into messages of 16 B to 128 KiB, each message compressed on its own as
//! permessage-deflate sends it with no context takeover (a raw DEFLATE stream ended by a sync
//! flush, the `00 00 FF FF` tail left off, RFC 7692 §7.2.1). Prints, per file and size, the
//! compressed size and the time of each, and the ratios.
//!
//!   cargo run --release -- DIR      (DIR: autobahntestsuite's testdata directory)

use std::time::Instant;

use flate2::{Compress, Compression, FlushCompress};
use weir::proto::deflate::Deflater;

const FILES: [(&str, &str); 5] = [
    ("12.1", "data1.json"),
    ("12.2", "lena512.bmp"),
    ("12.3", "pg2229.txt"),
    ("12.4", "data1.html"),
    ("12.5", "10.1.1.105.5439.pdf"),
];
const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 131072];

/// Compresses every message `rounds` times; returns the bytes of one pass and the seconds of all.
fn run(messages: &[&[u8]], rounds: usize, mut f: impl FnMut(&[u8], &mut Vec<u8>)) -> (usize, f64) {
    let mut out = Vec::with_capacity(256 << 10);
    let mut total = 0;
    let t = Instant::now();
    for r in 0..rounds {
        for m in messages {
            out.clear();
            f(m, &mut out);
            if r == 0 {
                total += out.len();
            }
        }
    }
    (total, t.elapsed().as_secs_f64())
}

fn zlib1(z: &mut Compress, data: &[u8], out: &mut Vec<u8>) {
    z.reset();
    out.reserve(data.len() + data.len() / 1000 + 64);
    let mut input = data;
    loop {
        let before_in = z.total_in();
        let _ = z.compress_vec(input, out, FlushCompress::Sync);
        input = &input[(z.total_in() - before_in) as usize..];
        if input.is_empty() && out.ends_with(&[0, 0, 0xFF, 0xFF]) {
            break;
        }
        out.reserve(64 << 10);
    }
    out.truncate(out.len() - 4);
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: deflate-bench TESTDATA_DIR");
    println!("| case | file | message | zlib-1 bytes | weir bytes | size weir/zlib | zlib-1 MB/s | weir MB/s | speed weir/zlib |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let (mut all_z, mut all_w, mut t_z, mut t_w) = (0usize, 0usize, 0f64, 0f64);
    for (case, file) in FILES {
        let data = std::fs::read(format!("{dir}/{file}")).expect("a test data file");
        for size in SIZES {
            let messages: Vec<&[u8]> = data.chunks(size).collect();
            // About 8 MB compressed per measurement.
            let rounds = (8 << 20) / data.len() + 1;
            let mut z = Compress::new(Compression::new(1), false);
            let mut d = Deflater::new(15, false);
            let (zb, zt) = run(&messages, rounds, |m, out| zlib1(&mut z, m, out));
            let (wb, wt) = run(&messages, rounds, |m, out| d.compress_message(m, out));
            // weir's output inflates to the data (checked once, by zlib's inflater).
            for m in messages.iter().take(50) {
                let mut out = Vec::new();
                d.compress_message(m, &mut out);
                out.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
                let mut back = Vec::with_capacity(m.len() + 64);
                let mut inf = flate2::Decompress::new(false);
                inf.decompress_vec(&out, &mut back, flate2::FlushDecompress::Sync).unwrap();
                assert_eq!(&back[..], *m, "{file} {size}");
            }
            let mb = (data.len() * rounds) as f64 / 1e6;
            println!(
                "| {case} | {file} | {size} | {zb} | {wb} | {:.3} | {:.0} | {:.0} | {:.2} |",
                wb as f64 / zb as f64,
                mb / zt,
                mb / wt,
                zt / wt
            );
            all_z += zb;
            all_w += wb;
            t_z += zt;
            t_w += wt;
        }
    }
    println!(
        "\nall: size weir/zlib-1 {:.3}, speed weir/zlib-1 {:.2} (same total input)",
        all_w as f64 / all_z as f64,
        t_z / t_w
    );
}
