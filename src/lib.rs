//! weir: a WebSocket engine and server.
//!
//! [`proto`] is a sans-IO RFC 6455 core (frames, masking, UTF-8, close codes, the HTTP/1.1
//! upgrade and the connection state machine, for servers and clients). It performs no I/O and
//! reads no clock, so anything can drive it. With the default `server` feature the crate adds
//! [`server`], a single-threaded mio runtime to embed (`examples/custom_app.rs`).
//!
//! The applications behind the `weir` binary (hub, HTTP API, proxy, exec, agents, client, the
//! access policy, flags, logging) are modules of this crate for the binary's sake, hidden from
//! these docs: they are not an API, and may change with any release.

#![cfg_attr(not(feature = "server"), no_std)]

extern crate alloc;

#[doc(hidden)]
pub mod json;
pub mod proto;
#[doc(hidden)]
pub mod redis;

#[cfg(feature = "server")]
#[doc(hidden)]
pub mod access;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod agent;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod app;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod broadcast;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod client;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod exec;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod http;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod hub;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod log;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod proxy;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod tunnel;
