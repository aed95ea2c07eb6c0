//! permessage-deflate (RFC 7692) on the runtime's connections, accepted and outbound: what the
//! operator chose, the negotiation at the upgrade, and each connection's inflater and (dedicated
//! mode) compressor.
//!
//! The core marks compressed messages and writes RSV1 (`proto::Connection::set_compression`);
//! inflating and deflating happen here, in buffers the connection holds only while it has them.

use crate::proto::Role;
use std::rc::Rc;

use crate::proto::connection::{MessageKind, SendError};
use crate::proto::deflate::Deflater;
use crate::proto::extension::{self, Agreed, MessageInflater, Offer, Policy};
use crate::proto::http::Headers;
use crate::server::batch::push_server_frame_rsv;
use crate::server::core::Core;
use crate::server::slab::Key;
use crate::server::state::{ConnState, WsExt};

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

/// The state that inflates the compressed message `conn` is receiving: its own, or one made for
/// the message when it keeps none between messages (`None` without --compression).
pub(crate) fn receiving<'c>(
    ext: &'c mut Option<Box<WsExt>>,
    role: Role,
    config: &crate::server::config::Config,
) -> Option<&'c mut Pmd> {
    if ext.as_ref().and_then(|e| e.pmd.as_ref()).is_none() {
        config.compression?;
        let pmd = Pmd::transient(role, config.ws.max_message_size);
        ext.get_or_insert_with(Box::default).pmd = Some(pmd);
    }
    ext.as_mut()?.pmd.as_mut()
}

/// A compressed message has been received whole: a state made for it goes (so an idle
/// connection in the shared mode holds no compression memory), and the box with it when it
/// holds nothing else.
pub(crate) fn received(ext: &mut Option<Box<WsExt>>) {
    let Some(e) = ext else { return };
    if e.pmd.as_ref().is_some_and(|p| p.transient && p.answer.is_none()) {
        e.pmd = None;
    }
    if e.pmd.is_none() && !e.streaming {
        *ext = None;
    }
}

/// Whether a WebSocket compresses with a compressor of its own (a context kept, or a small
/// window).
fn own_compressor(state: &ConnState) -> bool {
    let ConnState::Ws(w) = state else { return false };
    w.ext.as_ref().and_then(|e| e.pmd.as_ref()).is_some_and(|p| p.deflate.is_some())
}

/// How shared frames go to one connection.
enum Shared {
    /// As they are: it did not agree permessage-deflate, or no message is long enough.
    Plain,
    /// Compressed by the shared compressor (no context, 32 KiB window): the same bytes for every
    /// such connection, so compressed once.
    Packed,
    /// Compressed by its own compressor (its context, or a smaller window), one by one.
    Own,
}

impl Core {
    /// Queues whole server frames, shared (`Core::send_shared`), to `key`: as they are, or
    /// compressed when it agreed permessage-deflate. The shared compressor's form is made once,
    /// at the first connection that takes it, and kept in `packed` for the others: a broadcast
    /// to many connections with the same parameters is compressed once.
    pub(crate) fn send_shared_deflated(
        &mut self,
        key: Key,
        kind: MessageKind,
        piece: &Rc<[u8]>,
        payloads: &[(usize, usize)],
        packed: &mut Option<Rc<[u8]>>,
        at: u64,
    ) -> Result<(), SendError> {
        let how = match (self.config.compression, self.conns.get(key)) {
            (Some(c), Some(conn)) if conn.ws.compression_agreed() => {
                if !payloads.iter().any(|&(s, e)| e - s >= c.min_size) {
                    Shared::Plain
                } else if conn.ws.role() == Role::Client || own_compressor(&conn.state) {
                    Shared::Own
                } else {
                    Shared::Packed
                }
            }
            _ => Shared::Plain,
        };
        match how {
            Shared::Plain => self.send_shared(key, kind, piece, payloads, at),
            Shared::Packed => {
                let p = match packed {
                    Some(p) => Rc::clone(p),
                    None => Rc::clone(packed.insert(self.pack(kind, piece, payloads))),
                };
                self.send_shared(key, kind, &p, payloads, at)
            }
            Shared::Own => {
                for &(start, end) in payloads {
                    self.send(key, kind, piece.get(start..end).unwrap_or_default())?;
                }
                Ok(())
            }
        }
    }

    /// The shared compressor's frames for the messages at `payloads` in `piece`: each at least
    /// `--compression-min-size` long compressed (RSV1 set, RFC 7692 §6), the others as they
    /// are.
    fn pack(&mut self, kind: MessageKind, piece: &[u8], payloads: &[(usize, usize)]) -> Rc<[u8]> {
        let min = self.config.compression.map_or(usize::MAX, |c| c.min_size);
        let deflater = self.shared_deflate.get_or_insert_with(|| Deflater::new(15, false));
        let mut out = Vec::with_capacity(piece.len() / 2 + 64);
        let mut z = Vec::new();
        for &(start, end) in payloads {
            let data = piece.get(start..end).unwrap_or_default();
            let (rsv, payload) = if data.len() < min {
                (0, data)
            } else {
                z.clear();
                deflater.compress_message(data, &mut z);
                self.stats.compressed_messages += 1;
                (0b100, &z[..])
            };
            push_server_frame_rsv(&mut out, kind, payload, rsv);
        }
        Rc::from(out)
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
