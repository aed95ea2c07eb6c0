//! The little of RFC 6455 the load generator needs: SHA-1 and base64 for the accept key, the
//! client request and response check, frame headers, and the sent-frame template with its
//! sequence tag and the echo check.

/// The GUID of RFC 6455 §1.3.
pub const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// One fixed masking key for every client frame (fine for a benchmark; the server unmasks anyway).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The key sent by every connection (RFC 6455's own example).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Longest HTTP response head accepted.
pub const MAX_HEAD: usize = 8192;

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        s.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    s
}

pub fn accept_key(key: &str) -> String {
    let mut v = key.as_bytes().to_vec();
    v.extend_from_slice(GUID);
    base64(&sha1(&v))
}

/// `--offer-deflate`: every upgrade offers permessage-deflate as browsers do (for the idle
/// scenario: what a server keeps per connection once it agreed the extension).
pub static OFFER_DEFLATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The upgrade request every connection sends.
pub fn request(host: &str, path: &str) -> Vec<u8> {
    let offer = if OFFER_DEFLATE.load(std::sync::atomic::Ordering::Relaxed) {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
    .into_bytes()
}

/// Length of the response head (through the blank line), if complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Checks a response head: status 101 and the right `Sec-WebSocket-Accept`.
pub fn check_response(head: &[u8], accept: &str) -> Result<(), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("expected 101, got status line {status:?}"));
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("sec-websocket-accept") {
                return if value.trim() == accept {
                    Ok(())
                } else {
                    Err(format!("bad Sec-WebSocket-Accept {:?} (expected {accept:?})", value.trim()))
                };
            }
    }
    Err("101 without Sec-WebSocket-Accept".into())
}

/// The value of header `name` (lower case) in a response head.
pub fn header_value(head: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Appends a frame header (FIN set).
pub fn encode_header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}

/// XORs `data` with `key`, `data[0]` being payload byte `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

/// A whole frame (FIN set), masked with `mask` if given.
pub fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_header(&mut out, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        apply_mask(&mut out[start..], k, 0);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    pub opcode: u8,
    /// RSV1: a permessage-deflate message (its payload is the compressed form).
    pub compressed: bool,
    pub mask: Option<[u8; 4]>,
    pub header_len: usize,
    pub payload_len: usize,
}

/// Parses a frame header (2 to 14 bytes); `Ok(None)` when more bytes are needed.
pub fn parse_header(b: &[u8]) -> Result<Option<Header>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    // RSV1 is permessage-deflate's "compressed" bit (RFC 7692 §6); the engine refuses it
    // unless the extension was agreed. RSV2 and RSV3 are never set.
    if b[0] & 0x30 != 0 {
        return Err(format!("reserved bits set in frame header (byte 0 = {:#04x})", b[0]));
    }
    let compressed = b[0] & 0x40 != 0;
    let fin = b[0] & 0x80 != 0;
    let opcode = b[0] & 0x0F;
    if compressed && !(opcode == OP_TEXT || opcode == OP_BINARY) {
        return Err(format!("RSV1 on a frame of opcode {opcode} (RFC 7692 §6: only a message's first frame)"));
    }
    let masked = b[1] & 0x80 != 0;
    let (len, mut n) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([b[2], b[3]]) as u64, 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(a), 10)
        }
        l => (l as u64, 2),
    };
    if len >> 63 != 0 {
        return Err("64-bit frame length with the top bit set".into());
    }
    if opcode >= 8 && (len > 125 || !fin) {
        return Err(format!("bad control frame (opcode {opcode}, length {len}, fin {fin})"));
    }
    let mask = if masked {
        if b.len() < n + 4 {
            return Ok(None);
        }
        let k = [b[n], b[n + 1], b[n + 2], b[n + 3]];
        n += 4;
        Some(k)
    } else {
        None
    };
    let payload_len = usize::try_from(len).map_err(|_| "frame too long".to_string())?;
    Ok(Some(Header { fin, opcode, compressed, mask, header_len: n, payload_len }))
}

/// Tag bytes: 6 bits of the sequence number each, as printable ASCII without `"` and `\\`
/// (0x23..=0x5B, 0x5D..=0x63): valid UTF-8 for text, and inside a JSON string for `--deflate`.
pub fn encode_tag(seq: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let v = ((seq >> (6 * i)) & 63) as u8;
        *b = if v < 57 { 0x23 + v } else { 0x5D + (v - 57) };
    }
}

pub fn decode_tag(tag: &[u8]) -> Option<u64> {
    let mut seq = 0u64;
    for (i, &b) in tag.iter().enumerate() {
        let v = match b {
            0x23..=0x5B => b - 0x23,
            0x5D..=0x63 => b - 0x5D + 57,
            _ => return None,
        };
        seq |= (v as u64) << (6 * i);
    }
    Some(seq)
}

/// The tail a permessage-deflate sender leaves off each message (RFC 7692 §7.2.1).
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// A JSON text of exactly `size` bytes (at least 128) that compresses as chat traffic does
/// (about 3 to 4 x with zlib): `{"id":"TAG…","type":"chat","messages":[{…},…]}` with users,
/// timestamps, scores and words drawn from a fixed pseudo-random sequence. The 8 bytes at
/// [`JSON_TAG_AT`] are the sequence tag.
pub fn json_payload(size: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "hello", "weir", "socket", "server", "message", "room", "lobby", "deploy", "build", "green",
        "red", "latency", "window", "frame", "deflate", "inflate", "json", "event", "publish",
        "channel", "history", "queue", "token", "client", "browser", "proxy", "agent", "metrics",
        "ok", "done", "retry", "again",
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::from("{\"id\":\"00000000\",\"type\":\"chat\",\"messages\":[");
    let close = "\"}]}";
    loop {
        let r = next();
        let mut item = format!(
            "{{\"user\":\"{}{}\",\"ts\":{},\"score\":0.{:04},\"text\":\"",
            WORDS[(r % 32) as usize],
            (r >> 8) % 10_000,
            1_733_480_000_000u64 + (r >> 20) % 100_000_000,
            (r >> 40) % 10_000
        );
        for _ in 0..3 + next() % 6 {
            item.push_str(WORDS[(next() % 32) as usize]);
            item.push(' ');
        }
        item.push_str("\"},");
        // Room for this item and a last one of at least 40 bytes.
        if s.len() + item.len() + 40 + close.len() > size {
            break;
        }
        s.push_str(&item);
    }
    // The last item's text fills the message to exactly `size` bytes.
    s.push_str("{\"user\":\"weir\",\"text\":\"");
    while s.len() + close.len() < size {
        let w = WORDS[(next() % 32) as usize];
        let room = size - close.len() - s.len();
        if w.len() < room {
            s.push_str(w);
            s.push(' ');
        } else {
            s.push_str(&"z".repeat(room));
        }
    }
    s.push_str(close);
    debug_assert_eq!(s.len(), size);
    s.into_bytes()
}

/// Where the tag sits in [`json_payload`].
pub const JSON_TAG_AT: usize = 7;

/// The one client frame of a given size and kind, built and masked once; each send copies it
/// (or points at it) and patches only the masked tag.
pub struct Template {
    pub opcode: u8,
    pub size: usize,
    pub tag_len: usize,
    /// Where the tag is in the (uncompressed) payload.
    pub tag_off: usize,
    /// Where the tag is in the frame's payload (after a stored block's 5-byte header when
    /// compressed).
    tag_wire: usize,
    /// Client header length (with the masking key).
    pub header_len: usize,
    /// The masked frame, tagged with sequence 0.
    pub frame: Vec<u8>,
    /// The unmasked payload, tagged with sequence 0.
    pub payload: Vec<u8>,
    /// Sequence numbers are compared modulo this (2^(6 * tag_len)).
    pub modulus: u64,
    /// The frame is permessage-deflate compressed (RSV1).
    pub compressed: bool,
    /// `--deflate`: [`VARIANTS`] different messages (frame, payload, header length), sequence `seq` being
    /// variant `seq % VARIANTS`; empty otherwise (every message is `frame`).
    variants: Vec<(Vec<u8>, Vec<u8>, usize)>,
}

/// `--deflate` sends this many different JSON messages in turn: more than a 32 KiB window
/// holds at 1 KiB, so a compressor that keeps its context finds the structure and words of the
/// messages before, not the same message again (which would compress an echo to a few bytes).
pub const VARIANTS: u64 = 64;

impl Template {
    pub fn new(opcode: u8, size: usize) -> Template {
        let tag_len = size.min(8);
        let mut payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        encode_tag(0, &mut payload[..tag_len]);
        let frame = encode_frame(opcode, &payload, Some(MASK));
        let header_len = frame.len() - size;
        Template {
            opcode,
            size,
            tag_len,
            tag_off: 0,
            tag_wire: 0,
            header_len,
            frame,
            payload,
            modulus: 1u64 << (6 * tag_len),
            compressed: false,
            variants: Vec::new(),
        }
    }

    /// A permessage-deflate message (RFC 7692 §7.2.1) of [`json_payload`]`(size)`, compressed
    /// once: a stored block holds the JSON up to the end of the tag (so a send patches the tag
    /// as in a plain frame), then the rest compressed by zlib on its own (no distance reaches
    /// back into the tag), ended by a sync flush whose empty stored block (the tail) is
    /// stripped. Its blocks are never final, so it is valid whether or not the server keeps the
    /// client's context.
    pub fn deflated(opcode: u8, size: usize) -> Result<Template, String> {
        if !(128..=32 << 10).contains(&size) {
            return Err("--deflate sizes are 128 B to 32 KiB".into());
        }
        let tag_len = 8;
        let head = JSON_TAG_AT + tag_len;
        let mut variants = Vec::new();
        for v in 0..VARIANTS {
            let mut payload = json_payload(size, v);
            encode_tag(0, &mut payload[JSON_TAG_AT..head]);
            // RFC 1951 §3.2.4: BFINAL 0, BTYPE 00, padded to the byte; LEN, NLEN little-endian.
            let mut z = vec![0u8];
            z.extend_from_slice(&(head as u16).to_le_bytes());
            z.extend_from_slice(&(!(head as u16)).to_le_bytes());
            z.extend_from_slice(&payload[..head]);
            let mut c = flate2::Compress::new(flate2::Compression::default(), false);
            let mut rest = Vec::with_capacity(size + 64);
            c.compress_vec(&payload[head..], &mut rest, flate2::FlushCompress::Sync).map_err(|e| format!("deflate: {e}"))?;
            if c.total_in() as usize != size - head || !rest.ends_with(&DEFLATE_TAIL) {
                return Err("deflate: the template did not compress whole".into());
            }
            rest.truncate(rest.len() - DEFLATE_TAIL.len());
            z.extend_from_slice(&rest);
            let mut frame = encode_frame(opcode, &z, Some(MASK));
            frame[0] |= 0x40; // RSV1: compressed (RFC 7692 §6)
            let header_len = frame.len() - z.len();
            variants.push((frame, payload, header_len));
        }
        let (frame, payload, header_len) = variants[0].clone();
        Ok(Template {
            opcode,
            size,
            tag_len,
            tag_off: JSON_TAG_AT,
            tag_wire: 5 + JSON_TAG_AT,
            header_len,
            frame,
            payload,
            modulus: 1u64 << (6 * tag_len),
            compressed: true,
            variants,
        })
    }

    /// The frame of message `seq` (tagged with sequence 0).
    fn frame_of(&self, seq: u64) -> &[u8] {
        if self.variants.is_empty() { &self.frame } else { &self.variants[(seq % VARIANTS) as usize].0 }
    }

    /// The unmasked payload of message `seq` (tagged with sequence 0).
    fn payload_of(&self, seq: u64) -> &[u8] {
        if self.variants.is_empty() { &self.payload } else { &self.variants[(seq % VARIANTS) as usize].1 }
    }

    /// The mean length of the frames sent.
    pub fn mean_frame_len(&self) -> f64 {
        if self.variants.is_empty() {
            return self.frame.len() as f64;
        }
        self.variants.iter().map(|v| v.0.len()).sum::<usize>() as f64 / self.variants.len() as f64
    }

    /// Writes the masked tag of `seq` into `slot` (the tag's bytes of a copy of `frame`).
    fn patch(&self, seq: u64, slot: &mut [u8]) {
        encode_tag(seq, slot);
        apply_mask(slot, MASK, self.tag_wire);
    }

    /// Appends the frame carrying `seq` to `out`.
    pub fn append(&self, seq: u64, out: &mut Vec<u8>) {
        let frame = self.frame_of(seq);
        let hl = if self.variants.is_empty() { self.header_len } else { self.variants[(seq % VARIANTS) as usize].2 };
        let s = out.len() + hl + self.tag_wire;
        out.extend_from_slice(frame);
        self.patch(seq, &mut out[s..s + self.tag_len]);
    }

    /// Header and tag of the frame carrying `seq`; the rest is `frame[prefix_len()..]`.
    pub fn prefix(&self, seq: u64) -> [u8; 32] {
        let mut p = [0u8; 32];
        let n = self.prefix_len();
        p[..n].copy_from_slice(&self.frame[..n]);
        let s = self.header_len + self.tag_wire;
        self.patch(seq, &mut p[s..n]);
        p
    }

    pub fn prefix_len(&self) -> usize {
        self.header_len + self.tag_wire + self.tag_len
    }

    /// Checks one echoed frame: kind, length, masking (`raw`: our masked frame comes back as
    /// sent), sequence `expected` and every byte of `payload`, which is the whole payload or
    /// (with `--check-every`) its first bytes, at least the tag.
    pub fn check_echo(&self, h: &Header, payload: &[u8], raw: bool, expected: u64) -> Result<(), String> {
        if h.opcode != self.opcode || !h.fin {
            return Err(format!(
                "echo has opcode {} fin {} (expected opcode {} fin true; fragmented echoes are not supported)",
                h.opcode, h.fin, self.opcode
            ));
        }
        if h.payload_len != self.size {
            return Err(format!("echo has {} bytes, expected {}", h.payload_len, self.size));
        }
        let (tl, n) = (self.tag_len, payload.len());
        let te = self.tag_off + tl;
        if n < te || n > self.size {
            return Err(format!("internal: checking {n} bytes of a {}-byte echo", self.size));
        }
        let mut tag = [0u8; 8];
        let want_payload = self.payload_of(expected);
        let rest_ok;
        let mut first_bad = None;
        match (h.mask, raw) {
            (None, false) => {
                // The bytes before the tag (the JSON's head with --deflate), the tag, the rest.
                tag[..tl].copy_from_slice(&payload[self.tag_off..te]);
                rest_ok = payload[..self.tag_off] == want_payload[..self.tag_off] && payload[te..] == want_payload[te..n];
                if !rest_ok {
                    first_bad = mismatch(&payload[..self.tag_off], &want_payload[..self.tag_off])
                        .or_else(|| mismatch(&payload[te..], &want_payload[te..n]).map(|i| i + te));
                }
            }
            (_, true) if self.compressed => return Err("--raw is not for compressed frames".into()),
            (Some(k), true) if k == MASK => {
                tag[..tl].copy_from_slice(&payload[..tl]);
                apply_mask(&mut tag[..tl], k, 0);
                let want = &self.frame[self.header_len + tl..self.header_len + n];
                rest_ok = payload[tl..] == *want;
                if !rest_ok {
                    first_bad = mismatch(&payload[tl..], want).map(|i| i + tl);
                }
            }
            (Some(k), true) => {
                let mut p = payload.to_vec();
                apply_mask(&mut p, k, 0);
                tag[..tl].copy_from_slice(&p[..tl]);
                rest_ok = p[tl..] == self.payload[tl..n];
                if !rest_ok {
                    first_bad = mismatch(&p[tl..], &self.payload[tl..n]).map(|i| i + tl);
                }
            }
            (Some(_), false) => return Err("masked frame from the server".into()),
            (None, true) => return Err("unmasked frame in --raw mode (expected our masked frame back)".into()),
        }
        if tl > 0 {
            let want = expected % self.modulus;
            match decode_tag(&tag[..tl]) {
                None => return Err(format!("corrupted sequence tag {:?} (expected seq {want})", &tag[..tl])),
                Some(got) if got != want => {
                    let what = if got < want { "duplicated or reordered" } else { "lost or reordered" };
                    return Err(format!("echo {what}: got seq {got}, expected {want}"));
                }
                Some(_) => {}
            }
        }
        if !rest_ok {
            return Err(format!("corrupted echo payload at byte {} (seq {expected})", first_bad.unwrap_or(0)));
        }
        Ok(())
    }
}

fn mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_and_accept_key() {
        assert_eq!(base64(&sha1(b"abc")), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        // more than one SHA-1 block
        let long = vec![b'a'; 1000];
        assert_eq!(base64(&sha1(&long)), "KR6abGaZSUm1e6XmUDYemPw2sbo=");
    }

    #[test]
    fn response_check() {
        let ok = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nsec-websocket-accept: {}\r\n\r\n", accept_key(KEY));
        assert_eq!(head_end(ok.as_bytes()), Some(ok.len()));
        assert!(check_response(ok.as_bytes(), &accept_key(KEY)).is_ok());
        assert!(check_response(b"HTTP/1.1 400 Bad\r\n\r\n", &accept_key(KEY)).is_err());
        assert!(check_response(b"HTTP/1.1 101 S\r\nSec-WebSocket-Accept: x\r\n\r\n", &accept_key(KEY)).is_err());
    }

    #[test]
    fn header_round_trip_all_lengths() {
        for (len, hl) in [(0usize, 2usize), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 20, 10)] {
            for mask in [None, Some(MASK)] {
                let mut out = Vec::new();
                encode_header(&mut out, OP_BINARY, len, mask);
                let h = parse_header(&out).unwrap().unwrap();
                assert_eq!(h.header_len, hl + if mask.is_some() { 4 } else { 0 });
                assert_eq!((h.payload_len, h.mask, h.opcode, h.fin), (len, mask, OP_BINARY, true));
                // every strict prefix asks for more
                for n in 0..out.len() {
                    assert_eq!(parse_header(&out[..n]).unwrap(), None);
                }
            }
        }
        assert!(parse_header(&[0xA2, 0]).is_err()); // RSV2
        assert!(parse_header(&[0x92, 0]).is_err()); // RSV3
        assert!(parse_header(&[0xC2, 0]).unwrap().unwrap().compressed); // RSV1: permessage-deflate
        assert!(parse_header(&[0xC9, 0]).is_err()); // RSV1 on a ping
        assert!(parse_header(&[0x09, 0]).is_err()); // fragmented ping
        assert!(parse_header(&[0x89, 126, 0, 126]).is_err()); // long ping
    }

    #[test]
    fn frame_masking() {
        let f = encode_frame(OP_TEXT, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(f, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        assert_eq!(encode_frame(OP_TEXT, b"Hello", None), [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
    }

    #[test]
    fn tags() {
        let mut t = [0u8; 8];
        for seq in [0u64, 1, 63, 64, 12345678901, (1 << 48) - 1] {
            encode_tag(seq, &mut t);
            assert!(std::str::from_utf8(&t).is_ok());
            assert_eq!(decode_tag(&t), Some(seq));
        }
        assert_eq!(decode_tag(&[0x80]), None);
    }

    /// The server's unmasked echo of the frame carrying `seq`.
    fn server_echo(t: &Template, seq: u64) -> Vec<u8> {
        let mut f = Vec::new();
        t.append(seq, &mut f);
        let h = parse_header(&f).unwrap().unwrap();
        let mut p = f[h.header_len..].to_vec();
        apply_mask(&mut p, MASK, 0);
        encode_frame(t.opcode, &p, None)
    }

    fn check(t: &Template, frame: &[u8], raw: bool, expected: u64) -> Result<(), String> {
        let h = parse_header(frame).unwrap().unwrap();
        assert_eq!(frame.len(), h.header_len + h.payload_len);
        t.check_echo(&h, &frame[h.header_len..], raw, expected)
    }

    #[test]
    fn template_frames_are_what_is_sent() {
        for size in [0usize, 3, 8, 64, 200, 70000] {
            let t = Template::new(OP_BINARY, size);
            let mut a = Vec::new();
            t.append(42, &mut a);
            let p = t.prefix(42);
            assert_eq!(&a[..t.prefix_len()], &p[..t.prefix_len()]);
            assert_eq!(&a[t.prefix_len()..], &t.frame[t.prefix_len()..]);
            let h = parse_header(&a).unwrap().unwrap();
            let mut payload = a[h.header_len..].to_vec();
            apply_mask(&mut payload, MASK, 0);
            assert_eq!(decode_tag(&payload[..t.tag_len]), Some(if size == 0 { 0 } else { 42 % t.modulus }));
        }
    }

    #[test]
    fn head_check_sees_sequence_and_head_bytes() {
        let t = Template::new(OP_BINARY, 10_000);
        let f = server_echo(&t, 7);
        let h = parse_header(&f).unwrap().unwrap();
        let head = |f: &[u8]| f[h.header_len..h.header_len + 4096].to_vec();
        t.check_echo(&h, &head(&f), false, 7).unwrap();
        let e = t.check_echo(&h, &head(&server_echo(&t, 8)), false, 7).unwrap_err();
        assert!(e.contains("lost or reordered"), "{e}");
        let mut bad = f.clone();
        bad[h.header_len + 100] ^= 1;
        let e = t.check_echo(&h, &head(&bad), false, 7).unwrap_err();
        assert!(e.contains("at byte 100"), "{e}");
        // A short echo is caught by its header's length alone.
        let short = encode_frame(OP_BINARY, &vec![b'a'; 9_999], None);
        let hs = parse_header(&short).unwrap().unwrap();
        assert!(t.check_echo(&hs, &short[hs.header_len..hs.header_len + 4096], false, 7).is_err());
    }

    #[test]
    fn seq_check_detects_reorder_dup_loss_and_corruption() {
        let t = Template::new(OP_TEXT, 64);
        // in order
        for seq in 0..5 {
            check(&t, &server_echo(&t, seq), false, seq).unwrap();
        }
        // reorder / loss: 6 arrives when 5 is expected
        let e = check(&t, &server_echo(&t, 6), false, 5).unwrap_err();
        assert!(e.contains("lost or reordered"), "{e}");
        // duplicate: 4 again when 5 is expected
        let e = check(&t, &server_echo(&t, 4), false, 5).unwrap_err();
        assert!(e.contains("duplicated"), "{e}");
        // corruption past the tag
        let mut bad = server_echo(&t, 5);
        let n = bad.len();
        bad[n - 1] ^= 1;
        let e = check(&t, &bad, false, 5).unwrap_err();
        assert!(e.contains("corrupted echo payload at byte 63"), "{e}");
        // corruption in the tag
        let mut bad = server_echo(&t, 5);
        bad[2] = 0xFF;
        assert!(check(&t, &bad, false, 5).unwrap_err().contains("corrupted sequence tag"));
        // wrong kind, wrong length, masked from a server
        let b = Template::new(OP_BINARY, 64);
        assert!(check(&t, &server_echo(&b, 5), false, 5).is_err());
        assert!(check(&t, &server_echo(&Template::new(OP_TEXT, 63), 5), false, 5).is_err());
        let mut sent = Vec::new();
        t.append(5, &mut sent);
        assert!(check(&t, &sent, false, 5).unwrap_err().contains("masked frame from the server"));
    }

    #[test]
    fn raw_mode_checks_our_masked_frames() {
        let t = Template::new(OP_BINARY, 16384);
        let mut sent = Vec::new();
        t.append(7, &mut sent);
        check(&t, &sent, true, 7).unwrap();
        assert!(check(&t, &sent, true, 8).unwrap_err().contains("duplicated or reordered"));
        assert!(check(&t, &sent, true, 6).unwrap_err().contains("lost or reordered"));
        let mut bad = sent.clone();
        bad[1000] ^= 0x40;
        assert!(check(&t, &bad, true, 7).unwrap_err().contains("corrupted echo payload"));
        // an unmasked echo is wrong in raw mode
        assert!(check(&t, &server_echo(&t, 7), true, 7).is_err());
        // another mask key is unmasked and checked too
        let h = parse_header(&sent).unwrap().unwrap();
        let mut p = sent[h.header_len..].to_vec();
        apply_mask(&mut p, MASK, 0);
        let other = encode_frame(OP_BINARY, &p, Some([1, 2, 3, 4]));
        check(&t, &other, true, 7).unwrap();
    }

    #[test]
    fn small_sizes_use_short_tags() {
        let t = Template::new(OP_BINARY, 2);
        assert_eq!(t.modulus, 1 << 12);
        check(&t, &server_echo(&t, 4096 + 3), false, 4096 + 3).unwrap();
        assert!(check(&t, &server_echo(&t, 4), false, 3).is_err());
        let z = Template::new(OP_BINARY, 0);
        check(&z, &server_echo(&z, 9), false, 9).unwrap();
    }

    /// The payload of a client frame, unmasked.
    fn unmasked(frame: &[u8]) -> (Header, Vec<u8>) {
        let h = parse_header(frame).unwrap().unwrap();
        let mut p = frame[h.header_len..].to_vec();
        apply_mask(&mut p, h.mask.unwrap(), 0);
        (h, p)
    }

    fn zinflate(z: &mut flate2::Decompress, p: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 << 10);
        z.decompress_vec(&[p, &DEFLATE_TAIL[..]].concat(), &mut out, flate2::FlushDecompress::Sync).unwrap();
        out
    }

    #[test]
    fn json_payload_is_exact_json_that_compresses_like_chat() {
        for size in [128usize, 200, 1024, 4000, 32 << 10] {
            let p = json_payload(size, 3);
            assert_eq!(p.len(), size);
            let s = std::str::from_utf8(&p).unwrap();
            assert!(s.starts_with("{\"id\":\"00000000\"") && s.ends_with("\"}]}"), "{s}");
            assert_eq!(s.matches('"').count() % 2, 0, "{s}");
        }
        assert_ne!(json_payload(1024, 0), json_payload(1024, 1));
        let p = json_payload(1024, 0);
        let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut z = Vec::with_capacity(2048);
        c.compress_vec(&p, &mut z, flate2::FlushCompress::Sync).unwrap();
        let ratio = p.len() as f64 / z.len() as f64;
        assert!((2.0..6.0).contains(&ratio), "1 KiB of JSON compresses {ratio:.2} x");
    }

    #[test]
    fn deflated_template_inflates_to_the_tagged_json_in_either_context_mode() {
        let t = Template::deflated(OP_TEXT, 1024).unwrap();
        assert!(t.compressed && t.frame.len() < 700, "{} bytes on the wire", t.frame.len());
        // One inflater for all messages (the server keeps the client's context) and one per
        // message (it does not): both see each message's JSON with its tag.
        let mut kept = flate2::Decompress::new(false);
        for seq in (0u64..130).chain([123_456_789]) {
            let mut f = Vec::new();
            t.append(seq, &mut f);
            let (h, z) = unmasked(&f);
            assert!(h.compressed && h.fin && h.opcode == OP_TEXT);
            for out in [zinflate(&mut kept, &z), zinflate(&mut flate2::Decompress::new(false), &z)] {
                assert_eq!(out.len(), 1024);
                assert_eq!(decode_tag(&out[JSON_TAG_AT..JSON_TAG_AT + 8]), Some(seq % t.modulus));
                assert!(std::str::from_utf8(&out).is_ok());
                let plain = Header { compressed: false, mask: None, payload_len: out.len(), ..h };
                t.check_echo(&plain, &out, false, seq).unwrap();
                let e = t.check_echo(&plain, &out, false, seq + 1).unwrap_err();
                assert!(e.contains("duplicated or reordered"), "{e}");
                let mut bad = out.clone();
                bad[3] ^= 1;
                assert!(t.check_echo(&plain, &bad, false, seq).unwrap_err().contains("at byte 3"));
                let mut bad = out.clone();
                bad[1000] ^= 1;
                assert!(t.check_echo(&plain, &bad, false, seq).unwrap_err().contains("at byte 1000"));
                // Another variant's JSON with this sequence's tag is caught.
                let mut other = t.payload_of(seq + 1).to_vec();
                other[JSON_TAG_AT..JSON_TAG_AT + 8].copy_from_slice(&out[JSON_TAG_AT..JSON_TAG_AT + 8]);
                assert!(t.check_echo(&plain, &other, false, seq).unwrap_err().contains("corrupted echo payload"));
            }
        }
        assert!(Template::deflated(OP_TEXT, 127).is_err());
    }
}
