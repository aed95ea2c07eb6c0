//! DEFLATE decompression (RFC 1951), sans-IO and resumable, for permessage-deflate (RFC 7692).
//!
//! An [`Inflater`] takes compressed bytes in any split and writes what they decode to into a
//! caller's buffer, never more than the buffer holds: the caller bounds the work and the output of
//! each call, and checks its own limits (a message's size) as bytes come out, before any more
//! memory is spent. The only memory it owns is the sliding window (`2^window_bits` bytes, 256 B to
//! 32 KiB, allocated at the first byte written) and the code tables of the block being decoded.
//!
//! Every malformed input is an [`InflateError`], never a panic: a block type of 3, a stored
//! block whose lengths disagree, an over-subscribed or (but for the one case the RFC allows)
//! incomplete code, a code that decodes to no symbol, a repeat with nothing to repeat, and a
//! distance further back than the window or than the output so far.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Why compressed input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Block type 3 (RFC 1951 §3.2.3: reserved).
    BadBlockType,
    /// A stored block's `NLEN` is not the complement of its `LEN` (§3.2.4).
    StoredLength,
    /// More than 286 literal/length or 30 distance codes (§3.2.7).
    TooManyCodes,
    /// A set of code lengths that is over-subscribed, or incomplete where that is not allowed
    /// (§3.2.2; an incomplete code is accepted only when it is a single code of one bit).
    BadCodeLengths,
    /// A repeat code (16) with no length before it, or repeats past the end of the lengths
    /// (§3.2.7).
    BadRepeat,
    /// A block's literal/length code has no end-of-block symbol (256).
    NoEndOfBlock,
    /// Bits that are no code of the current table, or a symbol the alphabet does not use
    /// (literal/length 286-287, distance 30-31; §3.2.6).
    BadSymbol,
    /// A distance further back than the window or than the output so far (§3.2.5).
    DistanceTooFar,
}

impl core::fmt::Display for InflateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadBlockType => "reserved block type",
            Self::StoredLength => "stored block length mismatch",
            Self::TooManyCodes => "too many length or distance codes",
            Self::BadCodeLengths => "invalid code lengths",
            Self::BadRepeat => "invalid code length repeat",
            Self::NoEndOfBlock => "no end-of-block code",
            Self::BadSymbol => "invalid code",
            Self::DistanceTooFar => "distance beyond the window",
        })
    }
}

/// What one call to [`Inflater::inflate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes taken (they are decoded, or held as bits until the rest of a code comes).
    pub consumed: usize,
    /// Output bytes written at the start of the caller's buffer.
    pub produced: usize,
    /// The last block (`BFINAL`) has ended: the stream is complete.
    pub done: bool,
}

/// The longest code (§3.2.2).
const MAX_BITS: usize = 15;
/// Codes up to this long decode with one table look-up; longer ones walk the canonical code.
const FAST_BITS: u32 = 9;
const END_OF_BLOCK: u16 = 256;

/// §3.2.5: lengths for symbols 257-285, and their extra bits.
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] =
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/// §3.2.5: distances for symbols 0-29, and their extra bits.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// §3.2.7: the order in which the code-length code's lengths come.
const CL_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// A canonical Huffman code (§3.2.2), decoded least-significant bit first.
#[derive(Debug, Clone)]
struct Huffman {
    /// How many codes have each length.
    count: [u16; MAX_BITS + 1],
    /// The symbols in canonical order (by length, then by value).
    symbol: [u16; 288],
    /// Indexed by the next `FAST_BITS` input bits: `length << 9 | symbol` of the code they start
    /// with, 0 where that code is longer (or there is none).
    fast: [u16; 1 << FAST_BITS],
}

/// A decoded symbol, or why none could be.
enum Decoded {
    Symbol {
        symbol: u16,
        bits: u32,
    },
    /// The bits held may be the start of a code: more input is needed.
    Short,
}

impl Huffman {
    const EMPTY: Self =
        Self { count: [0; MAX_BITS + 1], symbol: [0; 288], fast: [0; 1 << FAST_BITS] };

    /// Builds the code for `lengths` (0: the symbol is not used). `incomplete_ok`: an
    /// incomplete code is accepted if it is a single one-bit code (§3.2.7 allows one distance
    /// code; zlib and puff accept the same for every table but the code-length code).
    fn build(&mut self, lengths: &[u8], incomplete_ok: bool) -> Result<(), InflateError> {
        self.count = [0; MAX_BITS + 1];
        for &l in lengths {
            self.count[usize::from(l)] += 1;
        }
        self.count[0] = 0;
        let mut left: i32 = 1;
        for len in 1..=MAX_BITS {
            left = (left << 1) - i32::from(self.count[len]);
            if left < 0 {
                return Err(InflateError::BadCodeLengths);
            }
        }
        let used: u16 = self.count.iter().sum();
        if left > 0 && !(incomplete_ok && used == 1 && self.count[1] == 1) && used != 0 {
            return Err(InflateError::BadCodeLengths);
        }
        // Symbols sorted by length, then value.
        let mut offset = [0u16; MAX_BITS + 2];
        for len in 1..=MAX_BITS {
            offset[len + 1] = offset[len] + self.count[len];
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let at = &mut offset[usize::from(l)];
                self.symbol[usize::from(*at)] = sym as u16;
                *at += 1;
            }
        }
        // The one-look-up table: every code of at most FAST_BITS, reversed (codes are packed
        // from their most significant bit, §3.1.1), at every index that starts with it.
        self.fast = [0; 1 << FAST_BITS];
        let mut code: u32 = 0;
        let mut index = 0usize;
        for len in 1..=MAX_BITS as u32 {
            for _ in 0..self.count[len as usize] {
                if len <= FAST_BITS {
                    let rev = code.reverse_bits() >> (32 - len);
                    let entry = (len as u16) << 9 | self.symbol[index];
                    let mut i = rev as usize;
                    while i < self.fast.len() {
                        self.fast[i] = entry;
                        i += 1 << len;
                    }
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        Ok(())
    }

    /// Decodes the code at the start of `bits` (of which `have` are real).
    #[inline]
    fn decode(&self, bits: u64, have: u32) -> Result<Decoded, InflateError> {
        let entry = self.fast[(bits & ((1 << FAST_BITS) - 1)) as usize];
        if entry != 0 {
            let len = u32::from(entry >> 9);
            return Ok(if len <= have {
                Decoded::Symbol { symbol: entry & 0x1FF, bits: len }
            } else {
                Decoded::Short
            });
        }
        // The canonical walk (§3.2.2): the codes of each length are consecutive numbers.
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS as u32 {
            if len > have {
                return Ok(Decoded::Short);
            }
            code |= ((bits >> (len - 1)) & 1) as i32;
            let count = i32::from(self.count[len as usize]);
            if code - first < count {
                return Ok(Decoded::Symbol {
                    symbol: self.symbol[(index + code - first) as usize],
                    bits: len,
                });
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(InflateError::BadSymbol)
    }
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a block's 3-bit header.
    BlockHeader,
    /// A stored block: `LEN` and `NLEN`, after skipping to a byte boundary.
    StoredHeader,
    /// Copying a stored block: this many bytes left.
    Stored(u16),
    /// A dynamic block's counts: HLIT, HDIST, HCLEN.
    DynamicCounts,
    /// The code-length code's lengths: this many read of `hclen`.
    CodeLengthLengths(u8),
    /// The literal/length and distance code lengths: this many read of `hlit + hdist`.
    CodeLengths(u16),
    /// Decoding literals, lengths and distances.
    Codes,
    /// A match being copied when the output filled: length left and distance.
    Copy(u16, u16),
    /// The final block ended.
    Done,
}

/// The tables and lengths of the block being decoded.
#[derive(Debug, Clone)]
struct Tables {
    lit: Huffman,
    dist: Huffman,
    /// The code-length code, while the lengths are read.
    cl: Huffman,
    lengths: [u8; 286 + 30],
    hlit: u16,
    hdist: u16,
    hclen: u8,
}

/// A resumable DEFLATE decoder with a sliding window of `2^window_bits` bytes.
#[derive(Debug, Clone)]
pub struct Inflater {
    state: State,
    final_block: bool,
    /// Input bits taken but not yet used, least significant first.
    bits: u64,
    have: u32,
    /// The last `window.len()` bytes written (a ring), for matches; empty until first used.
    window: Vec<u8>,
    window_bits: u8,
    /// Where the next byte goes in `window`.
    pos: usize,
    /// How many bytes the window holds (at most its size): how far back a distance may reach.
    filled: usize,
    tables: Box<Tables>,
}

impl Inflater {
    /// A decoder whose matches reach back at most `2^window_bits` bytes (8 to 15; RFC 7692
    /// §7.1.2.1 negotiates this; values outside are clamped).
    pub fn new(window_bits: u8) -> Self {
        Self {
            state: State::BlockHeader,
            final_block: false,
            bits: 0,
            have: 0,
            window: Vec::new(),
            window_bits: window_bits.clamp(8, 15),
            pos: 0,
            filled: 0,
            tables: Box::new(Tables {
                lit: Huffman::EMPTY,
                dist: Huffman::EMPTY,
                cl: Huffman::EMPTY,
                lengths: [0; 316],
                hlit: 0,
                hdist: 0,
                hclen: 0,
            }),
        }
    }

    /// Whether the final block has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Starts a new stream, keeping the window (RFC 7692 §7.2.3.2: with context takeover the
    /// next message may refer to bytes of the one before).
    pub fn restart(&mut self) {
        self.state = State::BlockHeader;
        self.final_block = false;
        self.bits = 0;
        self.have = 0;
    }

    /// Forgets the window too (no context takeover).
    pub fn reset(&mut self) {
        self.restart();
        self.pos = 0;
        self.filled = 0;
    }

    /// Whole bytes taken from the input but not used by the stream: after
    /// [`is_done`](Self::is_done) they are data past its end.
    pub fn unused_bytes(&self) -> usize {
        (self.have / 8) as usize
    }

    /// Decodes from `input` into `out`, stopping when the input is used up, `out` is full, or
    /// the stream ends.
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<Progress, InflateError> {
        let mut r = Run { input, at: 0, out, written: 0 };
        let result = self.run(&mut r);
        // What this call wrote goes into the window once, at its end: matches within the call
        // are copied from `out` itself (`copy_match`).
        let written = r.written;
        self.remember(&r.out[..written]);
        let progress = Progress { consumed: r.at, produced: written, done: self.is_done() };
        result.map(|()| progress)
    }

    fn run(&mut self, r: &mut Run<'_, '_>) -> Result<(), InflateError> {
        loop {
            match self.state {
                State::Done => return Ok(()),
                State::BlockHeader => {
                    let Some(h) = self.take(r, 3) else { return Ok(()) };
                    self.final_block = h & 1 == 1;
                    self.state = match h >> 1 {
                        0 => State::StoredHeader,
                        1 => {
                            self.fixed_tables();
                            State::Codes
                        }
                        2 => State::DynamicCounts,
                        _ => return Err(InflateError::BadBlockType),
                    };
                }
                State::StoredHeader => {
                    // §3.2.4: skip to a byte boundary, then LEN and NLEN.
                    let skip = self.have % 8;
                    self.bits >>= skip;
                    self.have -= skip;
                    let Some(v) = self.take(r, 32) else { return Ok(()) };
                    let (len, nlen) = (v as u16, (v >> 16) as u16);
                    if len != !nlen {
                        return Err(InflateError::StoredLength);
                    }
                    self.state = State::Stored(len);
                }
                State::Stored(0) => self.end_block(),
                State::Stored(left) => {
                    if r.written == r.out.len() {
                        return Ok(());
                    }
                    // Bytes already held as bits come first, then straight from the input.
                    if self.have >= 8 {
                        let b = self.bits as u8;
                        self.bits >>= 8;
                        self.have -= 8;
                        self.emit(r, b);
                        self.state = State::Stored(left - 1);
                        continue;
                    }
                    let n =
                        usize::from(left).min(r.input.len() - r.at).min(r.out.len() - r.written);
                    if n == 0 {
                        return Ok(());
                    }
                    let (from, to) = (r.at, r.written);
                    r.out[to..to + n].copy_from_slice(&r.input[from..from + n]);
                    r.at += n;
                    r.written += n;
                    self.state = State::Stored(left - n as u16);
                }
                State::DynamicCounts => {
                    let Some(v) = self.take(r, 14) else { return Ok(()) };
                    let t = &mut self.tables;
                    t.hlit = (v & 0x1F) as u16 + 257;
                    t.hdist = ((v >> 5) & 0x1F) as u16 + 1;
                    t.hclen = ((v >> 10) & 0xF) as u8 + 4;
                    if t.hlit > 286 || t.hdist > 30 {
                        return Err(InflateError::TooManyCodes);
                    }
                    t.lengths = [0; 316];
                    self.state = State::CodeLengthLengths(0);
                }
                State::CodeLengthLengths(i) => {
                    if i == self.tables.hclen {
                        let mut cl = [0u8; 19];
                        cl.copy_from_slice(&self.tables.lengths[..19]);
                        // The code-length code must be complete (as zlib and puff require).
                        self.tables.cl.build(&cl, false)?;
                        self.tables.lengths = [0; 316];
                        self.state = State::CodeLengths(0);
                        continue;
                    }
                    let Some(v) = self.take(r, 3) else { return Ok(()) };
                    self.tables.lengths[CL_ORDER[usize::from(i)]] = v as u8;
                    self.state = State::CodeLengthLengths(i + 1);
                }
                State::CodeLengths(i) => {
                    self.refill(r);
                    let t = &mut *self.tables;
                    let total = t.hlit + t.hdist;
                    if i == total {
                        let (lit, dist) = t.lengths.split_at(usize::from(t.hlit));
                        if lit[usize::from(END_OF_BLOCK)] == 0 {
                            return Err(InflateError::NoEndOfBlock);
                        }
                        t.lit.build(lit, true)?;
                        t.dist.build(&dist[..usize::from(t.hdist)], true)?;
                        self.state = State::Codes;
                        continue;
                    }
                    let (symbol, used) = match t.cl.decode(self.bits, self.have)? {
                        Decoded::Symbol { symbol, bits } => (symbol, bits),
                        Decoded::Short => return Ok(()),
                    };
                    // A symbol and its extra bits are taken together, or not at all.
                    let (extra, base) = match symbol {
                        0..=15 => (0, 1),
                        16 => (2, 3),
                        17 => (3, 3),
                        _ => (7, 11),
                    };
                    if self.have < used + extra {
                        return Ok(());
                    }
                    let n = ((self.bits >> used) & ((1 << extra) - 1)) as u16 + base;
                    self.bits >>= used + extra;
                    self.have -= used + extra;
                    let at = usize::from(i);
                    if symbol < 16 {
                        t.lengths[at] = symbol as u8;
                    } else {
                        let value = match symbol {
                            16 if at == 0 => return Err(InflateError::BadRepeat),
                            16 => t.lengths[at - 1],
                            _ => 0,
                        };
                        if i + n > total {
                            return Err(InflateError::BadRepeat);
                        }
                        t.lengths[at..at + usize::from(n)].fill(value);
                    }
                    self.state = State::CodeLengths(i + if symbol < 16 { 1 } else { n });
                }
                State::Codes => {
                    if !self.codes(r)? {
                        return Ok(());
                    }
                }
                State::Copy(len, dist) => {
                    let n = self.copy_match(r, len, dist);
                    if n < len {
                        self.state = State::Copy(len - n, dist);
                        return Ok(());
                    }
                    self.state = State::Codes;
                }
            }
        }
    }

    /// Decodes literals and matches until the block ends (`true`, state moved on), or input or
    /// output runs out (`false`).
    fn codes(&mut self, r: &mut Run<'_, '_>) -> Result<bool, InflateError> {
        loop {
            if r.written == r.out.len() {
                return Ok(false);
            }
            self.refill(r);
            let t = &self.tables;
            let (symbol, used) = match t.lit.decode(self.bits, self.have)? {
                Decoded::Symbol { symbol, bits } => (symbol, bits),
                Decoded::Short => return Ok(false),
            };
            if symbol < 256 {
                self.bits >>= used;
                self.have -= used;
                self.emit(r, symbol as u8);
                continue;
            }
            if symbol == END_OF_BLOCK {
                self.bits >>= used;
                self.have -= used;
                self.end_block();
                return Ok(true);
            }
            // A length, its extra bits, a distance code and its extra bits: taken together
            // (at most 15 + 5 + 15 + 13 bits), or not at all until more input comes.
            let li = usize::from(symbol - 257);
            if li >= LEN_BASE.len() {
                return Err(InflateError::BadSymbol);
            }
            let lx = u32::from(LEN_EXTRA[li]);
            if self.have < used + lx {
                return Ok(false);
            }
            let len = LEN_BASE[li] + ((self.bits >> used) & ((1 << lx) - 1)) as u16;
            let rest = self.bits >> (used + lx);
            let dsym = match t.dist.decode(rest, self.have - used - lx)? {
                Decoded::Symbol { symbol, bits } => (symbol, bits),
                Decoded::Short => return Ok(false),
            };
            let di = usize::from(dsym.0);
            if di >= DIST_BASE.len() {
                return Err(InflateError::BadSymbol);
            }
            let dx = u32::from(DIST_EXTRA[di]);
            let total = used + lx + dsym.1 + dx;
            if self.have < total {
                return Ok(false);
            }
            let dist = DIST_BASE[di] + ((rest >> dsym.1) & ((1 << dx) - 1)) as u16;
            // Back into what the window holds from before this call, or this call's output.
            let reach = (self.filled + r.written).min(1 << self.window_bits);
            if usize::from(dist) > reach {
                return Err(InflateError::DistanceTooFar);
            }
            self.bits >>= total;
            self.have -= total;
            let n = self.copy_match(r, len, dist);
            if n < len {
                self.state = State::Copy(len - n, dist);
                return Ok(false);
            }
        }
    }

    /// Copies up to `len` bytes from `dist` back, as far as the output has room; returns how
    /// many.
    fn copy_match(&mut self, r: &mut Run<'_, '_>, len: u16, dist: u16) -> u16 {
        let n = usize::from(len).min(r.out.len() - r.written);
        let dist = usize::from(dist);
        let mut done = 0;
        // The bytes from before this call are in the window (which this call has not written
        // yet: `pos` is where its output will go).
        let mask = self.window.len().wrapping_sub(1);
        while done < n && dist > r.written {
            let b = self.window[self.pos.wrapping_sub(dist - r.written) & mask];
            self.emit(r, b);
            done += 1;
        }
        // The rest from this call's output. A match may overlap what it writes (dist < len):
        // then byte by byte, as §3.2.3 describes.
        let rest = n - done;
        let (from, to) = (r.written.wrapping_sub(dist), r.written);
        if rest > 0 && dist >= rest {
            r.out.copy_within(from..from + rest, to);
        } else {
            for i in 0..rest {
                r.out[to + i] = r.out[from + i];
            }
        }
        r.written += rest;
        n as u16
    }

    fn end_block(&mut self) {
        self.state = if self.final_block { State::Done } else { State::BlockHeader };
    }

    /// Writes one byte to the output (the window takes the call's output at its end).
    fn emit(&mut self, r: &mut Run<'_, '_>, b: u8) {
        r.out[r.written] = b;
        r.written += 1;
    }

    fn remember(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.window.is_empty() {
            self.window = vec![0; 1 << self.window_bits];
        }
        let size = self.window.len();
        let bytes = &bytes[bytes.len().saturating_sub(size)..];
        let first = bytes.len().min(size - self.pos);
        self.window[self.pos..self.pos + first].copy_from_slice(&bytes[..first]);
        self.window[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.pos = (self.pos + bytes.len()) & (size - 1);
        self.filled = (self.filled + bytes.len()).min(size);
    }

    /// Tops the bit buffer up from the input to at least 56 bits or the end of the input: eight
    /// bytes read at once (those that fit taken) while eight are left, then a byte at a time.
    #[inline]
    fn refill(&mut self, r: &mut Run<'_, '_>) {
        if self.have <= 56 && r.input.len() - r.at >= 8 {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(&r.input[r.at..r.at + 8]);
            let take = (63 - self.have) / 8;
            let room = self.have + 8 * take;
            self.bits |= (u64::from_le_bytes(eight) << self.have) & ((1u64 << room) - 1);
            self.have = room;
            r.at += take as usize;
            return;
        }
        while self.have <= 56 && r.at < r.input.len() {
            self.bits |= u64::from(r.input[r.at]) << self.have;
            self.have += 8;
            r.at += 1;
        }
    }

    /// Takes `n` bits (at most 32), or none if the input has not got them yet.
    fn take(&mut self, r: &mut Run<'_, '_>, n: u32) -> Option<u32> {
        self.refill(r);
        if self.have < n {
            return None;
        }
        let v = (self.bits & ((1u64 << n) - 1)) as u32;
        self.bits >>= n;
        self.have -= n;
        Some(v)
    }

    /// §3.2.6: the fixed codes.
    fn fixed_tables(&mut self) {
        let mut lit = [0u8; 288];
        lit[..144].fill(8);
        lit[144..256].fill(9);
        lit[256..280].fill(7);
        lit[280..].fill(8);
        // Both are valid codes, so neither build can fail; the distance code has 32 five-bit
        // codes of which 30 are used (30 and 31 decode to BadSymbol).
        let _ = self.tables.lit.build(&lit, false);
        let _ = self.tables.dist.build(&[5; 32], false);
    }
}

/// One call's input and output.
struct Run<'i, 'o> {
    input: &'i [u8],
    at: usize,
    out: &'o mut [u8],
    written: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inflates all of `input` with a 32 KiB window, in calls of `chunk` input bytes and
    /// `room` output bytes.
    fn inflate_all(input: &[u8], chunk: usize, room: usize) -> Result<Vec<u8>, InflateError> {
        let mut z = Inflater::new(15);
        let mut out = Vec::new();
        let mut buf = vec![0u8; room];
        let mut at = 0;
        loop {
            let end = (at + chunk).min(input.len());
            let p = z.inflate(&input[at..end], &mut buf)?;
            out.extend_from_slice(&buf[..p.produced]);
            at += p.consumed;
            if p.done {
                return Ok(out);
            }
            if p.consumed == 0 && p.produced == 0 && at == input.len() {
                return Ok(out);
            }
        }
    }

    // Streams made with zlib (python3 -c "import zlib; c=zlib.compressobj(L, zlib.DEFLATED,
    // -15); print((c.compress(D)+c.flush()).hex())").
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn stored_and_fixed_blocks_whole_and_split() {
        let cases: [(&str, &[u8]); 4] = [
            // Level 0: a stored block.
            ("010500faff68656c6c6f", b"hello"),
            // Fixed codes with a match ("hello hello").
            ("cb48cdc9c957c8009100", b"hello hello"),
            // An empty stream: one fixed block with only end-of-block.
            ("0300", b""),
            // RFC 7692 §7.2.3.1's example: "Hello" compressed, with the sync-flush tail.
            ("f248cdc9c90700", b"Hello"),
        ];
        for (h, want) in cases {
            let input = hex(h);
            for chunk in [1, 2, 3, input.len()] {
                for room in [1, 7, 4096] {
                    let got = inflate_all(&input, chunk, room);
                    assert_eq!(got.as_deref(), Ok(want), "{h} chunk {chunk} room {room}");
                }
            }
        }
    }

    #[test]
    fn errors_name_their_rule() {
        // Block type 3.
        assert_eq!(inflate_all(&[0x07], 1, 16), Err(InflateError::BadBlockType));
        // A stored block whose NLEN is wrong.
        assert_eq!(
            inflate_all(&hex("010500fafe68656c6c6f"), 1, 16),
            Err(InflateError::StoredLength)
        );
        // A fixed-code match at distance 1 with nothing written yet.
        // 0x03 = BFINAL 1, type 01; then symbol 257 (0000001, 7 bits) and distance 0 (00000).
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(1, 2);
        w.put_rev(0b0000001, 7);
        w.put_rev(0, 5);
        assert_eq!(inflate_all(&w.finish(), 1, 16), Err(InflateError::DistanceTooFar));
        // A fixed-code distance symbol 30.
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(1, 2);
        w.put_rev(0b00110001, 8); // literal 'a'
        w.put_rev(0b0000001, 7);
        w.put_rev(30, 5);
        assert_eq!(inflate_all(&w.finish(), 64, 16), Err(InflateError::BadSymbol));
    }

    #[test]
    fn a_dynamic_block_with_too_many_codes_or_bad_lengths_is_refused() {
        // HLIT = 30 (287 codes).
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(2, 2);
        w.put(30, 5);
        w.put(0, 5);
        w.put(0, 4);
        assert_eq!(inflate_all(&w.finish(), 1, 16), Err(InflateError::TooManyCodes));
        // An over-subscribed code-length code: three one-bit codes.
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(2, 2);
        w.put(0, 5);
        w.put(0, 5);
        w.put(0, 4); // 4 code-length lengths: for 16, 17, 18, 0
        for _ in 0..3 {
            w.put(1, 3);
        }
        w.put(0, 3);
        assert_eq!(inflate_all(&w.finish(), 1, 16), Err(InflateError::BadCodeLengths));
    }

    /// Found by the `inflate` fuzz target: a dynamic block whose distance code is incomplete
    /// (more than one code, not filling the tree). miniz_oxide inflates it; zlib refuses it
    /// ("invalid distances set"), and so does weir (RFC 1951 §3.2.7 allows only the one
    /// one-bit distance code incomplete).
    #[test]
    fn an_incomplete_distance_code_is_refused_as_zlib_does() {
        let input = hex(
            "0441000441101000ffff000000ffff0000ffff92929292ffffff386e6d6d6d92929292922e9292006800f6ff925b9241101000ffff000000ffff0000ffff92929292ffffff386e6d6d6d9292",
        );
        assert_eq!(inflate_all(&input, input.len(), 1 << 16), Err(InflateError::BadCodeLengths));
        assert_eq!(inflate_all(&input, 1, 16), Err(InflateError::BadCodeLengths));
    }

    #[test]
    fn the_window_bounds_distances_and_persists_across_restart() {
        // Two streams; the second's match refers to the first's bytes (context takeover).
        let first = hex("cb48cdc9c90700"); // "hello", a final fixed block
        let mut z = Inflater::new(8);
        let mut out = [0u8; 64];
        let p = z.inflate(&first, &mut out).unwrap();
        assert_eq!(&out[..p.produced], b"hello");
        // A final fixed block: match of length 5 at distance 5 ("hello" again).
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(1, 2);
        w.put_rev(0b0000011, 7); // symbol 259: length 5
        w.put_rev(4, 5); // distance code 4: 5-6, one extra bit
        w.put(0, 1);
        w.put_rev(0, 7); // end of block
        let second = w.finish();
        z.restart();
        let p = z.inflate(&second, &mut out).unwrap();
        assert_eq!(&out[..p.produced], b"hello");
        assert!(p.done);
        // After a reset (no context takeover) the same match reaches before the start.
        z.reset();
        assert_eq!(z.inflate(&second, &mut out), Err(InflateError::DistanceTooFar));
    }

    /// Text-like and binary-like data of many shapes, compressed by miniz_oxide at every level
    /// (dynamic blocks, long matches, overlapping matches, stored blocks), inflates to itself
    /// whole, byte by byte, and into a 3-byte output buffer.
    #[test]
    fn round_trips_with_the_reference_compressor() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words: [&[u8]; 6] =
            [b"{\"type\":", b"\"message\"", b",\"seq\":", b"weir ", b"}\n", b"a"];
        for case in 0..24 {
            let len = (next() % 40_000) as usize;
            let mut data = Vec::with_capacity(len);
            while data.len() < len {
                match case % 4 {
                    0 => data.extend_from_slice(words[(next() % 6) as usize]),
                    1 => data.push(next() as u8),
                    2 => data.push(b'x'),
                    _ => data.extend_from_slice(&next().to_le_bytes()[..(next() % 3) as usize]),
                }
            }
            for level in [0u8, 1, 6, 10] {
                let packed = miniz_oxide::deflate::compress_to_vec(&data, level);
                for (chunk, room) in [(packed.len().max(1), 1 << 17), (1, 1 << 17), (4096, 3)] {
                    if chunk == 1 && case % 8 != 0 {
                        continue;
                    }
                    let got = inflate_all(&packed, chunk, room);
                    assert!(
                        got.as_deref() == Ok(&data[..]),
                        "case {case} level {level} chunk {chunk}"
                    );
                }
            }
        }
    }

    /// Writes bits least significant first; `put_rev` writes a Huffman code most significant
    /// bit first (§3.1.1).
    #[derive(Default)]
    pub(super) struct BitWriter {
        bytes: Vec<u8>,
        bit: u32,
    }

    impl BitWriter {
        pub(super) fn put(&mut self, v: u32, n: u32) {
            for i in 0..n {
                if self.bit == 0 {
                    self.bytes.push(0);
                }
                if let Some(last) = self.bytes.last_mut() {
                    *last |= (((v >> i) & 1) as u8) << self.bit;
                }
                self.bit = (self.bit + 1) % 8;
            }
        }
        pub(super) fn put_rev(&mut self, code: u32, n: u32) {
            for i in (0..n).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
        pub(super) fn finish(self) -> Vec<u8> {
            self.bytes
        }
    }
}
