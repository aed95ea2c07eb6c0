//! The application's data per connection (`Handler<D>`): one `D` per connection slot, kept
//! beside the slots rather than in them, so that an application without any (`D = ()`, a
//! zero-sized type) pays nothing, and one with some pays `size_of::<D>()` per slot it used.

use crate::server::slab::Key;

/// The `D` of every connection slot, by slot index.
pub(crate) struct ConnData<D> {
    /// Made (`D::default()`) up to the highest slot index asked for; a slot's value is taken
    /// and dropped when its connection is removed.
    live: Vec<D>,
    /// The value of the connection being removed, while the handler is told (`on_close`,
    /// `on_stream_closed`): its slot may already hold a new connection meanwhile.
    gone: Option<(Key, D)>,
}

impl<D> Default for ConnData<D> {
    fn default() -> Self {
        Self { live: Vec::new(), gone: None }
    }
}

impl<D: Default> ConnData<D> {
    /// The value of slot `key` (`live` says whether the key names a connection now).
    pub(crate) fn get(&mut self, key: Key, live: bool) -> Option<&mut D> {
        if matches!(&self.gone, Some((k, _)) if *k == key) {
            return self.gone.as_mut().map(|(_, d)| d);
        }
        if !live {
            return None;
        }
        let i = key.index() as usize;
        if self.live.len() <= i {
            // Bounded by the slots, hence by the connection limit; never per message.
            self.live.resize_with(i + 1, D::default);
        }
        self.live.get_mut(i)
    }

    /// Takes the value of a connection being removed out of its slot (the slot holds
    /// `D::default()` again), and keeps it reachable for the calls about the removal until
    /// [`ConnData::forget`]. Returns what it replaced, for `forget`.
    pub(crate) fn remove(&mut self, key: Key) -> Option<(Key, D)> {
        let value = self.live.get_mut(key.index() as usize).map(std::mem::take);
        std::mem::replace(&mut self.gone, value.map(|d| (key, d)))
    }

    /// Drops the removed connection's value (after its last call) and restores `outer`.
    pub(crate) fn forget(&mut self, outer: Option<(Key, D)>) {
        self.gone = outer;
    }
}
