//! A hash map for ids this process hands out itself ([`ConnId`](super::ConnId)s, a tunnel's
//! stream ids), looked up on every relayed message. The standard map's SipHash is keyed
//! against keys an attacker chooses and costs about a hundred instructions per lookup; these
//! keys are never chosen by a peer (a `ConnId` is the runtime's slab index and generation, a
//! stream id the opener's own counter: the controller's at both ends, as an agent opens
//! nothing), so a multiply-rotate hash (rustc's `FxHasher`, as `rustc-hash` 2 finishes it)
//! does. Do not key an [`IdMap`] by anything a peer picks (names, addresses, its ids).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from ids this process assigns; see the module docs.
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An [`IdMap`] with nothing in it.
pub fn id_map<K, V>() -> IdMap<K, V> {
    HashMap::with_hasher(BuildHasherDefault::default())
}

/// The multiply-rotate hash of integer ids (not for keys a peer chooses).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.wrapping_add(n).wrapping_mul(K);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        // The product's entropy is in its high bits; the table takes its index from the low.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn low_bits<T: std::hash::Hash>(keys: impl Iterator<Item = T>, bits: u32) -> usize {
        let b = BuildHasherDefault::<IdHasher>::default();
        keys.map(|k| b.hash_one(k) & ((1 << bits) - 1)).collect::<HashSet<_>>().len()
    }

    // 10,000 keys in a table of 16,384 buckets (the stream cap): a random hash fills about
    // 7,500 of them. One whose low bits followed the key's would fill one for the keys below.
    #[test]
    fn ids_apart_only_in_their_high_bits_spread_over_the_low_bits() {
        let used = low_bits((0..10_000u64).map(|i| i << 32 | 1), 14);
        assert!(used > 6_000, "{used} buckets of 16,384 for 10,000 ids");
    }

    #[test]
    fn slab_keys_spread_over_the_low_bits() {
        // A ConnId is (index, generation): consecutive indexes, a few generations.
        let keys = (0..10_000u32).map(|i| (i, 1 + i % 3));
        assert!(low_bits(keys, 14) > 6_000);
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut m = id_map();
        for i in 0..1000u32 {
            m.insert(2 * i + 1, i);
        }
        assert!((0..1000u32).all(|i| m.get(&(2 * i + 1)) == Some(&i) && !m.contains_key(&(2 * i))));
    }
}
