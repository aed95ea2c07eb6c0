//! DEFLATE compression (RFC 1951) of whole messages, for permessage-deflate (RFC 7692).
//!
//! A [`Deflater`] compresses one message at a time into a caller's `Vec`: greedy LZ77 matching
//! with one hash probe per position (the speed class of zlib's level 1), then each block coded
//! with whichever of dynamic codes, the fixed codes, or stored bytes is smallest (§3.2.3). A
//! message ends with a sync flush whose `00 00 FF FF` tail is left off, as RFC 7692 §7.2.1 asks.
//!
//! With context takeover the window (the last `2^window_bits` bytes sent) carries over to the
//! next message; without it, every message stands alone and the compressor keeps nothing between
//! messages (so one compressor can serve every connection).

use alloc::vec;
use alloc::vec::Vec;

/// The shortest and longest match (§3.2.5).
const MIN_MATCH: usize = 4;
const MAX_MATCH: usize = 258;
/// Symbols gathered before a block is written.
const BLOCK_SYMBOLS: usize = 16 * 1024;
/// The hash table: positions by the hash of the four bytes there.
const HASH_BITS: u32 = 14;

/// A compressor of whole messages.
#[derive(Debug, Clone)]
pub struct Deflater {
    window_bits: u8,
    takeover: bool,
    /// The last bytes compressed (at most the window), for the next message's matches.
    history: Vec<u8>,
    /// Message bytes after the history, while a message is compressed (kept for its capacity).
    buf: Vec<u8>,
    /// `base + position + 1` in `buf` of the last four bytes with each hash; a value not above
    /// `base` is from an earlier message (or none), so the table need not be cleared for each
    /// message (64 KiB, where a message is often 1 KiB).
    head: Vec<u32>,
    /// What `head`'s values of this message start above.
    base: u32,
    /// Literal (< 256), end-of-block (256) or length code and extra, and distance, per symbol.
    symbols: Vec<(u16, u16)>,
}

impl Deflater {
    /// A compressor whose matches reach back at most `2^window_bits` bytes (8 to 15, clamped;
    /// RFC 7692 §7.1.2). `takeover`: later messages may refer to earlier ones (§7.1.1).
    pub fn new(window_bits: u8, takeover: bool) -> Self {
        Self {
            window_bits: window_bits.clamp(8, 15),
            takeover,
            history: Vec::new(),
            buf: Vec::new(),
            head: Vec::new(),
            base: 0,
            symbols: Vec::new(),
        }
    }

    /// Compresses `data` as one message and appends it to `out`, without the `00 00 FF FF`
    /// tail (RFC 7692 §7.2.1).
    pub fn compress_message(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let window = 1usize << self.window_bits;
        // The bytes matches may reach: what the window kept, then the message.
        self.buf.clear();
        if self.takeover {
            self.buf.extend_from_slice(&self.history);
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(data);
        if self.head.is_empty() {
            self.head = vec![0; 1 << HASH_BITS];
            self.base = 0;
        } else if self.base as usize + self.buf.len() >= u32::MAX as usize {
            self.head.fill(0);
            self.base = 0;
        }
        let base = self.base as usize;
        // The history's positions go into the table first, so the message can match them.
        for i in start.saturating_sub(window)..start {
            if i + MIN_MATCH <= self.buf.len() {
                let h = hash(&self.buf[i..]);
                self.head[h] = (base + i + 1) as u32;
            }
        }
        let mut w = BitWriter { out, bits: 0, have: 0 };
        let mut block_start = start;
        let mut i = start;
        let end = self.buf.len();
        self.symbols.clear();
        while i < end {
            let mut matched = 0;
            let mut dist = 0;
            if i + MIN_MATCH <= end {
                let h = hash(&self.buf[i..]);
                let cand = self.head[h] as usize;
                self.head[h] = (base + i + 1) as u32;
                if cand > base && i - (cand - base - 1) <= window {
                    let c = cand - base - 1;
                    let most = (end - i).min(MAX_MATCH);
                    let n = common_prefix(&self.buf[c..c + most], &self.buf[i..i + most]);
                    if n >= MIN_MATCH {
                        matched = n;
                        dist = i - c;
                    }
                }
            }
            if matched > 0 {
                self.symbols.push((256 + matched as u16, dist as u16));
                // Positions inside a short match go into the table too; a long one is
                // skipped (zlib's level 1 does the same).
                if matched <= 8 {
                    for j in i + 1..(i + matched).min(end.saturating_sub(MIN_MATCH - 1)) {
                        let h = hash(&self.buf[j..]);
                        self.head[h] = (base + j + 1) as u32;
                    }
                }
                i += matched;
            } else {
                self.symbols.push((u16::from(self.buf[i]), 0));
                i += 1;
            }
            if self.symbols.len() >= BLOCK_SYMBOLS {
                write_block(&mut w, &self.symbols, &self.buf[block_start..i]);
                self.symbols.clear();
                block_start = i;
            }
        }
        if !self.symbols.is_empty() {
            write_block(&mut w, &self.symbols, &self.buf[block_start..end]);
            self.symbols.clear();
        }
        // The sync flush: an empty stored block, not final; its LEN and NLEN (00 00 FF FF) are
        // the tail left off.
        w.put(0, 3);
        w.align();
        if self.takeover {
            let keep = self.buf.len().min(window);
            self.history.clear();
            self.history.extend_from_slice(&self.buf[self.buf.len() - keep..]);
        }
        // Every value written is at most `base + end`: stale for the next message.
        self.base = (base + end) as u32;
        self.buf.clear();
    }

    /// As [`compress_message`](Self::compress_message), working in `lender`'s buffers (the
    /// table, the working copy, the symbols) instead of buffers of its own: a runtime with many
    /// compressors that keep their context (a window each) needs only one set of those, which
    /// are as large as the table (64 KiB) and the largest message. `lender` keeps them, and its
    /// own context is untouched.
    pub fn compress_message_using(
        &mut self,
        lender: &mut Deflater,
        data: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.swap_buffers(lender);
        self.compress_message(data, out);
        self.swap_buffers(lender);
    }

    fn swap_buffers(&mut self, other: &mut Deflater) {
        core::mem::swap(&mut self.buf, &mut other.buf);
        core::mem::swap(&mut self.head, &mut other.head);
        core::mem::swap(&mut self.base, &mut other.base);
        core::mem::swap(&mut self.symbols, &mut other.symbols);
    }

    /// Frees the buffers kept for the next message (the table, the working copy); the window of
    /// a compressor with context takeover stays.
    pub fn release(&mut self) {
        self.head = Vec::new();
        self.buf = Vec::new();
        self.symbols = Vec::new();
    }
}

fn hash(b: &[u8]) -> usize {
    let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    while n + 8 <= a.len() {
        let x = u64::from_le_bytes(a[n..n + 8].try_into().unwrap_or([0; 8]))
            ^ u64::from_le_bytes(b[n..n + 8].try_into().unwrap_or([0; 8]));
        if x != 0 {
            return n + (x.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    while n < a.len() && a[n] == b[n] {
        n += 1;
    }
    n
}

/// §3.2.5: the length symbol (257-285), its extra bits and their value, for a length 3-258.
fn length_code(len: u16) -> (usize, u32, u16) {
    const BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const EXTRA: [u32; 29] =
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    let i = BASE.partition_point(|&b| b <= len) - 1;
    (257 + i, EXTRA[i], len - BASE[i])
}

/// §3.2.5: the distance symbol (0-29), its extra bits and their value, for a distance 1-32768.
fn distance_code(dist: u16) -> (usize, u32, u16) {
    let d = u32::from(dist) - 1;
    if d < 4 {
        return (d as usize, 0, 0);
    }
    let top = 31 - d.leading_zeros(); // the highest set bit, at least 2
    let extra = top - 1;
    let code = 2 * top + ((d >> extra) & 1);
    (code as usize, extra, (d & ((1 << extra) - 1)) as u16)
}

/// Writes one block (not final) of `symbols`, which encode `raw`, in the smallest form.
fn write_block(w: &mut BitWriter<'_>, symbols: &[(u16, u16)], raw: &[u8]) {
    let mut lit_freq = [0u32; 286];
    let mut dist_freq = [0u32; 30];
    let mut extra_bits = 0u64;
    for &(s, d) in symbols {
        if s < 256 {
            lit_freq[usize::from(s)] += 1;
        } else {
            let (code, extra, _) = length_code(s - 256);
            lit_freq[code] += 1;
            let (dcode, dextra, _) = distance_code(d);
            dist_freq[dcode] += 1;
            extra_bits += u64::from(extra + dextra);
        }
    }
    lit_freq[256] = 1;

    let mut lit_len = [0u8; 286];
    let mut dist_len = [0u8; 30];
    code_lengths(&lit_freq, 15, &mut lit_len);
    code_lengths(&dist_freq, 15, &mut dist_len);
    let header = DynamicHeader::new(&lit_len, &dist_len);
    let cost = |lens: &[u8], freq: &[u32]| -> u64 {
        lens.iter().zip(freq).map(|(&l, &f)| u64::from(l) * u64::from(f)).sum()
    };
    let dynamic = 3 + header.bits() + cost(&lit_len, &lit_freq) + cost(&dist_len, &dist_freq);
    let (fixed_lit, fixed_dist) = fixed_lengths();
    let fixed = 3 + cost(&fixed_lit, &lit_freq) + cost(&fixed_dist[..30], &dist_freq);
    let dynamic = dynamic + extra_bits;
    let fixed = fixed + extra_bits;
    // Stored: a header, padding to a byte, LEN and NLEN, the bytes; 65,535 at most a block.
    let stored = (raw.len() as u64).div_ceil(65_535).max(1) * (3 + 7 + 32) + 8 * raw.len() as u64;

    if stored <= dynamic.min(fixed) {
        let mut chunks = raw.chunks(65_535).peekable();
        if chunks.peek().is_none() {
            write_stored(w, &[]);
        }
        for c in chunks {
            write_stored(w, c);
        }
        return;
    }
    let (lit_codes, dist_codes);
    if dynamic < fixed {
        w.put(2 << 1, 3); // BFINAL 0, BTYPE 10
        header.write(w);
        lit_codes = canonical(&lit_len);
        dist_codes = canonical(&dist_len);
        write_symbols(w, symbols, (&lit_codes, &lit_len), (&dist_codes, &dist_len));
    } else {
        w.put(1 << 1, 3); // BFINAL 0, BTYPE 01
        lit_codes = canonical(&fixed_lit);
        dist_codes = canonical(&fixed_dist);
        write_symbols(w, symbols, (&lit_codes, &fixed_lit), (&dist_codes, &fixed_dist));
    }
}

fn write_stored(w: &mut BitWriter<'_>, bytes: &[u8]) {
    w.put(0, 3);
    w.align();
    let len = bytes.len() as u16;
    w.out.extend_from_slice(&len.to_le_bytes());
    w.out.extend_from_slice(&(!len).to_le_bytes());
    w.out.extend_from_slice(bytes);
}

fn write_symbols(
    w: &mut BitWriter<'_>,
    symbols: &[(u16, u16)],
    lit: (&[u16], &[u8]),
    dist: (&[u16], &[u8]),
) {
    for &(s, d) in symbols {
        if s < 256 {
            w.put(u32::from(lit.0[usize::from(s)]), u32::from(lit.1[usize::from(s)]));
            continue;
        }
        let (code, extra, value) = length_code(s - 256);
        w.put(u32::from(lit.0[code]), u32::from(lit.1[code]));
        w.put(u32::from(value), extra);
        let (dcode, dextra, dvalue) = distance_code(d);
        w.put(u32::from(dist.0[dcode]), u32::from(dist.1[dcode]));
        w.put(u32::from(dvalue), dextra);
    }
    w.put(u32::from(lit.0[256]), u32::from(lit.1[256]));
}

fn fixed_lengths() -> ([u8; 288], [u8; 32]) {
    let mut lit = [0u8; 288];
    lit[..144].fill(8);
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    lit[280..].fill(8);
    (lit, [5; 32])
}

/// Symbols of the largest alphabet (literal/length, §3.2.5); every table here is on the stack,
/// so a block costs no allocation.
const MAX_SYMBOLS: usize = 288;

/// §3.2.2: the codes for `lengths` (at most [`MAX_SYMBOLS`]), bit-reversed so they can be
/// written least significant bit first.
fn canonical(lengths: &[u8]) -> [u16; MAX_SYMBOLS] {
    let mut count = [0u16; 16];
    for &l in lengths {
        count[usize::from(l)] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    let mut codes = [0u16; MAX_SYMBOLS];
    for (c, &l) in codes.iter_mut().zip(lengths) {
        if l != 0 {
            *c = next[usize::from(l)].reverse_bits() >> (16 - l);
            next[usize::from(l)] += 1;
        }
    }
    codes
}

/// Huffman code lengths for `freq`, none longer than `limit`: at least two codes, so that the
/// code is complete (§3.2.7's single-code exception is not needed).
fn code_lengths(freq: &[u32], limit: u8, lengths: &mut [u8]) {
    let mut copy = [0u32; MAX_SYMBOLS];
    let f = &mut copy[..freq.len()];
    f.copy_from_slice(freq);
    // Pad to two codes.
    let mut used = f.iter().filter(|&&x| x > 0).count();
    for x in f.iter_mut() {
        if used >= 2 {
            break;
        }
        if *x == 0 {
            *x = 1;
            used += 1;
        }
    }
    loop {
        huffman_depths(f, lengths);
        if lengths.iter().all(|&l| l <= limit) {
            return;
        }
        // Too deep: flatten the frequencies and build again (each pass halves the spread).
        for x in f.iter_mut().filter(|x| **x > 0) {
            *x = (*x >> 1) | 1;
        }
    }
}

/// Plain Huffman code lengths (the two-queue construction over leaves sorted by frequency).
fn huffman_depths(freq: &[u32], lengths: &mut [u8]) {
    lengths.fill(0);
    let mut all = [(0u32, 0usize); MAX_SYMBOLS];
    let mut n = 0;
    for (s, &f) in freq.iter().enumerate().filter(|(_, f)| **f > 0) {
        all[n] = (f, s);
        n += 1;
    }
    let leaves = &mut all[..n];
    leaves.sort_unstable();
    if n == 1 {
        lengths[leaves[0].1] = 1;
        return;
    }
    if n == 0 {
        return;
    }
    // Nodes 0..n are the leaves, n.. the internal nodes in the order they are made.
    let mut weight = [0u64; 2 * MAX_SYMBOLS];
    for (w, &(f, _)) in weight.iter_mut().zip(leaves.iter()) {
        *w = u64::from(f);
    }
    let mut parent = [0usize; 2 * MAX_SYMBOLS];
    let (mut leaf, mut inner) = (0usize, n);
    for made in n..2 * n - 1 {
        let mut pick = || {
            let take_leaf = leaf < n && (inner >= made || weight[leaf] <= weight[inner]);
            if take_leaf {
                leaf += 1;
                leaf - 1
            } else {
                inner += 1;
                inner - 1
            }
        };
        let (a, b) = (pick(), pick());
        weight[made] = weight[a] + weight[b];
        parent[a] = made;
        parent[b] = made;
    }
    // Depths from the root (the last node made) down.
    let mut depth = [0u8; 2 * MAX_SYMBOLS];
    for node in (0..2 * n - 2).rev() {
        depth[node] = depth[parent[node]].saturating_add(1);
    }
    for (i, &(_, s)) in leaves.iter().enumerate() {
        lengths[s] = depth[i];
    }
}

/// A dynamic block's header: the counts, the code-length code, and the run-length coded
/// lengths (§3.2.7).
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    cl_len: [u8; 19],
    cl_code: [u16; MAX_SYMBOLS],
    /// Code-length symbols with their extra bits' value: the first `n_runs` (each stands for
    /// at least one of the 286 + 30 lengths).
    runs: [(u8, u8); 316],
    n_runs: usize,
}

const CL_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

impl DynamicHeader {
    fn new(lit: &[u8], dist: &[u8]) -> Self {
        let hlit = 257.max(lit.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1));
        let hdist = 1.max(dist.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1));
        let mut both = [0u8; 316];
        both[..hlit].copy_from_slice(&lit[..hlit]);
        both[hlit..hlit + hdist].copy_from_slice(&dist[..hdist]);
        let all = &both[..hlit + hdist];
        let mut runs = [(0u8, 0u8); 316];
        let mut n_runs = 0;
        let mut push = |r: (u8, u8)| {
            runs[n_runs] = r;
            n_runs += 1;
        };
        let mut i = 0;
        while i < all.len() {
            let l = all[i];
            let run = all[i..].iter().take_while(|&&x| x == l).count();
            let mut left = run;
            if l == 0 {
                while left >= 11 {
                    let n = left.min(138);
                    push((18, (n - 11) as u8));
                    left -= n;
                }
                if left >= 3 {
                    push((17, (left - 3) as u8));
                    left = 0;
                }
            } else if left >= 4 {
                push((l, 0));
                left -= 1;
                while left >= 3 {
                    let n = left.min(6);
                    push((16, (n - 3) as u8));
                    left -= n;
                }
            }
            for _ in 0..left {
                push((l, 0));
            }
            i += run;
        }
        let runs_made = &runs[..n_runs];
        let mut freq = [0u32; 19];
        for &(s, _) in runs_made {
            freq[usize::from(s)] += 1;
        }
        let mut cl_len = [0u8; 19];
        code_lengths(&freq, 7, &mut cl_len);
        let hclen = 4.max(CL_ORDER.iter().rposition(|&s| cl_len[s] != 0).map_or(0, |p| p + 1));
        let cl_code = canonical(&cl_len);
        Self { hlit, hdist, hclen, cl_len, cl_code, runs, n_runs }
    }

    fn bits(&self) -> u64 {
        let mut n = 5 + 5 + 4 + 3 * self.hclen as u64;
        for &(s, _) in &self.runs[..self.n_runs] {
            n += u64::from(self.cl_len[usize::from(s)]) + u64::from(run_extra(s));
        }
        n
    }

    fn write(&self, w: &mut BitWriter<'_>) {
        w.put((self.hlit - 257) as u32, 5);
        w.put((self.hdist - 1) as u32, 5);
        w.put((self.hclen - 4) as u32, 4);
        for &s in &CL_ORDER[..self.hclen] {
            w.put(u32::from(self.cl_len[s]), 3);
        }
        for &(s, v) in &self.runs[..self.n_runs] {
            let s = usize::from(s);
            w.put(u32::from(self.cl_code[s]), u32::from(self.cl_len[s]));
            w.put(u32::from(v), run_extra(s as u8));
        }
    }
}

fn run_extra(symbol: u8) -> u32 {
    match symbol {
        16 => 2,
        17 => 3,
        18 => 7,
        _ => 0,
    }
}

/// Bits out, least significant first (§3.1.1).
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    bits: u64,
    have: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, v: u32, n: u32) {
        self.bits |= u64::from(v) << self.have;
        self.have += n;
        while self.have >= 8 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.have -= 8;
        }
    }

    /// Pads to a byte boundary with zero bits.
    fn align(&mut self) {
        if self.have > 0 {
            self.out.push(self.bits as u8);
            self.bits = 0;
            self.have = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::inflate::Inflater;

    /// Inflates a message as RFC 7692 §7.2.2 says: the tail appended first.
    fn inflate_message(z: &mut Inflater, packed: &[u8]) -> Vec<u8> {
        let mut input = packed.to_vec();
        input.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
        let mut out = vec![0u8; 1 << 20];
        let p = z.inflate(&input, &mut out).unwrap();
        assert_eq!(p.consumed, input.len());
        assert!(!p.done);
        out.truncate(p.produced);
        out
    }

    fn samples() -> Vec<Vec<u8>> {
        let json = br#"{"type":"message","channel":"builds","seq":1234,"data":{"status":"green"}}"#;
        let mut seed = 7u64;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 33) as u8
            })
            .collect();
        vec![
            Vec::new(),
            b"a".to_vec(),
            b"Hello".to_vec(),
            json.to_vec(),
            json.repeat(200),
            vec![b'x'; 100_000],
            noise,
            (0..=255u8).cycle().take(70_000).collect(),
        ]
    }

    #[test]
    fn messages_round_trip_through_both_inflaters() {
        for bits in [8u8, 9, 12, 15] {
            for takeover in [false, true] {
                let mut d = Deflater::new(bits, takeover);
                let mut z = Inflater::new(bits);
                for data in samples().iter().chain(samples().iter()) {
                    let mut packed = Vec::new();
                    d.compress_message(data, &mut packed);
                    if !takeover {
                        z.reset();
                    }
                    assert_eq!(&inflate_message(&mut z, &packed), data, "bits {bits}");
                    // The reference inflates it the same way, on its own when there is no
                    // context to take over.
                    if !takeover {
                        let mut full = packed.clone();
                        full.extend_from_slice(&[0, 0, 0xFF, 0xFF, 0x03, 0x00]);
                        let r = miniz_oxide::inflate::decompress_to_vec(&full).unwrap();
                        assert_eq!(&r, data);
                    }
                }
            }
        }
    }

    #[test]
    fn compresses_repetition_and_leaves_noise_near_its_size() {
        let mut d = Deflater::new(15, false);
        let mut out = Vec::new();
        d.compress_message(&vec![b'x'; 100_000], &mut out);
        assert!(out.len() < 1000, "{}", out.len());
        let mut out = Vec::new();
        let noise = &samples()[6];
        d.compress_message(noise, &mut out);
        assert!(out.len() <= noise.len() + 16, "{}", out.len());
        // RFC 7692 §7.2.3.1: "Hello" is 7 bytes once the tail is left off.
        let mut out = Vec::new();
        d.compress_message(b"Hello", &mut out);
        assert_eq!(out.len(), 7, "{out:02x?}");
    }

    #[test]
    fn context_takeover_shrinks_a_repeated_message() {
        let json = &samples()[3];
        let mut d = Deflater::new(15, true);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        d.compress_message(json, &mut first);
        d.compress_message(json, &mut second);
        assert!(second.len() < first.len() / 3, "{} then {}", first.len(), second.len());
    }

    #[test]
    fn compressors_that_borrow_buffers_keep_only_their_window() {
        // Two connections' compressors, interleaved on one lender, make what each makes alone.
        let mut lender = Deflater::new(15, false);
        let (mut a, mut b) = (Deflater::new(15, true), Deflater::new(10, true));
        let (mut a_alone, mut b_alone) = (Deflater::new(15, true), Deflater::new(10, true));
        for data in samples() {
            for (d, alone) in [(&mut a, &mut a_alone), (&mut b, &mut b_alone)] {
                let (mut borrowed, mut own) = (Vec::new(), Vec::new());
                d.compress_message_using(&mut lender, &data, &mut borrowed);
                alone.compress_message(&data, &mut own);
                assert_eq!(borrowed, own);
                assert_eq!(d.head.capacity() + d.buf.capacity() + d.symbols.capacity(), 0);
                assert!(d.history.len() <= 1 << d.window_bits);
            }
        }
        assert!(lender.head.capacity() > 0 && lender.history.is_empty());
    }

    #[test]
    fn the_table_is_not_cleared_per_message_and_its_offset_wraps() {
        let json = &samples()[4];
        let mut d = Deflater::new(15, false);
        let mut z = Inflater::new(15);
        let mut first = Vec::new();
        d.compress_message(json, &mut first);
        // Values left by a message are stale for the next: the same output, inflatable alone.
        for base in [d.base, u32::MAX - 10, u32::MAX - json.len() as u32 - 1] {
            d.base = base;
            let mut again = Vec::new();
            d.compress_message(json, &mut again);
            assert_eq!(again, first, "base {base}");
            z.reset();
            assert_eq!(&inflate_message(&mut z, &again), json);
        }
    }

    #[test]
    fn distance_codes() {
        for (d, want) in [(1u16, 0usize), (4, 3), (5, 4), (6, 4), (7, 5), (32768, 29), (24577, 29)]
        {
            assert_eq!(distance_code(d).0, want, "{d}");
        }
        for (l, want) in [(3u16, 257usize), (10, 264), (11, 265), (257, 284), (258, 285)] {
            assert_eq!(length_code(l).0, want, "{l}");
        }
    }
}
