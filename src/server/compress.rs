//! permessage-deflate (RFC 7692) on the runtime's connections, accepted and outbound: what the
//! operator chose, the negotiation at the upgrade, and each connection's inflater and (dedicated
//! mode) compressor.
//!
//! The core marks compressed messages and writes RSV1 (`proto::Connection::set_compression`);
//! inflating and deflating happen here, in buffers the connection holds only while it has them.

use crate::proto::Role;

use crate::proto::deflate::Deflater;
use crate::proto::extension::{self, Agreed, MessageInflater, Offer, Policy};
use crate::proto::http::Headers;

/// How messages are compressed, as the operator chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One compressor for every connection, with no context kept between messages
    /// (`server_no_context_takeover`, and the client is asked for the same): no compression
    /// memory held per connection between messages.
    Shared,
    /// A compressor per connection that keeps its context (a window of `2^bits` bytes): the
    /// best ratio for chatty connections, at its memory.
    Dedicated {
        /// The server's window, 8 to 15.
        bits: u8,
    },
}

/// The compression settings of the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Shared or dedicated.
    pub mode: Mode,
    /// Messages shorter than this go out uncompressed (their compressed form saves little and
    /// costs a pass).
    pub min_size: usize,
}

impl Compression {
    /// What this end agrees to, in either role: a shared compressor keeps no context and asks
    /// the peer for the same (so neither side holds a window between messages).
    pub fn policy(&self) -> Policy {
        match self.mode {
            Mode::Shared => Policy {
                max_window_bits: 15,
                no_context_takeover: true,
                peer_no_context_takeover: true,
            },
            Mode::Dedicated { bits } => Policy {
                max_window_bits: bits,
                no_context_takeover: false,
                peer_no_context_takeover: false,
            },
        }
    }

    /// The server's choice among a request's offers (RFC 7692 §5: the first it can accept),
    /// with the `Sec-WebSocket-Extensions` value to answer; `None` declines (no offer, or a
    /// header that is not the grammar: the extension is then simply not used).
    pub fn negotiate(&self, fields: Headers<'_, '_>) -> Option<(Agreed, String)> {
        let policy = self.policy();
        let mut chosen: Option<(Agreed, Offer)> = None;
        extension::parse_offers(fields.all("sec-websocket-extensions"), |offer| {
            if chosen.is_none() {
                if let Ok(o) = offer {
                    chosen = policy.accept(&o).map(|a| (a, o));
                }
            }
        })
        .ok()?;
        let (agreed, offer) = chosen?;
        let mut value = String::new();
        agreed.write(&offer, &mut value);
        Some((agreed, value))
    }

    /// A server connection's state for a request's offers, with the answer to write into its
    /// 101; `None` declines.
    pub fn accept(
        &self,
        fields: Headers<'_, '_>,
        max_message_size: u64,
    ) -> Option<(Box<Pmd>, String)> {
        let (agreed, value) = self.negotiate(fields)?;
        Some((Box::new(Pmd::new(Role::Server, &agreed, max_message_size)), value))
    }

    /// A client's offer, as a `Sec-WebSocket-Extensions` value (RFC 7692 §5).
    pub fn offer(&self) -> String {
        let mut value = String::new();
        self.policy().write_offer(&mut value);
        value
    }
}

/// One connection's compression state.
#[derive(Debug)]
pub struct Pmd {
    /// Inflates what the client sends.
    pub inflate: MessageInflater,
    /// Compresses what this end sends (dedicated mode; shared mode uses the runtime's).
    pub deflate: Option<Deflater>,
    /// A deferred upgrade's `Sec-WebSocket-Extensions` answer, written into its 101 when the
    /// handler accepts it (`Context::accept`).
    pub answer: Option<String>,
    /// Nothing here lasts from one message to the next (no context either way, the shared
    /// compressor, a 32 KiB window from the peer): the connection keeps no state between
    /// messages, and one is made for each compressed message it receives ([`Pmd::transient`]).
    pub transient: bool,
}

impl Pmd {
    /// The state for a connection in `role` with what was `agreed`.
    pub fn new(role: Role, agreed: &Agreed, max_message_size: u64) -> Self {
        // RFC 7692 §7.1: `server_*` parameters are the server's sending side, `client_*` the
        // client's.
        let (in_bits, in_reset, out_bits, out_reset) = match role {
            Role::Server => (
                agreed.client_max_window_bits,
                agreed.client_no_context_takeover,
                agreed.server_max_window_bits,
                agreed.server_no_context_takeover,
            ),
            Role::Client => (
                agreed.server_max_window_bits,
                agreed.server_no_context_takeover,
                agreed.client_max_window_bits,
                agreed.client_no_context_takeover,
            ),
        };
        let inflate = MessageInflater::new(in_bits, !in_reset, max_message_size);
        // The shared compressor uses a 32 KiB window: a peer that asked for a smaller one
        // (`server_max_window_bits`, `client_max_window_bits`) gets one of its own, with no
        // context either.
        let deflate = if !out_reset {
            Some(Deflater::new(out_bits, true))
        } else if out_bits < 15 {
            Some(Deflater::new(out_bits, false))
        } else {
            None
        };
        let transient = in_reset && in_bits == 15 && deflate.is_none();
        Self { inflate, deflate, answer: None, transient }
    }

    /// The state of a connection whose agreement keeps none between messages, for one message.
    pub fn transient(role: Role, max_message_size: u64) -> Self {
        let agreed = Agreed {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        Self::new(role, &agreed, max_message_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    #[test]
    fn only_a_state_that_lasts_nothing_between_messages_is_transient() {
        let max = 1 << 20;
        // The shared mode as browsers, Node ws and python websockets negotiate it.
        assert!(Pmd::new(Role::Server, &agreed(true, true, 15, 15), max).transient);
        assert!(Pmd::new(Role::Client, &agreed(true, true, 15, 15), max).transient);
        // A smaller window asked of the server: a compressor of its own.
        let small = Pmd::new(Role::Server, &agreed(true, true, 10, 15), max);
        assert!(!small.transient && small.deflate.is_some());
        // A smaller window from the peer: inflated with that window, to refuse what is beyond.
        assert!(!Pmd::new(Role::Server, &agreed(true, true, 15, 10), max).transient);
        // A client that promised a smaller window compresses with one of its own.
        assert!(!Pmd::new(Role::Client, &agreed(true, true, 15, 10), max).transient);
        // Context kept either way: the dedicated mode.
        assert!(!Pmd::new(Role::Server, &agreed(false, true, 15, 15), max).transient);
        assert!(!Pmd::new(Role::Server, &agreed(true, false, 15, 15), max).transient);
    }
}
