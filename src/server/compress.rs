//! permessage-deflate (RFC 7692) on the runtime's connections: what the operator chose, the
//! negotiation at the upgrade, and each connection's inflater and (dedicated mode) compressor.
//!
//! The core marks compressed messages and writes RSV1 (`proto::Connection::set_compression`);
//! inflating and deflating happen here, in buffers the connection holds only while it has them.

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
    fn policy(&self) -> Policy {
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
}

/// One server connection's compression state.
#[derive(Debug)]
pub struct Pmd {
    /// Inflates what the client sends.
    pub inflate: MessageInflater,
    /// Compresses what this end sends (dedicated mode; shared mode uses the runtime's).
    pub deflate: Option<Deflater>,
    /// Messages shorter than this go out uncompressed.
    pub min_size: usize,
}

impl Pmd {
    /// The state for a server connection with what was `agreed`.
    pub fn server(agreed: &Agreed, c: &Compression, max_message_size: u64) -> Self {
        let inflate = MessageInflater::new(
            agreed.client_max_window_bits,
            !agreed.client_no_context_takeover,
            max_message_size,
        );
        // The shared compressor uses a 32 KiB window: a client that asked for a smaller one
        // (`server_max_window_bits`) gets one of its own, with no context either.
        let bits = agreed.server_max_window_bits;
        let deflate = if !agreed.server_no_context_takeover {
            Some(Deflater::new(bits, true))
        } else if bits < 15 {
            Some(Deflater::new(bits, false))
        } else {
            None
        };
        Self { inflate, deflate, min_size: c.min_size }
    }
}
