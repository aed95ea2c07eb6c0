//! A hash map for ids this process hands out itself ([`ConnId`](super::ConnId)s, a tunnel's
//! stream ids), looked up on every relayed message. The standard map's SipHash costs about a
//! hundred instructions per lookup; a multiply-rotate hash (rustc's `FxHasher`, as `rustc-hash`
//! 2 finishes it) costs a few. Each map draws a random seed (from std's `RandomState`, the OS's
//! randomness) that enters every key by XOR, so where a peer does pick the keys (at an agent, the
//! stream ids are its controller's) it cannot aim them at one bucket without knowing it; and the
//! live keys are capped there (`max_streams`). Still, do not key an [`IdMap`] by names or
//! addresses: use the standard map.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A map from ids; see the module docs.
pub type IdMap<K, V> = HashMap<K, V, IdBuild>;

/// An [`IdMap`] with nothing in it, and a seed of its own.
pub fn id_map<K, V>() -> IdMap<K, V> {
    HashMap::with_hasher(IdBuild::new())
}

/// The hashers of one [`IdMap`]: its random seed.
#[derive(Debug, Clone, Copy)]
pub struct IdBuild {
    seed: u64,
}

impl IdBuild {
    /// A random seed, from std's `RandomState` (the OS's randomness).
    pub fn new() -> Self {
        Self { seed: RandomState::new().hash_one(0x5eed_u64) }
    }
}

impl Default for IdBuild {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for IdBuild {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { h: 0, seed: self.seed }
    }
}

/// The multiply-rotate hash of integer ids.
#[derive(Debug, Clone, Copy)]
pub struct IdHasher {
    h: u64,
    seed: u64,
}

/// The multiplier: fixed and odd (a random one may spread badly; the seed varies instead).
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
        // The seed enters by XOR, which does not commute with the multiplication: ids a peer
        // picks to collide under one seed do not under another.
        self.h = self.h.wrapping_add(n ^ self.seed).wrapping_mul(K);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        // The product's entropy is in its high bits; the table takes its index from the low.
        self.h.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    /// Buckets of a 2^`bits` table the keys fill, under the map of each of 64 fixed seeds
    /// (deterministic: a test of the hash, not of one draw of the OS's randomness), the fewest.
    fn low_bits<T: std::hash::Hash>(keys: impl Iterator<Item = T> + Clone, bits: u32) -> usize {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        (0..64)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let b = IdBuild { seed };
                keys.clone()
                    .map(|k| b.hash_one(k) & ((1 << bits) - 1))
                    .collect::<HashSet<_>>()
                    .len()
            })
            .min()
            .unwrap_or(0)
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
        // A ConnId is (index, generation): consecutive indexes, a few generations. The worst
        // of the 64 seeds fills 5,906 buckets (a random hash about 7,500); with one seed drawn
        // per run, a bar of 6,000 failed about one run in a few hundred.
        let used = low_bits((0..10_000u32).map(|i| (i, 1 + i % 3)), 14);
        assert!(used > 5_000, "{used} buckets of 16,384 for 10,000 slab keys");
    }

    // Two maps hash a key apart: a peer that learns where one put its keys learns nothing of
    // another's (the seeds are equal with odds of 2^-64).
    #[test]
    fn each_map_has_a_seed_of_its_own() {
        let (a, b) = (IdBuild::new(), IdBuild::new());
        assert_ne!(a.hash_one(7u64), b.hash_one(7u64));
        assert_eq!(a.hash_one(7u64), a.hash_one(7u64));
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
