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
                let h = hash(&self.buf, i);
                self.head[h] = (base + i + 1) as u32;
            }
        }
        // At most a stored block's overhead per 64 KiB beyond the bytes (§3.2.4), and the flush.
        out.reserve(data.len() + data.len() / 8192 + 16);
        let mut w = BitWriter { out, bits: 0, have: 0 };
        let mut block_start = start;
        let mut i = start;
        let end = self.buf.len();
        self.symbols.clear();
        let mut freq = Frequencies::new();
        while i < end {
            let mut matched = 0;
            let mut dist = 0;
            if i + MIN_MATCH <= end {
                let h = hash(&self.buf, i);
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
                freq.count_match(matched, dist);
                // Positions inside a short match go into the table too; a long one is
                // skipped (zlib's level 1 does the same).
                if matched <= 8 {
                    for j in i + 1..(i + matched).min(end.saturating_sub(MIN_MATCH - 1)) {
                        let h = hash(&self.buf, j);
                        self.head[h] = (base + j + 1) as u32;
                    }
                }
                i += matched;
            } else {
                self.symbols.push((u16::from(self.buf[i]), 0));
                freq.lit[usize::from(self.buf[i])] += 1;
                i += 1;
            }
            if self.symbols.len() >= BLOCK_SYMBOLS {
                write_block(&mut w, &self.symbols, &mut freq, &self.buf[block_start..i]);
                self.symbols.clear();
                freq = Frequencies::new();
                block_start = i;
            }
        }
        if !self.symbols.is_empty() {
            write_block(&mut w, &self.symbols, &mut freq, &self.buf[block_start..end]);
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

/// The hash of the four bytes at `at` (the caller checked that there are four).
fn hash(b: &[u8], at: usize) -> usize {
    let mut four = [0u8; 4];
    four.copy_from_slice(&b[at..at + 4]);
    let v = u32::from_le_bytes(four);
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

/// §3.2.5: the lengths' base values (symbols 257-285) and their extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] =
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];

/// The length symbol less 257 for each length 3-258 (at `length - 3`), made once at compile
/// time so that a match costs a lookup, not a search.
const LENGTH_SYMBOL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut len = 3;
    let mut i = 0;
    while len <= 258 {
        if i + 1 < 29 && LENGTH_BASE[i + 1] as usize <= len {
            i += 1;
        }
        t[len - 3] = i as u8;
        len += 1;
    }
    t
};

/// §3.2.5: the length symbol (257-285), its extra bits and their value, for a length 3-258.
fn length_code(len: u16) -> (usize, u32, u16) {
    let i = usize::from(LENGTH_SYMBOL[usize::from(len - 3) & 0xFF]);
    (257 + i, u32::from(LENGTH_EXTRA[i]), len - LENGTH_BASE[i])
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

/// How often each literal/length and distance symbol occurs in a block, counted as the symbols
/// are made.
struct Frequencies {
    lit: [u32; 286],
    dist: [u32; 30],
}

impl Frequencies {
    fn new() -> Self {
        Self { lit: [0; 286], dist: [0; 30] }
    }

    fn count_match(&mut self, len: usize, dist: usize) {
        self.lit[257 + usize::from(LENGTH_SYMBOL[(len - 3) & 0xFF])] += 1;
        self.dist[distance_code(dist as u16).0] += 1;
    }

    /// The extra bits all the block's lengths and distances carry (§3.2.5).
    fn extra_bits(&self) -> u64 {
        let lit = self.lit[257..].iter().zip(LENGTH_EXTRA);
        let lit: u64 = lit.map(|(&f, e)| u64::from(f) * u64::from(e)).sum();
        let dist = self.dist.iter().enumerate();
        lit + dist.map(|(code, &f)| u64::from(f) * u64::from(dist_extra(code))).sum::<u64>()
    }
}

/// The extra bits of distance symbol `code` (§3.2.5): 0 for 0-3, then one more every two.
fn dist_extra(code: usize) -> u32 {
    if code < 4 { 0 } else { (code as u32 / 2) - 1 }
}

/// Writes one block (not final) of `symbols`, which encode `raw` and occur as `freq` counts
/// (the end-of-block symbol is counted here), in the smallest form.
fn write_block(w: &mut BitWriter<'_>, symbols: &[(u16, u16)], freq: &mut Frequencies, raw: &[u8]) {
    freq.lit[256] = 1;
    let (lit_freq, dist_freq) = (&freq.lit, &freq.dist);
    let extra_bits = freq.extra_bits();

    let mut lit_len = [0u8; 286];
    let mut dist_len = [0u8; 30];
    code_lengths(lit_freq, 15, &mut lit_len);
    code_lengths(dist_freq, 15, &mut dist_len);
    let header = DynamicHeader::new(&lit_len, &dist_len);
    let cost = |lens: &[u8], freq: &[u32]| -> u64 {
        lens.iter().zip(freq).map(|(&l, &f)| u64::from(l) * u64::from(f)).sum()
    };
    let dynamic = 3 + header.bits() + cost(&lit_len, lit_freq) + cost(&dist_len, dist_freq);
    let fixed = 3 + cost(&FIXED_LIT_LEN, lit_freq) + 5 * dist_freq.iter().sum::<u32>() as u64;
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
    if dynamic < fixed {
        w.put(2 << 1, 3); // BFINAL 0, BTYPE 10
        header.write(w);
        let mut lit_codes = [0u16; 286];
        let mut dist_codes = [0u16; 30];
        canonical(&lit_len, &mut lit_codes);
        canonical(&dist_len, &mut dist_codes);
        write_symbols(w, symbols, (&lit_codes, &lit_len), (&dist_codes, &dist_len));
    } else {
        w.put(1 << 1, 3); // BFINAL 0, BTYPE 01
        let dist = (&FIXED_DIST_CODE[..], &FIXED_DIST_LEN[..]);
        write_symbols(w, symbols, (&FIXED_LIT_CODE, &FIXED_LIT_LEN), dist);
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
    let (lit_code, lit_len) = (&lit.0[..286], &lit.1[..286]);
    let (dist_code, dist_len) = (&dist.0[..30], &dist.1[..30]);
    for &(s, d) in symbols {
        if s < 256 {
            let s = usize::from(s);
            w.put(u32::from(lit_code[s]), u32::from(lit_len[s]));
            continue;
        }
        // A length's code and extra bits in one put (at most 15 + 5 bits), then the
        // distance's (at most 15 + 13).
        let (code, extra, value) = length_code(s - 256);
        let n = u32::from(lit_len[code]);
        w.put(u32::from(lit_code[code]) | u32::from(value) << n, n + extra);
        let (dcode, dextra, dvalue) = distance_code(d);
        let n = u32::from(dist_len[dcode]);
        w.put(u32::from(dist_code[dcode]) | u32::from(dvalue) << n, n + dextra);
    }
    w.put(u32::from(lit_code[256]), u32::from(lit_len[256]));
}

/// §3.2.6: the fixed codes' lengths and (bit-reversed) codes, made at compile time.
const FIXED_LIT_LEN: [u8; 288] = {
    let mut lit = [8u8; 288];
    let mut i = 144;
    while i < 256 {
        lit[i] = 9;
        i += 1;
    }
    while i < 280 {
        lit[i] = 7;
        i += 1;
    }
    lit
};
const FIXED_LIT_CODE: [u16; 288] = {
    let mut codes = [0u16; 288];
    canonical(&FIXED_LIT_LEN, &mut codes);
    codes
};
const FIXED_DIST_LEN: [u8; 32] = [5; 32];
const FIXED_DIST_CODE: [u16; 32] = {
    let mut codes = [0u16; 32];
    canonical(&FIXED_DIST_LEN, &mut codes);
    codes
};

/// Symbols of the largest alphabet (literal/length, §3.2.5); every table here is on the stack,
/// so a block costs no allocation.
const MAX_SYMBOLS: usize = 288;

/// §3.2.2: the codes for `lengths` into `codes` (as long), bit-reversed so they can be written
/// least significant bit first.
const fn canonical(lengths: &[u8], codes: &mut [u16]) {
    // Lengths are at most 15 (the masks only spare bounds checks).
    let mut count = [0u16; 16];
    let mut i = 0;
    while i < lengths.len() {
        count[lengths[i] as usize & 15] += 1;
        i += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    let mut bits = 1;
    while bits < 16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
        bits += 1;
    }
    let mut s = 0;
    while s < lengths.len() && s < codes.len() {
        let l = lengths[s] as usize & 15;
        if l != 0 {
            codes[s] = next[l].reverse_bits() >> (16 - l);
            next[l] += 1;
        }
        s += 1;
    }
}

/// Huffman code lengths for `freq` (at most [`MAX_SYMBOLS`] symbols), none longer than
/// `limit`: at least two codes, so that the code is complete (§3.2.7's single-code exception is
/// not needed). The symbols sorted by frequency get optimal depths by Moffat and Katajainen's
/// in-place method; depths past `limit` are then folded in and the shallower codes lengthened
/// until the lengths fill the code space again (Kraft's sum exactly one, as zlib and miniz do).
fn code_lengths(freq: &[u32], limit: u8, lengths: &mut [u8]) {
    lengths.fill(0);
    // Each used symbol as frequency << 9 | symbol, so a sort of plain integers orders them by
    // frequency (a block has fewer than 2^23 symbols).
    let mut keys = [0u32; MAX_SYMBOLS];
    let mut n = 0;
    for (s, &f) in freq.iter().enumerate() {
        if f > 0 {
            keys[n] = (f.min(0x7F_FFFF) << 9) | s as u32;
            n += 1;
        }
    }
    // Pad to two codes with the first unused symbols, each as if seen once.
    let mut s = 0;
    while n < 2 && s < freq.len() {
        if freq[s] == 0 {
            keys[n] = (1 << 9) | s as u32;
            n += 1;
        }
        s += 1;
    }
    let keys = &mut keys[..n];
    keys.sort_unstable();
    let mut a = [0u32; MAX_SYMBOLS];
    for (x, &k) in a.iter_mut().zip(keys.iter()) {
        *x = k >> 9;
    }
    minimum_redundancy(&mut a[..n]);
    // a[i] is now the depth of keys[i]: count them, the too deep ones at the limit.
    let limit = usize::from(limit);
    let mut count = [0u32; 16];
    for &d in &a[..n] {
        count[(d as usize).min(limit)] += 1;
    }
    // Kraft's sum over 2^limit; folding deep codes up made it too large: take a code from the
    // limit and lengthen a shallower one (which frees exactly one slot at the limit) until it
    // is exact again.
    let mut total: u32 = (1..=limit).map(|l| count[l] << (limit - l)).sum();
    while total > 1 << limit {
        count[limit] -= 1;
        if let Some(l) = (1..limit).rev().find(|&l| count[l] > 0) {
            count[l] -= 1;
            count[l + 1] += 2;
        }
        total -= 1;
    }
    // The most frequent symbols (at the end of `keys`) get the shortest codes.
    let mut j = n;
    for (l, &c) in count.iter().enumerate().take(limit + 1).skip(1) {
        for _ in 0..c {
            j -= 1;
            lengths[(keys[j] & 0x1FF) as usize] = l as u8;
        }
    }
}

/// Moffat and Katajainen's in-place minimum-redundancy code ("In-Place Calculation of
/// Minimum-Redundancy Codes", 1995), as miniz writes it: `a` holds the weights in ascending
/// order (at least two) and gets each one's code length.
fn minimum_redundancy(a: &mut [u32]) {
    let n = a.len();
    if n < 2 {
        a.fill(1);
        return;
    }
    // Phase 1: build the tree's internal weights in place, leaving parent pointers.
    a[0] += a[1];
    let (mut root, mut leaf) = (0usize, 2usize);
    for next in 1..n - 1 {
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u32;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    // Phase 2: internal nodes' depths from the root down.
    a[n - 2] = 0;
    for next in (0..n.saturating_sub(2)).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    // Phase 3: leaves' depths, deepest first at the front.
    let (mut avail, mut used, mut depth) = (1i64, 0i64, 0u32);
    let (mut root, mut next) = (n as i64 - 2, n as i64 - 1);
    while avail > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avail > used {
            a[next as usize] = depth;
            next -= 1;
            avail -= 1;
        }
        avail = 2 * used;
        depth += 1;
        used = 0;
    }
}

/// A dynamic block's header: the counts, the code-length code, and the run-length coded
/// lengths (§3.2.7).
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    cl_len: [u8; 19],
    cl_code: [u16; 19],
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
        let mut cl_code = [0u16; 19];
        canonical(&cl_len, &mut cl_code);
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
    /// Appends the `n` low bits of `v` (at most 32; `v` has no bits above them). Whole 32-bit
    /// words go out; fewer than 32 bits wait in `bits`.
    fn put(&mut self, v: u32, n: u32) {
        self.bits |= u64::from(v) << self.have;
        self.have += n;
        if self.have >= 32 {
            self.out.extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.have -= 32;
        }
    }

    /// Pads to a byte boundary with zero bits and writes out every bit held.
    fn align(&mut self) {
        while self.have > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.have = self.have.saturating_sub(8);
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

    /// The cost in bits of an optimal (unlimited) Huffman code: the sum of the merged weights.
    fn huffman_cost(freq: &[u32]) -> u64 {
        let mut w: Vec<u64> = freq.iter().filter(|&&f| f > 0).map(|&f| u64::from(f)).collect();
        let mut cost = 0;
        while w.len() > 1 {
            w.sort_unstable_by(|a, b| b.cmp(a));
            let (a, b) = (w.pop().unwrap(), w.pop().unwrap());
            cost += a + b;
            w.push(a + b);
        }
        cost
    }

    #[test]
    fn code_lengths_are_optimal_complete_and_within_the_limit() {
        let mut seed = 1u64;
        let mut fib = [0u32; 30];
        fib[0] = 1;
        fib[1] = 1;
        for i in 2..30 {
            fib[i] = fib[i - 1] + fib[i - 2];
        }
        let mut cases: Vec<Vec<u32>> = vec![vec![0; 286], vec![5; 19], fib.to_vec()];
        cases[0][65] = 9; // one symbol: padded to two codes
        for k in 0..300 {
            // The code-length alphabet (19 symbols, limit 7) and the others (up to 286, 15).
            let n = if k % 3 == 0 { 19 } else { 2 + (seed % 285) as usize };
            let f = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as u32;
                    if r % 4 == 0 { 0 } else { (1 << (r % 13)) | (r % 7) }
                })
                .collect();
            cases.push(f);
        }
        for freq in &cases {
            for limit in [7u8, 15] {
                if limit == 7 && freq.len() > 19 {
                    continue;
                }
                let mut lens = vec![0u8; freq.len()];
                code_lengths(freq, limit, &mut lens);
                let kraft: u64 = lens.iter().filter(|&&l| l > 0).map(|&l| 1u64 << (15 - l)).sum();
                assert_eq!(kraft, 1 << 15, "complete: {freq:?} {lens:?}");
                assert!(lens.iter().all(|&l| l <= limit), "{freq:?} {lens:?}");
                for (&f, &l) in freq.iter().zip(&lens) {
                    assert!(
                        f == 0 || l > 0,
                        "every used symbol has a code: {freq:?} {lens:?} {limit}"
                    );
                }
                let max = lens.iter().copied().max().unwrap_or(0);
                let cost: u64 =
                    lens.iter().zip(freq).map(|(&l, &f)| u64::from(l) * u64::from(f)).sum();
                if max < limit && freq.iter().filter(|&&f| f > 0).count() >= 2 {
                    assert_eq!(cost, huffman_cost(freq), "optimal: {freq:?} {lens:?}");
                }
            }
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
        // Every length is its symbol's base plus a value its extra bits hold (§3.2.5).
        for l in 3u16..=258 {
            let (code, extra, value) = length_code(l);
            assert_eq!(LENGTH_BASE[code - 257] + value, l);
            assert!(u32::from(value) < 1 << extra || (extra == 0 && value == 0), "{l}");
            assert!(code == 285 || l < LENGTH_BASE[code - 256], "{l}");
        }
    }
}
