//! Compresses the console's files (`src/http/console/`) at build time with weir's own DEFLATE
//! (`src/proto/deflate.rs`, compiled into this script as it is), so the binary carries them as gzip
//! members (RFC 1952): about a third of their size (18.7 KB of 54.4 KB). `src/http/mod.rs` embeds them from `OUT_DIR`,
//! sends them as they are to a client that accepts gzip and inflates them for one that does not.

extern crate alloc;

#[allow(dead_code)]
#[path = "src/proto/deflate.rs"]
mod deflate;

use std::path::Path;
use std::{env, fs};

const FILES: [&str; 3] = ["index.html", "console.css", "console.js"];

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/proto/deflate.rs");
    // The sans-IO core alone (no `server` feature) serves no console.
    let (Some(_), Some(out)) = (env::var_os("CARGO_FEATURE_SERVER"), env::var_os("OUT_DIR")) else {
        return Ok(());
    };
    for name in FILES {
        let src = format!("src/http/console/{name}");
        println!("cargo::rerun-if-changed={src}");
        let data = fs::read(&src)?;
        fs::write(Path::new(&out).join(format!("{name}.gz")), gzip(&data))?;
    }
    Ok(())
}

/// `data` as one gzip member: header, DEFLATE stream, CRC-32, size (RFC 1952 §2.3).
fn gzip(data: &[u8]) -> Vec<u8> {
    // ID1 ID2, CM 8 (deflate), no flags, no mtime, XFL 0, OS 255 (unknown).
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    deflate::Deflater::new(15, false).compress_message(data, &mut gz);
    // The message ends with a sync flush whose empty stored block's LEN/NLEN were left off
    // (RFC 7692 §7.2.1): put them back, then a final empty block with the fixed codes (BFINAL 1,
    // BTYPE 01, end-of-block 0000000; RFC 1951 §3.2.3, §3.2.6) so that the stream is complete.
    gz.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0x03, 0x00]);
    gz.extend_from_slice(&crc32(data).to_le_bytes());
    gz.extend_from_slice(&(data.len() as u32).to_le_bytes());
    gz
}

/// CRC-32 of ISO 3309, bit by bit (RFC 1952 §8): a few kilobytes once per build.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
