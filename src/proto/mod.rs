//! The sans-IO RFC 6455 core: bytes in, events and bytes out, in caller-owned buffers.
//!
//! Nothing here names a socket, a clock or a thread; time is an argument (`now`, a
//! [`core::time::Duration`] since any epoch the driver picks). This module builds with `core` and
//! `alloc` only (`cargo build --no-default-features`).

#![forbid(unsafe_code)]

pub mod close;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod mask;

pub mod message;
pub mod transcript;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{Config, Connection, Event, MessageKind, Role, State, Timeout};
pub use error::{BufferTooSmall, HandshakeError, ProtocolError, Status};
pub use frame::{FrameHeader, Opcode};

#[cfg(test)]
mod tests;
