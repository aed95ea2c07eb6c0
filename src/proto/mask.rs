//! Payload masking (RFC 6455 §5.3), in place, eight bytes at a time.
//!
//! A payload can arrive over many reads, so the position within the 4-byte key is carried from
//! one call to the next: [`apply_mask`] takes the offset at which this piece starts and returns
//! the offset at which the next piece starts.

/// XORs `buf` in place with `key`, starting `offset` bytes into the key's cycle, and returns the
/// offset for the bytes that follow `buf`.
///
/// Masking and unmasking are the same operation (§5.3: octet i is XORed with key[i mod 4]).
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let offset = offset & 3;
    let key = rotate(key, offset);
    // The key laid twice in memory order, so one XOR masks eight bytes on any endianness.
    let key8 = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word) ^ key8;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
    (offset + buf.len()) & 3
}

/// The key as seen from `offset` bytes into its cycle.
#[inline]
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    [key[offset & 3], key[(offset + 1) & 3], key[(offset + 2) & 3], key[(offset + 3) & 3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn matches_naive_for_every_length_offset_and_split() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            for offset in 0..4 {
                let mut want = data.clone();
                naive(&mut want, key, offset);
                let mut got = data.clone();
                assert_eq!(apply_mask(&mut got, key, offset), (offset + len) % 4);
                assert_eq!(got, want, "len {len} offset {offset}");
                // The same bytes masked in two pieces, carrying the offset.
                for split in 0..=len {
                    let mut got = data.clone();
                    let (a, b) = got.split_at_mut(split);
                    let next = apply_mask(a, key, offset);
                    apply_mask(b, key, next);
                    assert_eq!(got, want, "len {len} offset {offset} split {split}");
                }
            }
        }
    }
}
