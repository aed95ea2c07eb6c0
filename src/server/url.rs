//! `ws://` and `wss://` URLs (RFC 6455 §3), the kinds weir connects to (`wss://` with the `tls`
//! feature).

use std::fmt;

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: the connection runs over TLS.
    pub tls: bool,
    /// The host as written (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// The port (80 when absent, 443 for `wss://`, §3).
    pub port: u16,
    /// The request-target: path and query, at least `/`.
    pub target: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl WsUrl {
    /// Parses `ws[s]://host[:port][/path][?query]`. A fragment is not allowed (§3).
    ///
    /// # Errors
    /// Another scheme (`wss` too when built without the `tls` feature), an empty host, a bad
    /// port, a fragment.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (tls, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ws") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") && cfg!(feature = "tls") => {
                (true, rest)
            }
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("wss") => {
                return Err(UrlError(
                    "wss:// needs a weir built with TLS (cargo build --features tls)",
                ));
            }
            _ => return Err(UrlError("the URL must start with ws:// or wss://")),
        };
        if rest.contains('#') {
            return Err(UrlError("a WebSocket URL may not have a fragment (RFC 6455 §3)"));
        }
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target =
            if target.starts_with('?') { format!("/{target}") } else { target.to_string() };
        if authority.contains('@') {
            return Err(UrlError("credentials in the URL are not supported; use --header"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(UrlError("unclosed [ in the host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError("the URL has no host"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| UrlError("the port is not a number from 0 to 65535"))?,
        };
        if target.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            return Err(UrlError("the path holds spaces or non-ASCII bytes; percent-encode them"));
        }
        Ok(Self { tls, host: host.to_string(), port, target })
    }

    /// The `Host` header value (§4.1: the port is included when it is not the default).
    pub fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port`, for resolving.
    pub fn authority(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_type() {
        let u = WsUrl::parse("ws://example.com/chat?room=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("example.com", 80, "/chat?room=1")
        );
        assert_eq!(u.host_header(), "example.com");
        let u = WsUrl::parse("WS://127.0.0.1:9001").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header().as_str()),
            (9001, "/", "127.0.0.1:9001")
        );
        let u = WsUrl::parse("ws://[::1]:8080?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.target.as_str()), ("::1", "/?x=1"));
        assert_eq!(u.authority(), "[::1]:8080");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn wss_defaults_to_443() {
        let u = WsUrl::parse("wss://example.com/x").unwrap();
        assert_eq!((u.tls, u.port, u.host_header().as_str()), (true, 443, "example.com"));
        let u = WsUrl::parse("wss://example.com:80/x").unwrap();
        assert_eq!(u.host_header(), "example.com:80");
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        #[cfg(not(feature = "tls"))]
        assert!(WsUrl::parse("wss://x/").is_err());
        for bad in [
            "http://x/",
            "x",
            "ws:///path",
            "ws://x:99999/",
            "ws://x/#frag",
            "ws://u:p@x/",
            "ws://x/a b",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
