//! Who may connect and act: bearer tokens, HTTP Basic credentials, and allowed origins.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Compares two secrets in time that depends only on their lengths, not on where they differ
/// (so a timing side channel cannot guess a token byte by byte).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The access rules of the hub.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Bearer tokens that authenticate a client (none: no authentication needed).
    pub tokens: Vec<String>,
    /// `user:password` checked on the upgrade with HTTP Basic.
    pub basic: Option<String>,
    /// Origins allowed to connect (none: any, unless Basic is on: then same-origin only).
    pub origins: Vec<String>,
}

impl Auth {
    /// Whether clients must authenticate with a token.
    pub fn tokens_required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether `token` is one of the configured tokens.
    pub fn token_ok(&self, token: &[u8]) -> bool {
        // Every token is compared, so the time does not tell which one matched.
        self.tokens.iter().fold(false, |ok, t| constant_time_eq(t.as_bytes(), token) | ok)
    }

    /// Whether an `Authorization` header value carries the configured Basic credentials.
    pub fn basic_ok(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.basic else { return true };
        let Some(value) = authorization else { return false };
        let Some(b64) = strip_scheme(value, b"basic") else { return false };
        match STANDARD.decode(b64) {
            Ok(given) => constant_time_eq(&given, expected.as_bytes()),
            Err(_) => false,
        }
    }

    /// Whether a request with this `Origin` (and `Host`) may connect.
    ///
    /// Browsers send `Origin` on every WebSocket upgrade (RFC 6455 §4.1, §10.2); other clients
    /// may not, and are not refused for it. With Basic auth on and no allow-list, only pages of
    /// the same origin may connect: browsers resend cached Basic credentials cross-site.
    pub fn origin_ok(&self, origin: Option<&[u8]>, host: &[u8]) -> bool {
        let Some(origin) = origin else { return true };
        if !self.origins.is_empty() {
            return self.origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin));
        }
        if self.basic.is_some() {
            let authority =
                origin.splitn(2, |&b| b == b':').nth(1).and_then(|r| r.strip_prefix(b"//"));
            return authority.is_some_and(|a| a.eq_ignore_ascii_case(host));
        }
        true
    }
}

/// The credentials after an `Authorization` scheme (compared case-insensitively).
pub fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let (s, rest) = value.split_at_checked(scheme.len())?;
    (s.eq_ignore_ascii_case(scheme) && rest.first() == Some(&b' ')).then(|| rest[1..].trim_ascii())
}

/// The value of `name` in a query string (`a=1&token=x`), undecoded.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_basic_and_origins() {
        let auth = Auth {
            tokens: vec!["s3cret".into(), "other".into()],
            basic: Some("admin:pw".into()),
            origins: vec![],
        };
        assert!(auth.token_ok(b"s3cret") && auth.token_ok(b"other"));
        assert!(!auth.token_ok(b"s3cre") && !auth.token_ok(b"s3cret!") && !auth.token_ok(b""));
        let good = format!("Basic {}", STANDARD.encode("admin:pw"));
        let bad = format!("Basic {}", STANDARD.encode("admin:nope"));
        assert!(auth.basic_ok(Some(good.as_bytes())));
        assert!(!auth.basic_ok(Some(bad.as_bytes())));
        assert!(!auth.basic_ok(Some(b"Bearer s3cret")));
        assert!(!auth.basic_ok(None));
        // Basic on, no allow-list: same origin only.
        assert!(auth.origin_ok(Some(b"http://example.com:8080"), b"example.com:8080"));
        assert!(!auth.origin_ok(Some(b"http://evil.example"), b"example.com:8080"));
        assert!(auth.origin_ok(None, b"example.com"));
        let listed = Auth { origins: vec!["https://app.example".into()], ..Auth::default() };
        assert!(listed.origin_ok(Some(b"https://app.example"), b"x"));
        assert!(!listed.origin_ok(Some(b"https://other.example"), b"x"));
        assert!(Auth::default().origin_ok(Some(b"http://anything"), b"x"));
    }

    #[test]
    fn helpers() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
        assert_eq!(strip_scheme(b"bearer tok", b"Bearer"), Some(&b"tok"[..]));
        assert_eq!(strip_scheme(b"Bearertok", b"Bearer"), None);
        assert_eq!(query_param(Some("a=1&token=xyz"), "token"), Some("xyz"));
        assert_eq!(query_param(Some("tokenx=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }
}
