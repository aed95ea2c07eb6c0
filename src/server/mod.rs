//! The runtime: one thread, one mio event loop driving [`crate::proto`] connections.
//!
//! Connection slots carry a generation in their token (stale events are ignored), buffers are
//! leased from a pool only while a connection holds partial input or unsent output, timers live
//! on a hashed timing wheel, child processes' pipes are sources of the same poll, and an
//! application plugs in through [`Handler`].
//!
//! What an embedder uses is re-exported here: [`Server`] and its [`Config`], the [`Handler`]
//! an application implements and the [`Context`] it acts with, the ids ([`ConnId`], [`ProcId`],
//! [`Tag`]) and the values passed both ways, the [`Request`] that `on_request` and
//! `on_upgrade` get among them. `examples/custom_app.rs` is a whole application.
//!
//! An application's state about one connection (who it is, what it subscribed to) lives in the
//! runtime: a handler is a `Handler<D>`, and [`Context::data`] hands back the connection's `D`
//! by id in any callback (a tick, a process's output, another connection's message). It is
//! `D::default()` when the connection is made and is dropped after the connection's last
//! callback (`on_close` still has it). `D` defaults to `()`, which costs nothing per
//! connection; another `D` costs its size once per connection slot used.
//! The rest (slots, timers, the buffer pool, queues, signals) is the runtime's own.

mod api;
mod batch;
mod children;
pub mod compress;
mod config;
mod conn;
mod core;
mod data;
mod dispatch;
mod event_loop;
mod handler;
mod idmap;
#[doc(hidden)]
pub mod lines;
mod listen;
mod outbound;
mod outq;
mod payload;
mod pool;
mod process;
mod random;
mod request;
mod signal;
mod slab;
mod state;
pub(crate) mod stats;
mod tcp;
mod timer;
#[cfg(feature = "tls")]
mod tls;
mod transport;
#[doc(hidden)]
pub mod url;
#[doc(hidden)]
pub mod words;

pub use api::{ConnId, ConnectError, ConnectRequest, Connected, Decision, Request, Response, Tag};
pub use compress::{Compression, Mode};
pub use config::Config;
pub use event_loop::Server;
pub use handler::{Context, Handler};
pub use idmap::{IdBuild, IdHasher, IdMap, id_map};
pub use mio::Waker;
pub use process::{InputError, ProcId, Signal, Stream};
pub use stats::Stats;
