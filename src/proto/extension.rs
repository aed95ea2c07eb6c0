//! The permessage-deflate extension's negotiation (RFC 7692 §5-7), both roles.
//!
//! A server reads the client's offers ([`parse_offers`]) and picks the first it can accept
//! ([`Policy::accept`]), then writes the answer with [`Agreed::write`]. A client writes its offer
//! with [`Policy::write_offer`] and checks the server's answer with [`check_response`]. The
//! outcome, [`Agreed`], says which window each side compresses with and whether each side keeps
//! its context between messages.

use alloc::vec::Vec;
use core::fmt;

use crate::proto::connection::MessageKind;
use crate::proto::error::ProtocolError;
use crate::proto::inflate::Inflater;
use crate::proto::utf8::Utf8Validator;

/// The extension's name.
pub const NAME: &str = "permessage-deflate";

/// What was agreed, from the point of view of neither side: `server_*` is what the server
/// compresses with (and the client inflates), `client_*` the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compression context after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, 8 to 15 bits (§7.1.2.1; 15 when not named).
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, 8 to 15 bits (§7.1.2.2; 15 when not named).
    pub client_max_window_bits: u8,
}

/// One offer, as a client wrote it (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// The client asks the server to keep no context between messages.
    pub server_no_context_takeover: bool,
    /// The client will keep no context between messages.
    pub client_no_context_takeover: bool,
    /// The largest window the client accepts from the server.
    pub server_max_window_bits: Option<u8>,
    /// `None`: not named, the server may not limit the client's window; `Some(None)`: named
    /// without a value, the server may; `Some(Some(n))`: the client will use at most `n`.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Why an extension header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionError {
    /// Not `token *( ";" token [ "=" ( token / quoted-string ) ] )`, comma-separated
    /// (RFC 6455 §9.1).
    Syntax,
    /// A parameter the extension does not define, one given twice, or a value out of range
    /// (RFC 7692 §7.1: the offer is declined; in a response the client fails the connection).
    BadParameter,
    /// The server answered with an extension the client did not offer, more than one, or
    /// parameters the offer did not allow (§7.1.2).
    NotOffered,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "malformed Sec-WebSocket-Extensions",
            Self::BadParameter => "bad permessage-deflate parameter",
            Self::NotOffered => "extension response does not match the offer",
        })
    }
}

/// What this end will agree to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The largest window this end compresses with (8-15). Smaller: less memory per connection.
    pub max_window_bits: u8,
    /// This end keeps no context between the messages it sends (a shared compressor).
    pub no_context_takeover: bool,
    /// Ask the peer to keep no context between the messages it sends, so this end's inflater
    /// keeps no window between messages.
    pub peer_no_context_takeover: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self { max_window_bits: 15, no_context_takeover: false, peer_no_context_takeover: false }
    }
}

/// Parses every `Sec-WebSocket-Extensions` value (in order) and calls `each` with each
/// permessage-deflate offer, `Err` for one whose parameters are bad (to be declined, §7.1).
/// Other extensions are skipped. A value that is not the header's grammar is an error.
pub fn parse_offers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    mut each: impl FnMut(Result<Offer, ExtensionError>),
) -> Result<(), ExtensionError> {
    for value in values {
        let mut p = Parser { s: value, at: 0 };
        p.list(|name, params| {
            if name.eq_ignore_ascii_case(NAME.as_bytes()) {
                each(offer(params));
            }
        })?;
    }
    Ok(())
}

impl Policy {
    /// The server's choice: the first offer it can accept, or `None` (the extension is not
    /// used). §7.1.1/§7.1.2 decide what may be answered to each parameter.
    pub fn accept(&self, offer: &Offer) -> Option<Agreed> {
        let own = self.max_window_bits.clamp(8, 15);
        let server_max_window_bits = offer.server_max_window_bits.map_or(own, |n| n.min(own));
        let client_max_window_bits = match offer.client_max_window_bits {
            // §7.1.2.2: without the parameter the server may not limit the client.
            None => 15,
            Some(None) => 15,
            Some(Some(n)) => n,
        };
        Some(Agreed {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.peer_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        })
    }

    /// A client's offer, as a `Sec-WebSocket-Extensions` value.
    pub fn write_offer(&self, out: &mut alloc::string::String) {
        use core::fmt::Write;
        out.push_str(NAME);
        if self.no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.peer_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        let own = self.max_window_bits.clamp(8, 15);
        // §7.1.2.2: naming it lets the server limit this end's window; a value promises one.
        if own < 15 {
            let _ = write!(out, "; client_max_window_bits={own}");
        } else {
            out.push_str("; client_max_window_bits");
        }
    }
}

impl Agreed {
    /// The server's answer, as a `Sec-WebSocket-Extensions` value. `offer` is the offer it
    /// accepts: `client_max_window_bits` is named only if the offer allowed it.
    pub fn write(&self, offer: &Offer, out: &mut alloc::string::String) {
        use core::fmt::Write;
        out.push_str(NAME);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 || offer.server_max_window_bits.is_some() {
            let _ = write!(out, "; server_max_window_bits={}", self.server_max_window_bits);
        }
        if offer.client_max_window_bits.is_some() && self.client_max_window_bits < 15 {
            let _ = write!(out, "; client_max_window_bits={}", self.client_max_window_bits);
        }
    }
}

/// A client's check of the server's answer (§7.1): `values` are the response's
/// `Sec-WebSocket-Extensions` lines. `None` when the server declined.
pub fn check_response<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    offered: &Policy,
) -> Result<Option<Agreed>, ExtensionError> {
    let mut agreed = None;
    let mut result = Ok(());
    for value in values {
        let mut p = Parser { s: value, at: 0 };
        p.list(|name, params| {
            if result.is_err() {
                return;
            }
            if !name.eq_ignore_ascii_case(NAME.as_bytes()) || agreed.is_some() {
                // RFC 6455 §9.1: the server may only answer with what was offered, once.
                result = Err(ExtensionError::NotOffered);
                return;
            }
            result = answer(params, offered).map(|a| agreed = Some(a));
        })?;
    }
    result.map(|()| agreed)
}

/// Inflates the compressed messages one end receives, piece by piece as the core hands them
/// out (RFC 7692 §7.2.2): the limit on a message's size and the UTF-8 rule of text apply to
/// what comes out, checked as it comes out, before more memory is spent.
#[derive(Debug, Clone)]
pub struct MessageInflater {
    z: Inflater,
    /// The peer keeps its context between messages: so must this end's window.
    takeover: bool,
    utf8: Utf8Validator,
    len: u64,
    max: u64,
}

/// The tail a sender leaves off each message (§7.2.1), put back before inflating its end.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
/// Output grows by at most this much at a time.
const STEP: usize = 64 << 10;
/// And by at least this much: a first guess of four times the input, doubled while the
/// inflater fills all the room it gets (the room is zeroed before it is written: sized to the
/// message, not to `STEP`, a 1 KiB message costs 1 KiB of it, not 128).
const MIN_STEP: usize = 1 << 10;

impl MessageInflater {
    /// An inflater for a peer that compresses with a window of `2^window_bits` bytes and
    /// keeps (`takeover`) or drops its context between messages, for messages of at most
    /// `max_message_size` bytes once inflated.
    pub fn new(window_bits: u8, takeover: bool, max_message_size: u64) -> Self {
        Self {
            z: Inflater::new(window_bits),
            takeover,
            utf8: Utf8Validator::new(),
            len: 0,
            max: max_message_size,
        }
    }

    /// Inflates one piece of a compressed message of `kind` and appends what it makes to
    /// `out`; `fin` ends the message.
    ///
    /// # Errors
    /// `MessageTooLarge` (1009) as soon as the message inflates past the limit,
    /// `InvalidCompressedData` (1007) for a stream that is not DEFLATE or has bytes after its
    /// end, `InvalidUtf8` (1007) for text that is not UTF-8. The connection is then failed; the
    /// inflater is not to be used again.
    pub fn piece(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        self.feed(kind, data, false, out)?;
        if !fin {
            return Ok(());
        }
        self.feed(kind, &TAIL, true, out)?;
        if kind == MessageKind::Text && !self.utf8.is_complete() {
            return Err(ProtocolError::InvalidUtf8);
        }
        self.len = 0;
        self.utf8 = Utf8Validator::new();
        if !self.takeover {
            self.z.reset();
        } else if self.z.is_done() {
            // A final block ended the stream: the next message starts a new one, on the same
            // window.
            self.z.restart();
        }
        Ok(())
    }

    fn feed(
        &mut self,
        kind: MessageKind,
        mut data: &[u8],
        tail: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ProtocolError> {
        let mut step = data.len().saturating_mul(4).clamp(MIN_STEP, STEP);
        // The last call filled all its room: output may be pending (a match, bits held) even
        // when the input is used up.
        let mut full = false;
        while !data.is_empty() || full {
            if self.z.is_done() {
                // Past the end of the stream only the tail may come (§7.2.2).
                return if tail || data.is_empty() {
                    Ok(())
                } else {
                    Err(ProtocolError::InvalidCompressedData)
                };
            }
            // One byte past the limit is room enough to tell that it was passed.
            let room = usize::try_from(self.max.saturating_sub(self.len).saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(step);
            let at = out.len();
            out.resize(at + room, 0);
            let r = self.z.inflate(data, &mut out[at..]);
            let p = match r {
                Ok(p) => p,
                Err(_) => {
                    out.truncate(at);
                    return Err(ProtocolError::InvalidCompressedData);
                }
            };
            out.truncate(at + p.produced);
            self.len += p.produced as u64;
            if self.len > self.max {
                return Err(ProtocolError::MessageTooLarge);
            }
            if kind == MessageKind::Text {
                self.utf8.feed(&out[at..]).map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            data = &data[p.consumed..];
            if p.done && !tail && (!data.is_empty() || self.z.unused_bytes() > 0) {
                return Err(ProtocolError::InvalidCompressedData);
            }
            full = p.produced == room;
            if full {
                step = (step * 2).min(STEP);
            }
            if p.consumed == 0 && p.produced == 0 && !p.done {
                break;
            }
        }
        Ok(())
    }
}

/// The parameters of an answer, checked against the client's own offer.
fn answer(params: Params<'_>, offered: &Policy) -> Result<Agreed, ExtensionError> {
    let offer = offer(params)?;
    let own = offered.max_window_bits.clamp(8, 15);
    let client_max_window_bits = match offer.client_max_window_bits {
        None => own,
        // §7.1.2.2: a value is required in a response, and must not exceed a promised one.
        Some(None) => return Err(ExtensionError::BadParameter),
        Some(Some(n)) if n > own => return Err(ExtensionError::NotOffered),
        Some(Some(n)) => n,
    };
    if offered.peer_no_context_takeover && !offer.server_no_context_takeover {
        // The client asked for it; a server that does not agree is answered by failing
        // (§7.1.1.1: the server must include it).
        return Err(ExtensionError::NotOffered);
    }
    Ok(Agreed {
        server_no_context_takeover: offer.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover || offered.no_context_takeover,
        server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
        client_max_window_bits,
    })
}

/// The parameters of one permessage-deflate element.
fn offer(params: Params<'_>) -> Result<Offer, ExtensionError> {
    let mut o = Offer::default();
    let mut seen = [false; 4];
    for (name, value) in params {
        const NAMES: [&str; 4] = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ];
        let Some(i) = NAMES.iter().position(|n| name.eq_ignore_ascii_case(n.as_bytes())) else {
            return Err(ExtensionError::BadParameter);
        };
        if core::mem::replace(&mut seen[i], true) {
            return Err(ExtensionError::BadParameter);
        }
        let bits = value.map(window_bits).transpose()?;
        match i {
            0 | 1 if value.is_some() => return Err(ExtensionError::BadParameter),
            0 => o.server_no_context_takeover = true,
            1 => o.client_no_context_takeover = true,
            // §7.1.2.1: server_max_window_bits always has a value.
            2 => o.server_max_window_bits = Some(bits.ok_or(ExtensionError::BadParameter)?),
            _ => o.client_max_window_bits = Some(bits),
        }
    }
    Ok(o)
}

/// §7.1.2: a window size is 8 to 15, in decimal with no leading zero.
fn window_bits(v: Value<'_>) -> Result<u8, ExtensionError> {
    match v.0 {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(ExtensionError::BadParameter),
    }
}

/// A parameter's value with any quotes removed (quoted-pairs are refused: no valid value
/// needs one).
#[derive(Clone, Copy)]
struct Value<'a>(&'a [u8]);

/// The parameters of one element, as parsed (checked for syntax already).
#[derive(Clone, Copy)]
struct Params<'a> {
    s: &'a [u8],
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], Option<Value<'a>>);

    fn next(&mut self) -> Option<Self::Item> {
        let mut p = Parser { s: self.s, at: 0 };
        p.ows();
        if !p.eat(b';') {
            return None;
        }
        p.ows();
        let name = p.token().unwrap_or_default();
        p.ows();
        let value = if p.eat(b'=') {
            p.ows();
            p.value().ok()
        } else {
            None
        };
        self.s = &self.s[p.at..];
        Some((name, value))
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Result<&'a [u8], ExtensionError> {
        let start = self.at;
        while self.peek().is_some_and(crate::proto::http::is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(ExtensionError::Syntax);
        }
        Ok(&self.s[start..self.at])
    }

    /// A token or a quoted string of token characters (RFC 6455 §9.1: the value, unquoted,
    /// must be a token).
    fn value(&mut self) -> Result<Value<'a>, ExtensionError> {
        if self.eat(b'"') {
            let v = self.token()?;
            if !self.eat(b'"') {
                return Err(ExtensionError::Syntax);
            }
            return Ok(Value(v));
        }
        self.token().map(Value)
    }

    /// `1#extension`, with empty elements allowed (RFC 9110 §5.6.1); calls `each` with each
    /// name and its parameters.
    fn list(&mut self, mut each: impl FnMut(&'a [u8], Params<'a>)) -> Result<(), ExtensionError> {
        loop {
            self.ows();
            if self.at == self.s.len() {
                return Ok(());
            }
            if self.eat(b',') {
                continue;
            }
            let name = self.token()?;
            let from = self.at;
            loop {
                self.ows();
                if !self.eat(b';') {
                    break;
                }
                self.ows();
                self.token()?;
                self.ows();
                if self.eat(b'=') {
                    self.ows();
                    self.value()?;
                }
            }
            each(name, Params { s: &self.s[from..self.at] });
            self.ows();
            if self.at < self.s.len() && !self.eat(b',') {
                return Err(ExtensionError::Syntax);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn offers(v: &str) -> Result<Vec<Result<Offer, ExtensionError>>, ExtensionError> {
        let mut all = Vec::new();
        parse_offers([v.as_bytes()], |o| all.push(o))?;
        Ok(all)
    }

    use crate::proto::connection::{Config, Connection, Event, Role};
    use crate::proto::deflate::Deflater;
    use crate::proto::frame::{FrameHeader, MAX_HEADER_LEN, Opcode};
    use crate::proto::mask::apply_mask;
    use core::time::Duration;

    const T0: Duration = Duration::from_secs(1);
    const KEY: [u8; 4] = [1, 2, 3, 4];

    /// A client's frame with the given RSV bits.
    fn frame(fin: bool, rsv: u8, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let h =
            FrameHeader { fin, rsv, opcode, mask: Some(KEY), payload_len: payload.len() as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut head);
        let mut out = head[..n].to_vec();
        let at = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[at..], KEY, 0);
        out
    }

    fn packed(d: &mut Deflater, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        d.compress_message(data, &mut out);
        out
    }

    #[test]
    fn output_that_fills_the_room_exactly_or_far_outgrows_the_input_comes_out_whole() {
        // The room grows from four times the input: messages that end on its edge, and ones
        // that inflate hundreds of times their size, in any pieces.
        let mut d = Deflater::new(15, false);
        for size in [0usize, 1, 1023, 1024, 1025, 4096, 4097, 65_536, 65_537, 300_000] {
            let data: Vec<u8> = (0..size).map(|i| b"weir deflate "[i % 13]).collect();
            let z = packed(&mut d, &data);
            for cut in [z.len(), z.len() / 2, 1] {
                let cut = cut.min(z.len());
                let mut m = MessageInflater::new(15, false, 1 << 20);
                let mut out = Vec::new();
                m.piece(MessageKind::Binary, &z[..cut], cut == z.len(), &mut out).unwrap();
                if cut < z.len() {
                    m.piece(MessageKind::Binary, &z[cut..], true, &mut out).unwrap();
                }
                assert_eq!(out.len(), size, "size {size}, cut {cut}");
                assert!(out == data, "size {size}, cut {cut}");
            }
        }
    }

    /// Feeds `input` to a server with compression agreed, in reads of `step` bytes, inflating
    /// compressed messages as their pieces come: the messages, then the error if one came.
    fn receive(
        input: &[u8],
        step: usize,
        max: u64,
    ) -> (Vec<(MessageKind, Vec<u8>)>, Option<ProtocolError>) {
        let mut conn = Connection::new_open(Role::Server, Config::default(), T0);
        conn.set_compression(true);
        let mut z = MessageInflater::new(15, true, max);
        let (mut msgs, mut cur) = (Vec::new(), Vec::new());
        for chunk in input.chunks(step) {
            let mut buf = chunk.to_vec();
            let mut pos = 0;
            while pos < buf.len() {
                let (n, ev) = match conn.handle_bytes(&mut buf[pos..], T0) {
                    Ok(r) => r,
                    Err(e) => return (msgs, Some(e)),
                };
                pos += n;
                if let Some(Event::Message { kind, data, fin }) = ev {
                    if conn.is_compressed() {
                        if let Err(e) = z.piece(kind, data, fin, &mut cur) {
                            return (msgs, Some(e));
                        }
                    } else {
                        cur.extend_from_slice(data);
                    }
                    if fin {
                        msgs.push((kind, core::mem::take(&mut cur)));
                    }
                }
            }
        }
        (msgs, None)
    }

    fn every_split(input: &[u8], max: u64) -> (Vec<(MessageKind, Vec<u8>)>, Option<ProtocolError>) {
        let whole = receive(input, input.len().max(1), max);
        for step in [1, 2, 7, 100] {
            assert_eq!(receive(input, step, max), whole, "step {step}");
        }
        whole
    }

    #[test]
    fn compressed_messages_whole_fragmented_and_plain_between() {
        let mut d = Deflater::new(15, true);
        let json = br#"{"type":"message","data":"weir weir weir weir"}"#;
        let a = packed(&mut d, json);
        let b = packed(&mut d, json);
        let (b1, b2) = b.split_at(b.len() / 2);
        let input = [
            frame(true, 0b100, Opcode::Text, &a),
            frame(true, 0, Opcode::Binary, b"plain"),
            // A compressed message in two fragments: RSV1 on the first only (§6.1).
            frame(false, 0b100, Opcode::Text, b1),
            frame(true, 0, Opcode::Continuation, b2),
        ]
        .concat();
        let (msgs, err) = every_split(&input, 1 << 20);
        assert_eq!(err, None);
        assert_eq!(
            msgs,
            [
                (MessageKind::Text, json.to_vec()),
                (MessageKind::Binary, b"plain".to_vec()),
                (MessageKind::Text, json.to_vec()),
            ]
        );
    }

    #[test]
    fn rsv1_where_it_may_not_be_is_a_protocol_error() {
        let on_continuation =
            [frame(false, 0, Opcode::Text, b"a"), frame(true, 0b100, Opcode::Continuation, b"b")]
                .concat();
        assert_eq!(
            every_split(&on_continuation, 100).1,
            Some(ProtocolError::CompressedContinuation)
        );
        let on_ping = frame(true, 0b100, Opcode::Ping, b"");
        assert_eq!(every_split(&on_ping, 100).1, Some(ProtocolError::CompressedContinuation));
        // RSV2 is still reserved.
        let rsv2 = frame(true, 0b110, Opcode::Text, b"");
        assert_eq!(every_split(&rsv2, 100).1, Some(ProtocolError::ReservedBits));
        // Without the extension RSV1 is reserved too.
        let mut conn = Connection::new_open(Role::Server, Config::default(), T0);
        let mut f = frame(true, 0b100, Opcode::Text, b"x");
        assert_eq!(conn.handle_bytes(&mut f, T0).err(), Some(ProtocolError::ReservedBits));
    }

    #[test]
    fn a_bomb_stops_at_the_limit_and_garbage_and_bad_text_are_refused() {
        // 8 MiB of zeros compresses to a few KiB; the limit is 64 KiB.
        let mut d = Deflater::new(15, false);
        let bomb = packed(&mut d, &vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let input = frame(true, 0b100, Opcode::Binary, &bomb);
        let mut conn = Connection::new_open(Role::Server, Config::default(), T0);
        conn.set_compression(true);
        let mut z = MessageInflater::new(15, false, 64 << 10);
        let mut out = Vec::new();
        let mut buf = input.clone();
        let mut pos = 0;
        let mut err = None;
        while pos < buf.len() && err.is_none() {
            let (n, ev) = conn.handle_bytes(&mut buf[pos..], T0).unwrap();
            pos += n;
            if let Some(Event::Message { kind, data, fin }) = ev {
                err = z.piece(kind, data, fin, &mut out).err();
            }
        }
        assert_eq!(err, Some(ProtocolError::MessageTooLarge));
        assert!(out.len() <= (64 << 10) + 1, "held {} bytes", out.len());

        let garbage = frame(true, 0b100, Opcode::Binary, &[0xFF; 16]);
        assert_eq!(every_split(&garbage, 1 << 20).1, Some(ProtocolError::InvalidCompressedData));
        let bad_text = frame(true, 0b100, Opcode::Text, &packed(&mut d, &[b'a', 0xC3, 0x28]));
        assert_eq!(every_split(&bad_text, 1 << 20).1, Some(ProtocolError::InvalidUtf8));
        // A final block followed by more data is trailing garbage.
        let mut trailing = hex("cb48cdc9c90700"); // "hello", BFINAL set
        trailing.push(0x00);
        let input = frame(true, 0b100, Opcode::Text, &trailing);
        assert_eq!(every_split(&input, 1 << 20).1, Some(ProtocolError::InvalidCompressedData));
        // The same final block alone is a whole message.
        let input = frame(true, 0b100, Opcode::Text, &hex("cb48cdc9c90700"));
        assert_eq!(every_split(&input, 1 << 20).0, [(MessageKind::Text, b"hello".to_vec())]);
    }

    #[test]
    fn a_client_core_sends_what_a_server_core_inflates() {
        let mut client = Connection::new_open(Role::Client, Config::default(), T0);
        client.set_compression(true);
        let mut d = Deflater::new(15, true);
        let mut wire = Vec::new();
        for text in ["one", "two two two two", "one"] {
            let p = packed(&mut d, text.as_bytes());
            let mut out = vec![0u8; p.len() + MAX_HEADER_LEN];
            let n = client.send_compressed(MessageKind::Text, &p, &mut out, KEY).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        let (msgs, err) = every_split(&wire, 1 << 20);
        assert_eq!(err, None);
        let texts: Vec<&[u8]> = msgs.iter().map(|(_, m)| &m[..]).collect();
        assert_eq!(texts, [&b"one"[..], b"two two two two", b"one"]);
        // Not agreed: refused.
        let mut plain = Connection::new_open(Role::Client, Config::default(), T0);
        let mut out = [0u8; 64];
        assert!(plain.send_compressed(MessageKind::Text, b"x", &mut out, KEY).is_err());
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn offers_in_order_with_their_parameters() {
        let got = offers(
            "x-foo; a=1, permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             Permessage-Deflate ; Server_No_Context_Takeover ; client_max_window_bits=\"9\",, \
             permessage-deflate",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Ok(Offer {
                    server_max_window_bits: Some(10),
                    client_max_window_bits: Some(None),
                    ..Offer::default()
                }),
                Ok(Offer {
                    server_no_context_takeover: true,
                    client_max_window_bits: Some(Some(9)),
                    ..Offer::default()
                }),
                Ok(Offer::default()),
            ]
        );
    }

    #[test]
    fn bad_parameters_decline_the_offer_and_bad_syntax_the_header() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=1",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; x=1",
            "permessage-deflate; a_very_long_parameter_name_over_thirty_two_bytes",
        ] {
            assert_eq!(offers(bad), Ok(vec![Err(ExtensionError::BadParameter)]), "{bad}");
        }
        for bad in [
            "permessage-deflate; ",
            "permessage-deflate; server_max_window_bits=\"10",
            "permessage-deflate server_max_window_bits",
            "permessage-deflate; =1",
            "\"x\"",
        ] {
            assert_eq!(offers(bad), Err(ExtensionError::Syntax), "{bad}");
        }
    }

    #[test]
    fn the_server_answers_within_the_offer() {
        let policy = Policy { max_window_bits: 12, ..Policy::default() };
        let offer = Offer {
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(None),
            ..Offer::default()
        };
        let a = policy.accept(&offer).unwrap();
        assert_eq!((a.server_max_window_bits, a.client_max_window_bits), (10, 15));
        let mut s = String::new();
        a.write(&offer, &mut s);
        assert_eq!(s, "permessage-deflate; server_max_window_bits=10");

        // A shared compressor: no context either way.
        let shared = Policy {
            max_window_bits: 15,
            no_context_takeover: true,
            peer_no_context_takeover: true,
        };
        let a = shared.accept(&Offer::default()).unwrap();
        let mut s = String::new();
        a.write(&Offer::default(), &mut s);
        assert_eq!(s, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        // The client's answer check takes the server's answer back to the same agreement.
        let client = Policy {
            max_window_bits: 15,
            no_context_takeover: false,
            peer_no_context_takeover: false,
        };
        assert_eq!(check_response([s.as_bytes()], &client), Ok(Some(a)));
    }

    #[test]
    fn a_client_refuses_answers_it_did_not_allow() {
        let mine = Policy { max_window_bits: 10, ..Policy::default() };
        let mut offer = String::new();
        mine.write_offer(&mut offer);
        assert_eq!(offer, "permessage-deflate; client_max_window_bits=10");
        for (answer, want) in [
            ("permessage-deflate", Ok(())),
            ("permessage-deflate; client_max_window_bits=9", Ok(())),
            ("permessage-deflate; client_max_window_bits=11", Err(ExtensionError::NotOffered)),
            ("permessage-deflate; client_max_window_bits", Err(ExtensionError::BadParameter)),
            ("permessage-deflate, permessage-deflate", Err(ExtensionError::NotOffered)),
            ("x-other", Err(ExtensionError::NotOffered)),
            ("permessage-deflate; foo", Err(ExtensionError::BadParameter)),
            ("permessage-deflate;", Err(ExtensionError::Syntax)),
        ] {
            assert_eq!(check_response([answer.as_bytes()], &mine).map(|_| ()), want, "{answer}");
        }
        assert_eq!(check_response([], &mine), Ok(None));
    }
}
