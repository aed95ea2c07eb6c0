//! The sans-IO RFC 6455 core: bytes in, events and bytes out, in caller-owned buffers.
//!
//! Nothing here names a socket, a clock or a thread; time is an argument (`now`, a
//! [`core::time::Duration`] since any epoch the driver picks). This module builds with `core` and
//! `alloc` only (`cargo build --no-default-features`).
//!
//! # Example: a server handshake and an echo, with nothing but byte slices
//!
//! ```
//! use core::time::Duration;
//! use weir::proto::handshake::{self, Classified};
//! use weir::proto::http::{self, HeadReader, Header, Limits};
//! use weir::proto::{Config, Connection, Event, Role, Status};
//! use weir::proto::connection::MAX_CONTROL_FRAME_LEN;
//!
//! let now = Duration::ZERO;
//! // What a client sent: the upgrade request and, in the same packet, a masked text frame.
//! let mut input = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n"
//!     .to_vec();
//! input.extend_from_slice(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//!
//! // 1. Find the end of the head (bytes may come in any split; each is scanned once).
//! let limits = Limits::default();
//! let mut reader = HeadReader::new(&limits);
//! let Ok(Status::Complete(head_len)) = reader.feed(&input) else { panic!() };
//!
//! // 2. Parse and validate it, and write the 101 response.
//! let mut slots = [Header::default(); 16];
//! let req = http::parse_request(&input[..head_len], &mut slots, &limits).unwrap();
//! let Ok(Classified::Upgrade(upgrade)) = handshake::classify(&req) else { panic!() };
//! let mut out = [0u8; 256];
//! let n = handshake::write_accept(&mut out, upgrade.key, None, &[]).unwrap();
//! assert!(out[..n].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(out[..n].windows(28).any(|w| w == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
//!
//! // 3. The frames after the head: decode, unmask in place, echo.
//! let mut conn = Connection::new_open(Role::Server, Config::default(), now);
//! let mut frames = input[head_len..].to_vec();
//! let mut reply = Vec::new();
//! let mut pos = 0;
//! while pos < frames.len() {
//!     let (used, event) = conn.handle_bytes(&mut frames[pos..], now).unwrap();
//!     pos += used;
//!     if let Some(Event::Message { kind, data, fin: true }) = event {
//!         let mut buf = [0u8; 64];
//!         let n = conn.send(kind, data, true, &mut buf, [0; 4]).unwrap();
//!         reply.extend_from_slice(&buf[..n]);
//!     }
//!     // Replies the RFC requires (pongs, the close echo) are queued by the core.
//!     let mut ctrl = [0u8; MAX_CONTROL_FRAME_LEN];
//!     while let Some(n) = conn.poll_transmit(&mut ctrl, [0; 4]) {
//!         reply.extend_from_slice(&ctrl[..n]);
//!     }
//! }
//! assert_eq!(reply, b"\x81\x05Hello");
//! ```

#![forbid(unsafe_code)]

pub mod body;
pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod http;
pub mod inflate;
pub mod mask;
pub mod relay;
pub mod resp;
// Test tooling, not part of the embedding contract: the unit tests and the fuzz targets (which
// turn on the `testing` feature) hold the core to its promises with it.
pub mod target;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod transcript;
pub mod tunnel;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{Config, Connection, Event, MessageKind, Role, State, Timeout};
pub use error::{
    BodyError, BufferTooSmall, HandshakeError, HttpError, ProtocolError, ResponseError, Status,
    UpgradeError,
};
pub use frame::{FrameHeader, Opcode};

#[cfg(test)]
mod tests;
