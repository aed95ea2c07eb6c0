//! The permessage-deflate extension's negotiation (RFC 7692 §5-7), both roles.
//!
//! A server reads the client's offers ([`parse_offers`]) and picks the first it can accept
//! ([`Policy::accept`]), then writes the answer with [`Agreed::write`]. A client writes its offer
//! with [`Policy::write_offer`] and checks the server's answer with [`check_response`]. The
//! outcome, [`Agreed`], says which window each side compresses with and whether each side keeps
//! its context between messages.

use core::fmt;

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
