//! Close codes and the close frame's payload (RFC 6455 §5.5.1, §7.4).

use core::fmt;

use crate::proto::error::{BufferTooSmall, ProtocolError};

/// A status code carried by a close frame (RFC 6455 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page left, timeouts).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no code was present. Reported locally, never sent (§7.4.1).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Reported locally, never sent (§7.4.1).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data does not match its type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// Whether a close frame received from a peer may carry this code.
    ///
    /// RFC 6455 §7.4.1 defines 1000-1003 and 1007-1011; §7.4.2 leaves 3000-3999 to registration
    /// and 4000-4999 to private use. 1004 is reserved, and 1005, 1006 and 1015 must never be put
    /// in a close frame; every other code below 3000 is unassigned, so a peer that sends one is
    /// broken.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Most bytes a close reason may take: a control frame carries at most 125 bytes (§5.5) and
/// two of them are the code.
pub const MAX_REASON_LEN: usize = 123;

/// Parses a received close frame's payload into its code and reason (§5.5.1).
///
/// An empty payload has no code (`None`, reported as 1005).
///
/// # Errors
/// A one-byte payload, a code not valid on the wire, or a reason that is not UTF-8.
pub fn parse_close_payload(payload: &[u8]) -> Result<(Option<CloseCode>, &str), ProtocolError> {
    match payload {
        [] => Ok((None, "")),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode);
            }
            let reason =
                core::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok((Some(code), reason))
        }
    }
}

/// Writes a close payload (code, then as much of `reason` as fits whole characters in 123
/// bytes) into `out` and returns its length. `None` writes an empty payload.
///
/// # Errors
/// `out` is shorter than the payload.
pub fn encode_close_payload(
    code: Option<CloseCode>,
    reason: &str,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let Some(code) = code else { return Ok(0) };
    let reason = truncate_reason(reason);
    let needed = 2 + reason.len();
    let out = out.get_mut(..needed).ok_or(BufferTooSmall { needed })?;
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    out[2..].copy_from_slice(reason.as_bytes());
    Ok(needed)
}

/// The longest prefix of `reason` that fits in a close frame and ends on a character boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_codes() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999] {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(parse_close_payload(b""), Ok((None, "")));
        assert_eq!(parse_close_payload(b"\x03"), Err(ProtocolError::InvalidClosePayload));
        assert_eq!(parse_close_payload(b"\x03\xe8"), Ok((Some(CloseCode::NORMAL), "")));
        assert_eq!(parse_close_payload(b"\x03\xe8bye"), Ok((Some(CloseCode::NORMAL), "bye")));
        assert_eq!(parse_close_payload(b"\x03\xed"), Err(ProtocolError::InvalidCloseCode));
        assert_eq!(parse_close_payload(b"\x03\xe8\xff"), Err(ProtocolError::InvalidCloseReason));
    }

    #[test]
    fn encode_truncates_on_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let mut out = [0u8; 125];
        let n = encode_close_payload(Some(CloseCode::GOING_AWAY), &reason, &mut out).unwrap();
        assert_eq!(n, 2 + 122);
        assert_eq!(&out[..2], &[0x03, 0xe9]);
        assert!(core::str::from_utf8(&out[2..n]).is_ok());
        assert_eq!(encode_close_payload(None, "x", &mut out), Ok(0));
        assert_eq!(
            encode_close_payload(Some(CloseCode::NORMAL), "abc", &mut out[..3]),
            Err(BufferTooSmall { needed: 5 })
        );
    }
}
