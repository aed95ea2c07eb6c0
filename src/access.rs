//! Who may connect and act, for every endpoint: bearer tokens, HTTP Basic credentials, allowed
//! origins (exact, or `*.` wildcards), and the paths left open. [`crate::app::App`] checks it
//! once, before any app sees a request or an upgrade; `docs/security.md` lists what stays open.

use std::borrow::Cow;
use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::info;
use crate::server::{Request, Response};

/// Plain HTTP paths open whatever the policy: health (for load balancers), counters and the
/// console's files. None of them carries channel data, an agent's output or a credential.
pub const OPEN_PATHS: &[&str] =
    &["/healthz", "/metrics", "/api/stats", "/", "/console.css", "/console.js"];

/// Compares two secrets in time that depends only on their lengths, not on where they differ
/// (so a timing side channel cannot guess a token byte by byte).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The access policy.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Bearer tokens that authenticate a client (none: no authentication needed).
    pub tokens: Vec<String>,
    /// `user:password` checked on the upgrade with HTTP Basic.
    pub basic: Option<String>,
    /// Origins allowed to connect, `scheme://host[:port]`, the host possibly `*.` and a domain
    /// (none: any, unless Basic is on: then same-origin only).
    pub origins: Vec<String>,
    /// Paths (and the paths under them) open to anyone: `--public`.
    pub public: Vec<String>,
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

    /// Whether `path` is a `--public` path or under one (at a `/`).
    pub fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|p| {
            let base = p.trim_end_matches('/');
            path == p || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Whether a plain HTTP request for `path` is served without any check.
    pub fn is_open_request(&self, path: &str) -> bool {
        OPEN_PATHS.contains(&path) || self.is_public(path)
    }

    /// Whether a request with this `Origin` (and `Host`) may connect.
    ///
    /// Browsers send `Origin` on every WebSocket upgrade (RFC 6455 §4.1, §10.2); other clients
    /// may not, and are not refused for it. With Basic auth on and no allow-list, only pages of
    /// the same origin may connect: browsers resend cached Basic credentials cross-site.
    pub fn origin_ok(&self, origin: Option<&[u8]>, host: &[u8]) -> bool {
        let Some(origin) = origin else { return true };
        if !self.origins.is_empty() {
            let Some(given) = Origin::parse(origin) else { return false };
            return self
                .origins
                .iter()
                .any(|o| Origin::parse(o.as_bytes()).is_some_and(|o| o.allows(&given)));
        }
        if self.basic.is_some() {
            let authority =
                origin.splitn(2, |&b| b == b':').nth(1).and_then(|r| r.strip_prefix(b"//"));
            return authority.is_some_and(|a| a.eq_ignore_ascii_case(host));
        }
        true
    }

    /// Checks a request: the origin, then the Basic credentials, then a bearer token or
    /// `?token=` when tokens are configured. With `token_may_follow` (the hub, whose clients
    /// may send the token after the upgrade) a request with no token at all passes as
    /// `Ok(false)`: not yet authenticated. `Ok(true)`: authenticated.
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn check(
        &self,
        origin: Option<&[u8]>,
        host: &[u8],
        authorization: Option<&[u8]>,
        query: Option<&str>,
        token_may_follow: bool,
    ) -> Result<bool, Refusal> {
        if !self.origin_ok(origin, host) {
            return Err(Refusal::Origin);
        }
        if !self.basic_ok(authorization) {
            return Err(Refusal::Basic);
        }
        if !self.tokens_required() {
            return Ok(true);
        }
        match presented_token(authorization, query) {
            Some(Ok(t)) if self.token_ok(&t) => Ok(true),
            None if token_may_follow => Ok(false),
            _ => Err(Refusal::Token),
        }
    }

    /// [`Auth::check`] on a plain HTTP request, logging a refusal.
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn check_request(&self, req: &Request<'_>) -> Result<(), Refusal> {
        self.check_upgrade(req, false).map(drop)
    }

    /// [`Auth::check`] on a WebSocket upgrade, logging a refusal; `Ok(false)` is a hub client
    /// that has yet to `authenticate` (`token_may_follow`).
    ///
    /// # Errors
    /// The first rule the request breaks.
    pub fn check_upgrade(
        &self,
        req: &Request<'_>,
        token_may_follow: bool,
    ) -> Result<bool, Refusal> {
        let authorization = req.header("authorization");
        let result = self.check(req.origin, req.host, authorization, req.query, token_may_follow);
        log_refusal(result.map(drop), req.origin, req.path, req.peer)?;
        result
    }
}

/// An origin as a browser serializes it (RFC 6454 §6.2), or an allow-list entry, whose host
/// may be `*.` and a domain: the tuple of scheme, host and port (RFC 6454 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    scheme: &'a [u8],
    host: &'a [u8],
    /// The port given, else the scheme's default (RFC 6454 §4 step 6), if it has one.
    port: Option<u16>,
}

impl<'a> Origin<'a> {
    /// `scheme://host[:port]`, nothing after it; `None` for anything else (`null` included,
    /// which no allow-list entry can match).
    pub fn parse(text: &'a [u8]) -> Option<Self> {
        let at = text.windows(3).position(|w| w == b"://")?;
        let (scheme, authority) = (&text[..at], &text[at + 3..]);
        // RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
        let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return None;
        }
        // An IPv6 literal keeps its brackets; the port is after the last `:` outside them.
        let host_end = match authority.first() {
            Some(b'[') => authority.iter().position(|&b| b == b']')? + 1,
            _ => authority.iter().position(|&b| b == b':').unwrap_or(authority.len()),
        };
        let (host, rest) = authority.split_at(host_end);
        let host_ok = !host.is_empty()
            && host.iter().all(|&b| b.is_ascii_alphanumeric() || b"-._*[]:".contains(&b));
        let port = match rest {
            [] => default_port(scheme),
            [b':', digits @ ..] if (1..=5).contains(&digits.len()) => {
                let digits = std::str::from_utf8(digits).ok()?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(digits.parse().ok()?)
            }
            _ => return None,
        };
        host_ok.then_some(Self { scheme, host, port })
    }

    /// Whether this entry of an allow-list lets `given` in: the same scheme and port, and the
    /// same host, or for `*.domain` a host ending in `.domain` after at least one whole label
    /// (`a.domain`, `b.a.domain`; not `domain`, nor `evildomain`). Case is ignored
    /// (RFC 6454 §4: the scheme and host are lowercased).
    pub fn allows(&self, given: &Origin<'_>) -> bool {
        if !self.scheme.eq_ignore_ascii_case(given.scheme) || self.port != given.port {
            return false;
        }
        match self.host.strip_prefix(b"*.") {
            Some(domain) => {
                let Some(cut) = given.host.len().checked_sub(domain.len() + 1) else {
                    return false;
                };
                let (labels, tail) = given.host.split_at(cut);
                tail[0] == b'.'
                    && tail[1..].eq_ignore_ascii_case(domain)
                    && labels.split(|&b| b == b'.').all(|l| !l.is_empty() && !l.contains(&b'*'))
            }
            None => self.host.eq_ignore_ascii_case(given.host) && !given.host.contains(&b'*'),
        }
    }
}

/// The default port of the schemes a browser's page or a WebSocket can have.
fn default_port(scheme: &[u8]) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_slice() {
        b"http" | b"ws" => Some(80),
        b"https" | b"wss" => Some(443),
        _ => None,
    }
}

/// Checks an `--origin` value: an origin, whose host may be `*.` and a domain (a `*` nowhere
/// else), with no path.
///
/// # Errors
/// What is wrong with it.
pub fn check_origin_pattern(v: &str) -> Result<(), String> {
    let o = Origin::parse(v.as_bytes())
        .ok_or_else(|| String::from("expected SCHEME://HOST[:PORT], e.g. https://*.example.com"))?;
    let rest = o.host.strip_prefix(b"*.").unwrap_or(o.host);
    if rest.contains(&b'*') || rest.is_empty() {
        return Err(String::from("a '*' must be the whole first label: https://*.example.com"));
    }
    Ok(())
}

/// A rule of [`Auth`] that a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A page of an origin that is not allowed: 403.
    Origin,
    /// Basic credentials missing or wrong: 401.
    Basic,
    /// Tokens are configured and no valid one came: 401.
    Token,
}

impl Refusal {
    /// The HTTP status: 403 for the origin (credentials would not help), 401 for credentials.
    pub fn status(self) -> u16 {
        match self {
            Self::Origin => 403,
            Self::Basic | Self::Token => 401,
        }
    }

    /// A short reason, for the response body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Origin => "origin not allowed",
            Self::Basic => "authentication required",
            Self::Token => "a valid token is required",
        }
    }

    /// The `WWW-Authenticate` value a 401 must carry (RFC 9110 §15.5.2): the Basic scheme
    /// (RFC 7617 §2) or the Bearer scheme (RFC 6750 §3).
    pub fn challenge(self) -> Option<&'static [u8]> {
        match self {
            Self::Origin => None,
            Self::Basic => Some(b"Basic realm=\"weir\", charset=\"UTF-8\""),
            Self::Token => Some(b"Bearer realm=\"weir\""),
        }
    }

    /// The refusal as a plain-text response (upgrades, `GET /api/agents`).
    pub fn text_response(self) -> Response {
        self.with_challenge(Response::text(self.status(), format!("{}\n", self.reason())))
    }

    /// `response` with the `WWW-Authenticate` field this refusal needs, if any.
    pub fn with_challenge(self, mut response: Response) -> Response {
        if let Some(c) = self.challenge() {
            response.headers.push(("WWW-Authenticate".into(), c.to_vec()));
        }
        response
    }
}

fn log_refusal(
    result: Result<(), Refusal>,
    origin: Option<&[u8]>,
    path: &str,
    peer: SocketAddr,
) -> Result<(), Refusal> {
    match result {
        Err(Refusal::Origin) => info!(
            "origin refused",
            peer = peer,
            path = path,
            origin = String::from_utf8_lossy(origin.unwrap_or_default())
        ),
        Err(Refusal::Basic) => info!("basic auth refused", peer = peer, path = path),
        Err(Refusal::Token) => info!("token refused", peer = peer, path = path),
        Ok(()) => {}
    }
    result
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

/// The token a request presents: the `Authorization: Bearer` credentials, else `?token=`
/// percent-decoded. `Some(Err)` is a `?token=` with a bad escape: it matches no token.
pub fn presented_token<'a>(
    authorization: Option<&'a [u8]>,
    query: Option<&'a str>,
) -> Option<Result<Cow<'a, [u8]>, BadEscape>> {
    match authorization.and_then(|v| strip_scheme(v, b"bearer")) {
        Some(t) => Some(Ok(Cow::Borrowed(t))),
        None => query_param(query, "token").map(percent_decode),
    }
}

/// A `%` not followed by two hex digits (RFC 3986 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape;

/// Percent-decodes a query value: `%` and two hex digits, in either case, is that byte
/// (RFC 3986 §2.1); every other byte is itself. `+` stays `+`: reading it as a space is the
/// HTML form encoding (`application/x-www-form-urlencoded`), not RFC 3986, and Base64 tokens
/// hold `+`. Borrows when there is no `%`; else one allocation of at most the value's length,
/// which the request head bounds.
///
/// # Errors
/// [`BadEscape`] for a `%` not followed by two hex digits (`%zz`, a truncated `%4`).
pub fn percent_decode(value: &str) -> Result<Cow<'_, [u8]>, BadEscape> {
    if !value.contains('%') {
        return Ok(Cow::Borrowed(value.as_bytes()));
    }
    let hex = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16)).ok_or(BadEscape);
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let (hi, lo) = (hex(bytes.next())?, hex(bytes.next())?);
            out.extend(u8::try_from(hi << 4 | lo).ok());
        } else {
            out.push(b);
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_basic_and_origins() {
        let auth = Auth {
            tokens: vec!["s3cret".into(), "other".into()],
            basic: Some("admin:pw".into()),
            ..Auth::default()
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
    fn check_takes_origin_then_basic_then_token() {
        let auth = Auth {
            tokens: vec!["s3cret".into()],
            basic: Some("admin:pw".into()),
            origins: vec!["https://app.example".into()],
            ..Auth::default()
        };
        let good = format!("Basic {}", STANDARD.encode("admin:pw"));
        let (app, evil) = (Some(&b"https://app.example"[..]), Some(&b"https://evil.example"[..]));
        let check = |origin, authorization: Option<&str>, query| {
            auth.check(origin, b"x", authorization.map(str::as_bytes), query, false).map(drop)
        };
        assert_eq!(check(evil, Some(&good), Some("token=s3cret")), Err(Refusal::Origin));
        assert_eq!(check(app, None, Some("token=s3cret")), Err(Refusal::Basic));
        assert_eq!(check(None, Some("Bearer s3cret"), None), Err(Refusal::Basic));
        assert_eq!(check(app, Some(&good), None), Err(Refusal::Token));
        assert_eq!(check(app, Some(&good), Some("token=nope")), Err(Refusal::Token));
        assert_eq!(check(app, Some(&good), Some("token=s3cret")), Ok(()));
        assert_eq!(check(None, Some(&good), Some("a=1&token=s3cret")), Ok(()));
        assert_eq!(Auth::default().check(evil, b"x", None, None, false), Ok(true));
        let bearer = Auth { tokens: vec!["s3cret".into()], ..Auth::default() };
        assert_eq!(bearer.check(None, b"x", Some(b"Bearer s3cret"), None, false), Ok(true));
        // The hub's clients may send the token later: none passes, unauthenticated; a wrong
        // one does not.
        assert_eq!(bearer.check(None, b"x", None, None, true), Ok(false));
        assert_eq!(bearer.check(None, b"x", None, Some("token=no"), true), Err(Refusal::Token));
        assert_eq!(bearer.check(None, b"x", None, None, false), Err(Refusal::Token));
        assert_eq!(
            (Refusal::Origin.status(), Refusal::Basic.status(), Refusal::Token.status()),
            (403, 401, 401)
        );
        assert_eq!(Refusal::Origin.challenge(), None);
    }

    #[test]
    fn origins_are_tuples_and_wildcards_match_whole_labels() {
        let list = Auth {
            origins: vec!["https://app.example.com".into(), "https://*.example.org".into()],
            ..Auth::default()
        };
        let ok = |o: &str| list.origin_ok(Some(o.as_bytes()), b"x");
        // RFC 6454 §4: scheme and host compared without case, the default port filled in.
        for o in [
            "https://app.example.com",
            "HTTPS://App.Example.COM",
            "https://app.example.com:443",
            "https://a.example.org",
            "https://b.a.example.org",
            "https://A.EXAMPLE.ORG:443",
        ] {
            assert!(ok(o), "{o}");
        }
        for o in [
            "https://evilexample.org",
            "https://example.org",
            "https://.example.org",
            "https://a..example.org",
            "https://*.example.org",
            "https://a.example.org.evil",
            "https://a.example.org:8443",
            "http://a.example.org",
            "http://app.example.com",
            "https://app.example.com:80",
            "https://app.example.com/",
            "https://app.example.com:",
            "https://app.example.com:x",
            "https://user@app.example.com",
            "null",
            "",
        ] {
            assert!(!ok(o), "{o}");
        }
        let v6 = Auth { origins: vec!["http://[::1]:8080".into()], ..Auth::default() };
        assert!(v6.origin_ok(Some(b"http://[::1]:8080"), b"x"));
        assert!(!v6.origin_ok(Some(b"http://[::1]"), b"x"));
        assert!(check_origin_pattern("https://*.example.com").is_ok());
        assert!(check_origin_pattern("http://127.0.0.1:8080").is_ok());
        for bad in ["example.com", "https://a.*.example.com", "https://*", "https://x/y", "*"] {
            assert!(check_origin_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_paths_cover_what_is_under_them() {
        let auth = Auth { public: vec!["/pub".into(), "/x/".into()], ..Auth::default() };
        assert!(auth.is_public("/pub") && auth.is_public("/pub/a") && auth.is_public("/x/"));
        assert!(auth.is_public("/x/y"));
        assert!(!auth.is_public("/public") && !auth.is_public("/x") && !auth.is_public("/"));
        assert!(auth.is_open_request("/healthz") && !auth.is_open_request("/api/agents"));
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

    #[test]
    fn percent_decoding() {
        let ok = |v: &str| percent_decode(v).map(Cow::into_owned);
        assert!(matches!(percent_decode("ab+c/d="), Ok(Cow::Borrowed(b"ab+c/d="))));
        assert_eq!(ok("ab%2Bc%2Fd%3D"), Ok(b"ab+c/d=".to_vec()));
        assert_eq!(ok("ab%2bc%2fd%3d"), Ok(b"ab+c/d=".to_vec()));
        assert_eq!(ok("%00%ff%C3%A9"), Ok(vec![0, 0xff, 0xc3, 0xa9]));
        assert_eq!(ok("a+b%20c"), Ok(b"a+b c".to_vec()));
        assert_eq!(ok("%2525"), Ok(b"%25".to_vec()));
        for bad in ["%", "%4", "a%", "%zz", "%4g", "%g4", "%+1", "%-1", "ok%2", "%%41"] {
            assert_eq!(percent_decode(bad), Err(BadEscape), "{bad}");
        }
        let bearer = Some(&b"Bearer tok"[..]);
        assert_eq!(presented_token(bearer, Some("token=x")), Some(Ok(Cow::Borrowed(&b"tok"[..]))));
        assert_eq!(presented_token(None, Some("token=%74ok")), Some(Ok(b"tok".to_vec().into())));
        assert_eq!(presented_token(None, Some("token=%7")), Some(Err(BadEscape)));
        assert_eq!(presented_token(Some(b"Basic x"), None), None);
    }
}
