//! The reverse tunnel's core (issue 18): many streams multiplexed over one WebSocket between a
//! controller and an agent, each with its own credit, as a sans-IO codec ([`codec`]) and state
//! machine ([`session`]). `docs/tunnel.md` describes the wire format and the flow control.
//!
//! Nothing here reads a socket or a clock; `src/tunnel/` runs it in the binary.
//!
//! # Example: a controller opens a stream to an agent's `web` target
//!
//! ```
//! use core::time::Duration;
//! use weir::proto::tunnel::{Config, Event, MAX_CONTROL_LEN, MAX_MESSAGE_LEN, Role, Session};
//!
//! let now = Duration::ZERO;
//! let mut controller = Session::new(Role::Controller, Config::default(), &[]);
//! let mut agent = Session::new(Role::Agent, Config::default(), &["web"]);
//! let mut buf = vec![0u8; MAX_MESSAGE_LEN];
//!
//! let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
//! let (id, n) = controller.open_stream("web", false, head, now, &mut buf).unwrap();
//! let Ok(Some(Event::Opened { target: "web", .. })) = agent.handle_message(&buf[..n]) else {
//!     panic!()
//! };
//! let n = agent.accept(id, b"HTTP/1.1 200 OK\r\n\r\n", &mut buf).unwrap();
//! assert!(matches!(controller.handle_message(&buf[..n]), Ok(Some(Event::Accepted { .. }))));
//!
//! // The agent sends the body within the credit the OPEN granted.
//! let sent = agent.send_data(id, b"hello", &mut buf).unwrap();
//! let Ok(Some(Event::Data { data, .. })) = controller.handle_message(&buf[..sent.len]) else {
//!     panic!()
//! };
//! assert_eq!(data, b"hello");
//! controller.consume(id, data.len()).unwrap();
//! // Nothing owed yet: the window is granted back once half of it was consumed.
//! assert_eq!(controller.poll_transmit(&mut [0; MAX_CONTROL_LEN]), None);
//! ```

pub mod codec;
pub mod session;

pub use codec::{
    MAX_CONTROL_LEN, MAX_MESSAGE_LEN, MAX_PAYLOAD, MAX_WINDOW, Message, ResetCause, StreamId,
    WireError,
};
pub use session::{Config, Event, Role, SendError, Sent, Session, TunnelError};

#[cfg(test)]
mod tests;
