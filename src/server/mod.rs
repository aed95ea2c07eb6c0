//! The runtime: one thread, one mio event loop driving [`crate::proto`] connections.
//!
//! Connection slots carry a generation in their token (stale events are ignored), buffers are
//! leased from a pool only while a connection holds partial input or unsent output, timers live
//! on a hashed timing wheel, child processes' pipes are sources of the same poll, and an
//! application plugs in through [`Handler`].

mod batch;
pub mod compress;
pub mod config;
mod conn;
pub mod core;
pub mod event_loop;
pub mod handler;
pub mod lines;
mod outbound;
pub mod outq;
mod payload;
pub mod pool;
pub mod process;
mod random;
mod request;
pub mod signal;
pub mod slab;
pub mod stats;
pub mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod url;
pub mod words;

pub use config::Config;
pub use event_loop::Server;
pub use handler::{ConnId, ConnectError, ConnectRequest, Context, Decision, Handler, Response};
pub use mio::Waker;
pub use process::{InputError, ProcId, Signal, Stream};
pub use stats::Stats;
