//! The one way the runtime calls its handler: `Server::call` (`event_loop.rs`), told what the
//! call is about
//! (an [`Owner`]: a connection, a process, or the loop itself) and how the work it is part of
//! ends ([`Then`]).
//!
//! What a call is about carries the tag the handler gave it ([`crate::server::Tag`]), so the
//! handler reads the tag back in the callback with `Context::tag` even when the connection
//! or process is gone (`on_close`, `on_process_exit`), and what it makes meanwhile (an outbound
//! connection, a child) inherits the tag unless the handler names another
//! (`Context::tag_new`).

use crate::server::api::Tag;
use crate::server::slab::Key;

/// What a handler callback is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The loop itself: start, tick, wake.
    Loop,
    /// A connection, with its tag when the call began.
    Conn(Key, Tag),
    /// A child process, with its tag when the call began.
    Proc(Key, Tag),
}

/// How the work a handler call is part of ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// The call is a batch of work of its own: what it gathered and queued is flushed after
    /// it (`Server::flush_dirty`: batches queued, connections settled).
    Flush,
    /// The call is part of a larger batch of work (a connection's reads, an answer being
    /// built, a connection being removed), whose caller flushes when the batch ends.
    Continue,
}
