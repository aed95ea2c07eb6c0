//! Connection slots addressed by generational keys.
//!
//! A [`Slab`] stores values in a `Vec` of slots and hands out a [`Key`] per value: the slot's
//! index plus the slot's generation. Removing a value bumps its slot's generation, so a key kept
//! after removal (for example the token of a mio event that arrives for a connection closed
//! earlier in the same batch) matches nothing, even once the slot holds a new value. Freed slots
//! are reused last-in first-out through a free list threaded through the vacant slots themselves,
//! so a warm slab never allocates.
//!
//! A key packs into a mio token with [`Key::to_token`]. Slab keys always have a generation of at
//! least 1, so every token below 2^32 is free for the runtime's own registrations (listeners, the
//! signal pipe) and [`Key::from_token`] of such a token matches no slot. Generations stay below
//! 2^31, so a slab token never has bit 63 set: the runtime marks the tokens of child-process pipes
//! with it (`server::process`), and the two kinds can never be confused.

use core::fmt;

// Tokens put the generation in the upper 32 bits of a `usize`.
const _: () = assert!(usize::BITS >= 64, "slab tokens need a 64-bit usize");

/// The most slots a slab can have: index `u32::MAX` is the free list's end marker.
const MAX_SLOTS: usize = u32::MAX as usize;

/// Marks the end of the free list.
const NIL: u32 = u32::MAX;

/// The generation of a slot that has never held a value. Generation 0 is never used, so tokens
/// below 2^32 are never slab tokens.
const FIRST_GENERATION: u32 = 1;

/// The largest generation: after it a slot starts again at [`FIRST_GENERATION`], so bit 63 of a
/// token is never set by a slab key (process tokens use it).
const MAX_GENERATION: u32 = (1 << 31) - 1;

/// The address of one value in a [`Slab`]: a slot index and the slot's generation.
///
/// A key stays valid until its value is removed; after that it matches nothing, even once the
/// slot holds a new value (until the slot's generation wraps around after 2^31 - 1 reuses).
///
/// Keys order by slot index first (the field order): visiting keys in order walks the slab's
/// memory front to back, which the CPU's prefetcher follows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    index: u32,
    generation: u32,
}

/// Values addressed by generational [`Key`]s, with O(1) insert, lookup and remove.
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The most recently freed vacant slot, or [`NIL`].
    free_head: u32,
    len: usize,
}

/// An iterator over the occupied slots of a [`Slab`], from [`Slab::iter`].
pub struct Iter<'a, T> {
    slots: core::iter::Enumerate<core::slice::Iter<'a, Slot<T>>>,
    remaining: usize,
}

/// A mutable iterator over the occupied slots of a [`Slab`], from [`Slab::iter_mut`].
pub struct IterMut<'a, T> {
    slots: core::iter::Enumerate<core::slice::IterMut<'a, Slot<T>>>,
    remaining: usize,
}

/// An iterator over the keys of the occupied slots of a [`Slab`], from [`Slab::keys`].
///
/// It knows its exact length, so `collect` allocates once.
pub struct Keys<'a, T> {
    inner: Iter<'a, T>,
}

impl Key {
    /// Packs the key into a mio token: the generation in the upper 32 bits, the index below.
    ///
    /// A slab token is always at least 2^32, because generations start at 1.
    pub fn to_token(self) -> usize {
        // Lossless: `usize` has at least 64 bits (asserted above).
        ((self.generation as usize) << 32) | self.index as usize
    }

    /// Unpacks a token made by [`Key::to_token`].
    ///
    /// Any `usize` is accepted. A token below 2^32 (one the runtime reserved for itself) gives a
    /// key of generation 0, which no slab ever issues, so it matches no slot.
    pub fn from_token(token: usize) -> Key {
        Key {
            // Truncation intended: the index is the low 32 bits.
            index: token as u32,
            generation: (token >> 32) as u32,
        }
    }

    /// The index of the key's slot.
    pub fn index(self) -> u32 {
        self.index
    }
}

/// `INDEX.GENERATION`: unique among the keys a slab hands out (until a slot's generation wraps
/// after 2^31 - 1 reuses), and short enough to read in a log line.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}v{})", self.index, self.generation)
    }
}

impl<T> Slab<T> {
    /// Makes an empty slab that allocates nothing until the first insert.
    pub fn new() -> Self {
        Slab { slots: Vec::new(), free_head: NIL, len: 0 }
    }

    /// Makes an empty slab with room for `capacity` values before it reallocates.
    ///
    /// # Panics
    ///
    /// Like [`Vec::with_capacity`], if the allocation's size would exceed `isize::MAX` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Slab { slots: Vec::with_capacity(capacity.min(MAX_SLOTS)), free_head: NIL, len: 0 }
    }

    /// Stores `value` and returns its key, reusing the most recently freed slot if there is one.
    ///
    /// # Panics
    ///
    /// If the slab already holds `u32::MAX` values, as [`Vec::push`] panics when its capacity
    /// overflows. Use [`Slab::try_insert`] to get the value back instead.
    pub fn insert(&mut self, value: T) -> Key {
        match self.try_insert(value) {
            Ok(key) => key,
            Err(_) => panic!("slab full: {MAX_SLOTS} values"),
        }
    }

    /// Stores `value` and returns its key, or gives the value back if all `u32::MAX` slots are
    /// occupied.
    ///
    /// # Errors
    ///
    /// `Err(value)` if the slab is full.
    pub fn try_insert(&mut self, value: T) -> Result<Key, T> {
        if let Some(slot) = self.slots.get_mut(self.free_head as usize) {
            let index = self.free_head;
            let Entry::Vacant { next_free } = slot.entry else {
                // The free list only links vacant slots; finding an occupied one would mean a
                // broken invariant, and refusing is better than overwriting a live value.
                return Err(value);
            };
            self.free_head = next_free;
            slot.entry = Entry::Occupied(value);
            self.len += 1;
            return Ok(Key { index, generation: slot.generation });
        }
        let Ok(index) = u32::try_from(self.slots.len()) else {
            return Err(value);
        };
        if index == NIL {
            return Err(value);
        }
        self.slots.push(Slot { generation: FIRST_GENERATION, entry: Entry::Occupied(value) });
        self.len += 1;
        Ok(Key { index, generation: FIRST_GENERATION })
    }

    /// The value stored under `key`, or `None` if the key is stale or was never issued.
    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Slot { generation, entry: Entry::Occupied(value) })
                if *generation == key.generation =>
            {
                Some(value)
            }
            _ => None,
        }
    }

    /// The value stored under `key`, mutably, or `None` if the key is stale or was never issued.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(Slot { generation, entry: Entry::Occupied(value) })
                if *generation == key.generation =>
            {
                Some(value)
            }
            _ => None,
        }
    }

    /// Whether `key` addresses a stored value.
    pub fn contains(&self, key: Key) -> bool {
        self.get(key).is_some()
    }

    /// Takes the value stored under `key` out of the slab, or returns `None` if the key is stale
    /// or was never issued.
    ///
    /// The slot's generation moves on, so `key` (and every copy of it) stops matching.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || !matches!(slot.entry, Entry::Occupied(_)) {
            return None;
        }
        let vacant = Entry::Vacant { next_free: self.free_head };
        let Entry::Occupied(value) = core::mem::replace(&mut slot.entry, vacant) else {
            return None;
        };
        slot.generation = match slot.generation {
            MAX_GENERATION.. => FIRST_GENERATION,
            g => g + 1,
        };
        self.free_head = key.index;
        self.len -= 1;
        Some(value)
    }

    /// The number of stored values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slab holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stored values and their keys, in slot order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { slots: self.slots.iter().enumerate(), remaining: self.len }
    }

    /// The stored values, mutably, and their keys, in slot order.
    pub fn iter_mut(&mut self) -> IterMut<'_, T> {
        IterMut { slots: self.slots.iter_mut().enumerate(), remaining: self.len }
    }

    /// The keys of the stored values, in slot order.
    ///
    /// To remove values while walking them, collect first: `slab.keys().collect::<Vec<_>>()`
    /// allocates exactly once.
    pub fn keys(&self) -> Keys<'_, T> {
        Keys { inner: self.iter() }
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = (Key, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        for (index, slot) in self.slots.by_ref() {
            if let Entry::Occupied(value) = &slot.entry {
                self.remaining = self.remaining.saturating_sub(1);
                return Some((slot.key(index), value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T> Iterator for IterMut<'a, T> {
    type Item = (Key, &'a mut T);

    fn next(&mut self) -> Option<Self::Item> {
        for (index, slot) in self.slots.by_ref() {
            let key = slot.key(index);
            if let Entry::Occupied(value) = &mut slot.entry {
                self.remaining = self.remaining.saturating_sub(1);
                return Some((key, value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for IterMut<'_, T> {}

impl<T> Iterator for Keys<'_, T> {
    type Item = Key;

    fn next(&mut self) -> Option<Key> {
        self.inner.next().map(|(key, _)| key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> ExactSizeIterator for Keys<'_, T> {}

impl<'a, T> IntoIterator for &'a Slab<T> {
    type Item = (Key, &'a T);
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut Slab<T> {
    type Item = (Key, &'a mut T);
    type IntoIter = IterMut<'a, T>;

    fn into_iter(self) -> IterMut<'a, T> {
        self.iter_mut()
    }
}

/// One slot: its current generation and what it holds.
struct Slot<T> {
    /// The generation of the slot's current value if occupied, or of its next value if vacant.
    generation: u32,
    entry: Entry<T>,
}

enum Entry<T> {
    Occupied(T),
    /// A free slot, linking to the slot freed before it (or [`NIL`]).
    Vacant {
        next_free: u32,
    },
}

impl<T> Slot<T> {
    /// The key of this slot's current value; `index` is the slot's position in the slab.
    fn key(&self, index: usize) -> Key {
        Key {
            // Lossless: a slab never has more than `MAX_SLOTS` slots.
            index: index as u32,
            generation: self.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut slab = Slab::with_capacity(4);
        assert!(slab.is_empty());
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.get(b), Some(&"b"));
        if let Some(v) = slab.get_mut(b) {
            *v = "B";
        }
        assert_eq!(slab.remove(b), Some("B"));
        assert_eq!(slab.remove(b), None);
        assert_eq!(slab.len(), 1);
        assert!(slab.contains(a));
        assert!(!slab.contains(b));
        assert_eq!(slab.remove(a), Some("a"));
        assert!(slab.is_empty());
    }

    #[test]
    fn keys_order_by_slot_index_whatever_the_generation() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        slab.remove(a);
        let c = slab.insert('c'); // slot 0 again, a later generation
        assert!(c.generation > a.generation);
        assert!(c < b, "slot 0 sorts before slot 1 even with a newer generation");
        assert!(a < c, "the same slot: by generation");
        let mut sorted = vec![b, c];
        sorted.sort();
        assert_eq!(sorted, [c, b]);
    }

    #[test]
    fn freed_slots_are_reused_lifo() {
        let mut slab = Slab::new();
        let keys: Vec<Key> = (0..4).map(|i| slab.insert(i)).collect();
        slab.remove(keys[1]);
        slab.remove(keys[3]);
        assert_eq!(slab.insert(10).index(), 3);
        assert_eq!(slab.insert(11).index(), 1);
        assert_eq!(slab.insert(12).index(), 4);
    }

    #[test]
    fn stale_key_rejected_after_reuse() {
        let mut slab = Slab::new();
        let old = slab.insert(1);
        slab.remove(old);
        let new = slab.insert(2);
        assert_eq!(new.index(), old.index());
        assert_ne!(new, old);
        assert_eq!(slab.get(old), None);
        assert_eq!(slab.get_mut(old), None);
        assert!(!slab.contains(old));
        assert_eq!(slab.remove(old), None);
        assert_eq!(slab.get(new), Some(&2));
    }

    #[test]
    fn unknown_keys_rejected() {
        let mut slab = Slab::new();
        slab.insert(1);
        let beyond = Key::from_token((1 << 32) | 7);
        assert_eq!(slab.get(beyond), None);
        assert_eq!(slab.remove(beyond), None);
        // A reserved token (below 2^32) has generation 0, which no slot ever has.
        assert_eq!(slab.get(Key::from_token(0)), None);
    }

    #[test]
    fn token_round_trip() {
        let mut slab = Slab::new();
        for i in 0..100 {
            let key = slab.insert(i);
            if i % 3 == 0 {
                slab.remove(key);
            }
        }
        let key = slab.insert(1000);
        let token = key.to_token();
        assert!(token >= 1 << 32, "slab tokens leave 0..2^32 to the runtime");
        assert_eq!(Key::from_token(token), key);
        assert_eq!(slab.get(Key::from_token(token)), Some(&1000));
        for token in [0, 1, 15, u32::MAX as usize, usize::MAX] {
            assert_eq!(Key::from_token(token).to_token(), token);
        }
    }

    #[test]
    fn generation_skips_zero_on_wrap() {
        let mut slab = Slab::new();
        let key = slab.insert(());
        if let Some(slot) = slab.slots.get_mut(0) {
            slot.generation = MAX_GENERATION;
        }
        let key = Key { generation: MAX_GENERATION, ..key };
        assert!(key.to_token() < 1 << 63, "bit 63 is left to process tokens");
        assert_eq!(slab.remove(key), Some(()));
        let next = slab.insert(());
        assert_eq!(next.generation, FIRST_GENERATION);
        assert!(next.to_token() >= 1 << 32);
    }

    #[test]
    fn iteration_skips_vacant_slots() {
        let mut slab = Slab::new();
        let keys: Vec<Key> = (0..6).map(|i| slab.insert(i)).collect();
        slab.remove(keys[0]);
        slab.remove(keys[2]);
        slab.remove(keys[5]);
        let seen: Vec<(Key, i32)> = slab.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(seen, vec![(keys[1], 1), (keys[3], 3), (keys[4], 4)]);
        assert_eq!(slab.iter().len(), 3);
        for (_, v) in slab.iter_mut() {
            *v *= 10;
        }
        assert_eq!(slab.get(keys[4]), Some(&40));
        let collected: Vec<Key> = slab.keys().collect();
        assert_eq!(collected, vec![keys[1], keys[3], keys[4]]);
        assert_eq!(slab.keys().size_hint(), (3, Some(3)));
        for key in collected {
            slab.remove(key);
        }
        assert_eq!(slab.iter().next(), None);
    }

    #[test]
    fn many_inserts_and_removes() {
        let mut slab = Slab::with_capacity(1024);
        let mut live: Vec<(Key, u32)> = Vec::new();
        let mut dead: Vec<Key> = Vec::new();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..100_000_u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            if live.len() < 1000 && (live.is_empty() || rng % 3 != 0) {
                live.push((slab.insert(i), i));
            } else {
                let (key, value) = live.swap_remove((rng >> 8) as usize % live.len());
                assert_eq!(slab.remove(key), Some(value));
                dead.push(key);
            }
        }
        assert_eq!(slab.len(), live.len());
        assert!(slab.slots.len() <= 1000, "freed slots are reused");
        for (key, value) in &live {
            assert_eq!(slab.get(*key), Some(value));
        }
        for key in &dead {
            assert_eq!(slab.get(*key), None);
        }
        assert_eq!(slab.iter().count(), live.len());
    }
}
