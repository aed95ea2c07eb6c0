//! The reverse tunnel's two ends in the binary (issue 18; `docs/tunnel.md`): the controller,
//! which takes agents at `--tunnel-path` and sends public WebSocket upgrades on
//! `--route PATH=tunnel://NAME/TARGET` down the agent's tunnel ([`controller`]), and the agent,
//! `weir tunnel URL`, which dials the controller from a private network and connects each
//! stream to a service it exposes ([`agent`]). Both carry messages with [`relay`], on the
//! sans-IO core in `crate::proto::tunnel`.
//!
//! Plain HTTP requests go through too: the controller does the HTTP (`proto::relay::Exchange`),
//! the agent moves a stream's `DATA` to and from a TCP connection to its service.

pub mod agent;
pub mod controller;
pub mod relay;

use std::time::Duration;

use crate::proto::http::{Header, Headers};

/// The header an agent names itself with when it dials the controller.
pub const NAME_HEADER: &str = "Weir-Tunnel-Name";

/// The default path agents dial on the controller (`--tunnel-path`).
pub const DEFAULT_PATH: &str = "/_tunnel";

/// Fields of a service's 101 that do not go on to the client: this hop's (RFC 9110 §7.6.1,
/// and any the 101's `Connection` names), and the handshake's, which weir writes for its own
/// client (RFC 6455 §4.2.2; the subprotocol travels as its own line). The agent leaves them out
/// of its `OPEN_OK` and the controller again of the client's 101.
const NOT_PASSED: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// The fields of a service's 101 that go on to the client: all but `NOT_PASSED` and those
/// its `Connection` names.
pub fn passed_on<'a>(headers: &'a [Header<'a>]) -> impl Iterator<Item = &'a Header<'a>> {
    let named = Headers(headers);
    headers.iter().filter(move |h| {
        !NOT_PASSED.iter().any(|n| h.name.eq_ignore_ascii_case(n))
            && !named.has_token("connection", h.name)
    })
}

/// `weir tunnel URL`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOptions {
    /// The controller's tunnel URL (`wss://host/_tunnel`, or `ws://` to loopback or with
    /// `allow_plain`).
    pub url: String,
    /// The name this agent registers (one live tunnel per name).
    pub name: String,
    /// The file holding the bearer token (its first line that is not blank or a comment).
    pub token_file: String,
    /// Targets it exposes: a name and the `ws://` URL of the service behind it.
    pub exposes: Vec<(String, String)>,
    /// Dial a plain `ws://` controller that is not on loopback.
    pub allow_plain: bool,
    /// PEM roots a `wss://` controller is verified against (none: the system's).
    pub tls_ca: Option<String>,
    /// Verify no certificate (testing only).
    pub insecure: bool,
    /// The longest wait between two dials after failures.
    pub reconnect_max: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            url: String::new(),
            name: String::new(),
            token_file: String::new(),
            exposes: Vec::new(),
            allow_plain: false,
            tls_ca: None,
            insecure: false,
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// Reads a token file: each line that is neither blank nor a `#` comment is a token, trimmed
/// (the controller takes any of them; an agent presents the first).
///
/// # Errors
/// The file cannot be read, or holds no token.
pub fn read_token_file(path: &str) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if tokens.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "no token in the file"));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_101_passes_on_its_own_fields_only() {
        let h = |name, value: &'static str| Header { name, value: value.as_bytes() };
        let headers = [
            h("Upgrade", "websocket"),
            h("Connection", "Upgrade, X-Hop"),
            h("Sec-WebSocket-Accept", "x"),
            h("Sec-WebSocket-Protocol", "chat"),
            h("X-Hop", "1"),
            h("keep-alive", "timeout=5"),
            h("Set-Cookie", "sid=1"),
            h("x-service", "a"),
        ];
        let names: Vec<&str> = passed_on(&headers).map(|h| h.name).collect();
        assert_eq!(names, ["Set-Cookie", "x-service"]);
    }
}
