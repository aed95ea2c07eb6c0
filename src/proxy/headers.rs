//! Which request headers a proxy passes upstream, and the `X-Forwarded-*` it adds.
//!
//! RFC 9110 §7.6.1 (formerly RFC 7230 §6.1): `Connection` and the fields it names are for this
//! hop only, as are `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding` and `Upgrade`.
//! The WebSocket handshake fields (RFC 6455 §4.1) are made anew for the upstream handshake.

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
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

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
        .filter(|h| !HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(name: &'a str, value: &'a str) -> Header<'a> {
        Header { name, value: value.as_bytes() }
    }

    #[test]
    fn hop_by_hop_fields_stay_and_forwarding_fields_are_added() {
        let headers = [
            h("Host", "front.example"),
            h("Upgrade", "websocket"),
            h("Connection", "Upgrade, X-Secret"),
            h("X-Secret", "hop only"),
            h("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            h("Sec-WebSocket-Protocol", "chat"),
            h("Origin", "http://front.example"),
            h("Cookie", "a=1"),
            h("Authorization", "Bearer t"),
            h("X-Forwarded-For", "10.0.0.1"),
            h("Keep-Alive", "timeout=5"),
        ];
        let peer: SocketAddr = "192.0.2.7:5555".parse().unwrap();
        let out = forward(&headers, peer, b"front.example");
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Origin",
                "Cookie",
                "Authorization",
                "X-Forwarded-For",
                "X-Forwarded-Proto",
                "X-Forwarded-Host"
            ]
        );
        assert_eq!(out[3].1, b"10.0.0.1, 192.0.2.7");
        assert_eq!(out[5].1, b"front.example");
    }
}
