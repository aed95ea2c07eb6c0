//! weir: a WebSocket engine and server.
//!
//! [`proto`] is a sans-IO RFC 6455 core (frames, masking, UTF-8, close codes, the HTTP/1.1
//! upgrade and the connection state machine, for servers and clients). It performs no I/O and
//! reads no clock, so anything can drive it. With the default `server` feature the crate adds a
//! single-threaded mio runtime and the applications behind the `weir` binary.

#![cfg_attr(not(feature = "server"), no_std)]

extern crate alloc;

pub mod json;
pub mod proto;
pub mod redis;

#[cfg(feature = "server")]
pub mod access;
#[cfg(feature = "server")]
pub mod agent;
#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod broadcast;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod client;
#[cfg(feature = "server")]
pub mod exec;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod hub;
#[cfg(feature = "server")]
pub mod log;
#[cfg(feature = "server")]
pub mod proxy;
#[cfg(feature = "server")]
pub mod server;
