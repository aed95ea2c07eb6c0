//! Buffers leased to connections only while they hold data, and returned when they go idle, so
//! an idle connection owns no buffer (the memory goal: a few hundred bytes per idle
//! connection). The pool also keeps the running total of the bytes every connection has
//! queued (each queue's pieces come from it and go back to it), for `--max-queued-total`.

/// A free list of byte buffers of one size.
#[derive(Debug)]
pub struct Pool {
    free: Vec<Vec<u8>>,
    size: usize,
    max_free: usize,
    /// What all queues hold (`OutQueue::held`: unsent bytes and a slot per piece; `OutQueue`
    /// adds and subtracts as it grows and shrinks; a shared piece counts in each queue it is in).
    queued: usize,
}

impl Pool {
    /// A pool of buffers of `size` bytes that keeps at most `max_free` of them when they are
    /// returned.
    pub fn new(size: usize, max_free: usize) -> Self {
        Self { free: Vec::new(), size, max_free, queued: 0 }
    }

    /// The size of every buffer this pool leases.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A cleared buffer with at least `size` bytes of capacity.
    pub fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Returns a buffer; one of another capacity (grown, or foreign) is freed instead.
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == self.size && self.free.len() < self.max_free {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// What all the queues that use this pool hold (`OutQueue::held` summed).
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub(crate) fn add_queued(&mut self, n: usize) {
        self.queued += n;
    }

    pub(crate) fn sub_queued(&mut self, n: usize) {
        self.queued = self.queued.saturating_sub(n);
    }

    /// Buffers held for reuse.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}
