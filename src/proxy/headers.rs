//! Which request headers a proxy passes upstream, and the `X-Forwarded-*` it adds.
//!
//! RFC 9110 §7.6.1 (formerly RFC 7230 §6.1): `Connection` and the fields it names are for this
//! hop only, as are `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding` and `Upgrade`.
//! The WebSocket handshake fields (RFC 6455 §4.1) are made anew for the upstream handshake.
//!
//! What the client says about the hops before weir is not passed on, except the chain of
//! `X-Forwarded-For`, to which weir appends the address it saw (so the last entry is weir's):
//! `Forwarded` (RFC 7239), `X-Real-IP` and every other `X-Forwarded-*` field would reach the
//! upstream next to weir's values, or contradict them (`X-Forwarded-Ssl: on` against
//! `X-Forwarded-Proto: http`). Names with anything but letters, digits and `-` are not
//! forwarded at all: CGI and WSGI servers fold `X_Forwarded_For` and `X-Forwarded-For` into the
//! same `HTTP_X_FORWARDED_FOR`, and some fold `.` as well.
//!
//! weir sends no `Forwarded` of its own (RFC 7239 §4): its element would have to start a list
//! that leaves out the chain `X-Forwarded-For` carries, or continue the client's list, which is
//! what is dropped here as forgeable; the proxies most upstreams are set up behind (nginx,
//! Caddy, Traefik, Envoy) send `X-Forwarded-*` only. An upstream that reads `Forwarded` sees
//! none and falls back to the address of the connection, weir's.

use std::net::SocketAddr;

use crate::proto::http::Header;

/// Fields never forwarded, compared case-insensitively.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "forwarded",
    "x-real-ip",
];

/// Fields whose names start with this are not forwarded either: weir writes its own
/// `X-Forwarded-For` (the client's chain kept), `-Proto` and `-Host`.
const FORWARDED_FAMILY: &str = "x-forwarded-";

/// The header fields to send upstream: the client's end-to-end fields, then `X-Forwarded-For`
/// (the client's chain plus its address), `-Proto` and `-Host`.
pub fn forward(headers: &[Header<'_>], peer: SocketAddr, host: &[u8]) -> Vec<(String, Vec<u8>)> {
    let named_by_connection: Vec<&[u8]> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|h| !dropped(h.name))
        .filter(|h| !named_by_connection.iter().any(|t| t.eq_ignore_ascii_case(h.name.as_bytes())))
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let mut chain: Vec<u8> = Vec::new();
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for")) {
        if !chain.is_empty() {
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(h.value);
    }
    if !chain.is_empty() {
        chain.extend_from_slice(b", ");
    }
    chain.extend_from_slice(peer.ip().to_string().as_bytes());
    out.push(("X-Forwarded-For".into(), chain));
    out.push(("X-Forwarded-Proto".into(), b"http".to_vec()));
    out.push(("X-Forwarded-Host".into(), host.to_vec()));
    out
}

/// Whether a field is never forwarded (names compared case-insensitively). A name with
/// anything but letters, digits and `-` is never forwarded: CGI-style upstreams read `_` as `-`
/// (RFC 3875 §4.1.18: `X_Real_IP` is `X-Real-IP` to them), some read `.` so too
/// (`X.Forwarded.For`), and a name that is not words joined by `-` is no field a client needs
/// (nginx drops them too; so does `--exec`).
fn dropped(name: &str) -> bool {
    !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n))
        || name
            .get(..FORWARDED_FAMILY.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(FORWARDED_FAMILY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        Header { name, value: value.as_bytes() }
    }

    #[test]
    fn hop_by_hop_and_client_forwarding_fields_are_dropped_and_weirs_own_added() {
        let headers = [
            h("Host", "front.example"),
            h("Upgrade", "websocket"),
            h("Connection", "Upgrade, X-Secret"),
            h("X-Secret", "hop only"),
            h("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            h("Sec_WebSocket_Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            h("Sec-WebSocket-Protocol", "chat"),
            h("Origin", "http://front.example"),
            h("Cookie", "a=1"),
            h("Authorization", "Bearer t"),
            h("X-Forwarded-For", "10.0.0.1"),
            h("X_Forwarded_For", "7.7.7.7"),
            h("x-forwarded_for", "7.7.7.8"),
            h("X-Forwarded-Host", "evil"),
            h("X_FORWARDED_HOST", "evil2"),
            h("X-Forwarded-Proto", "https"),
            h("X-Forwarded-Ssl", "on"),
            h("X_Forwarded_Port", "443"),
            h("Forwarded", "for=8.8.8.8;host=evil3"),
            h("X-Real-IP", "9.9.9.9"),
            h("x_real_ip", "9.9.9.8"),
            h("X-Forwarded", "not of the family"),
            h("X_Request_Id", "folded by some upstreams"),
            h("X.Forwarded.For", "6.6.6.6"),
            h("X.Real.IP", "6.6.6.7"),
            h("X-Forwarded~For", "6.6.6.8"),
            h("X-Request-Id", "kept"),
            h("Keep-Alive", "timeout=5"),
        ];
        let out = forward(&headers, "[2001:db8::7]:5555".parse().unwrap(), b"front.example");
        let got: Vec<(&str, &[u8])> = out.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        assert_eq!(
            got,
            [
                ("Origin", &b"http://front.example"[..]),
                ("Cookie", b"a=1"),
                ("Authorization", b"Bearer t"),
                ("X-Forwarded", b"not of the family"),
                ("X-Request-Id", b"kept"),
                ("X-Forwarded-For", b"10.0.0.1, 2001:db8::7"),
                ("X-Forwarded-Proto", b"http"),
                ("X-Forwarded-Host", b"front.example"),
            ]
        );
    }
}
