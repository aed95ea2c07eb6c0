//! `redis[s]://[user:password@]host[:port][/db]`, the address `--redis` takes.
//!
//! The scheme is IANA's `redis` URI scheme (<https://www.iana.org/assignments/uri-schemes/prov/redis>),
//! read with RFC 3986's generic syntax: the user and password are percent-decoded (§2.1), an
//! IPv6 host is in brackets (§3.2.2), the port defaults to 6379 and the path is the database
//! number (default 0). `rediss://` is the same over TLS (IANA's `rediss` scheme; a weir built
//! without the `tls` feature refuses it at start); a query or fragment is refused rather than
//! ignored, so a setting is never silently dropped.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The port Redis listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed Redis address. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The ACL user for `AUTH user password` (Redis 6 and later); `None`: `AUTH password`.
    pub user: Option<Vec<u8>>,
    /// The password; `None`: no `AUTH` is sent.
    pub password: Option<Vec<u8>>,
    /// The database number for `SELECT` (0 needs no `SELECT`).
    pub db: u32,
    /// `rediss://`: over TLS, the server's certificate verified for `host`.
    pub tls: bool,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user.as_deref().map(<[u8]>::escape_ascii))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlError {
    /// Not `redis://`.
    Scheme,
    /// `rediss://` given to a weir built without the `tls` feature (the parser takes it; the
    /// command line refuses it with this).
    TlsUnsupported,
    /// A user without a password (`redis://user@host`): `AUTH` needs both.
    UserWithoutPassword,
    /// A `%` not followed by two hex digits (RFC 3986 §2.1).
    BadEscape,
    /// No host, a character a host may not hold, or an unclosed `[`.
    BadHost,
    /// A port that is not 1 to 65535.
    BadPort,
    /// A database that is not a decimal number (up to 2^32 - 1), or a path with more in it.
    BadDb,
    /// A `?query` or `#fragment`: no option is read from them.
    QueryOrFragment,
}

impl UrlError {
    /// A stable snake_case name, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Scheme => "scheme",
            Self::TlsUnsupported => "tls_unsupported",
            Self::UserWithoutPassword => "user_without_password",
            Self::BadEscape => "bad_escape",
            Self::BadHost => "bad_host",
            Self::BadPort => "bad_port",
            Self::BadDb => "bad_db",
            Self::QueryOrFragment => "query_or_fragment",
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "not a redis:// URL",
            Self::TlsUnsupported => "rediss:// needs TLS, and this weir was built without it (cargo build --features tls)",
            Self::UserWithoutPassword => "a user needs a password (redis://user:password@host)",
            Self::BadEscape => "a % not followed by two hex digits",
            Self::BadHost => "missing or invalid host",
            Self::BadPort => "port is not 1 to 65535",
            Self::BadDb => "the path is not a database number",
            Self::QueryOrFragment => "a query or fragment is not read: remove it",
        })
    }
}

impl RedisUrl {
    /// Parses `redis[s]://[user:password@]host[:port][/db]`.
    ///
    /// # Errors
    /// [`UrlError`], naming the part that is wrong.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let scheme_end = url.find("://").ok_or(UrlError::Scheme)?;
        let tls = match url[..scheme_end].to_ascii_lowercase().as_str() {
            "redis" => false,
            "rediss" => true,
            _ => return Err(UrlError::Scheme),
        };
        let rest = &url[scheme_end + 3..];
        if rest.contains(['?', '#']) {
            return Err(UrlError::QueryOrFragment);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        // RFC 3986 §3.2: the userinfo ends at the last `@` (a password may hold an unescaped one).
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some(("", password)) => (None, Some(decode(password)?)),
                Some((user, password)) => (Some(decode(user)?), Some(decode(password)?)),
                None => return Err(UrlError::UserWithoutPassword),
            },
        };
        let (host, port) = host_port(hostport)?;
        let db = match path {
            "" => 0,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= 10 => {
                digits.parse().map_err(|_| UrlError::BadDb)?
            }
            _ => return Err(UrlError::BadDb),
        };
        Ok(Self { host: String::from(host), port, user, password, db, tls })
    }
}

/// `host[:port]`, the host a name, IPv4 or a bracketed IPv6 address (RFC 3986 §3.2.2).
fn host_port(s: &str) -> Result<(&str, u16), UrlError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let close = v6.find(']').ok_or(UrlError::BadHost)?;
        let host = &v6[..close];
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UrlError::BadHost);
        }
        match &v6[close + 1..] {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':').ok_or(UrlError::BadHost)?)),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':');
    if host.is_empty() || !host.bytes().all(name_byte) {
        return Err(UrlError::BadHost);
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(UrlError::BadPort),
                Ok(n) => n,
            }
        }
        Some(_) => return Err(UrlError::BadPort),
    };
    Ok((host, port))
}

/// Percent-decodes a user or password (RFC 3986 §2.1).
fn decode(s: &str) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |b: Option<u8>| match b {
            Some(d @ b'0'..=b'9') => Ok(d - b'0'),
            Some(d @ b'a'..=b'f') => Ok(d - b'a' + 10),
            Some(d @ b'A'..=b'F') => Ok(d - b'A' + 10),
            _ => Err(UrlError::BadEscape),
        };
        let high = hex(bytes.next())?;
        out.push(high << 4 | hex(bytes.next())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn url(host: &str, port: u16, user: Option<&str>, password: Option<&str>, db: u32) -> RedisUrl {
        RedisUrl {
            host: host.into(),
            port,
            user: user.map(|u| u.as_bytes().to_vec()),
            password: password.map(|p| p.as_bytes().to_vec()),
            db,
            tls: false,
        }
    }

    #[test]
    fn good() {
        let cases = [
            ("redis://localhost", url("localhost", 6379, None, None, 0)),
            ("redis://127.0.0.1:6380", url("127.0.0.1", 6380, None, None, 0)),
            ("REDIS://h:1/", url("h", 1, None, None, 0)),
            ("redis://h:65535/15", url("h", 65535, None, None, 15)),
            ("redis://:secret@h", url("h", 6379, None, Some("secret"), 0)),
            ("redis://alice:s3@h:7000/2", url("h", 7000, Some("alice"), Some("s3"), 2)),
            ("redis://a%40b:p%3A%2f@h", url("h", 6379, Some("a@b"), Some("p:/"), 0)),
            ("redis://u:p@ss@h", url("h", 6379, Some("u"), Some("p@ss"), 0)),
            ("redis://u:@h", url("h", 6379, Some("u"), Some(""), 0)),
            ("redis://[::1]:6390/3", url("::1", 6390, None, None, 3)),
            ("redis://[::1]", url("::1", 6379, None, None, 0)),
            ("redis://redis.internal_1-a", url("redis.internal_1-a", 6379, None, None, 0)),
            ("redis://h/4294967295", url("h", 6379, None, None, u32::MAX)),
            ("rediss://h:6380", RedisUrl { tls: true, ..url("h", 6380, None, None, 0) }),
            ("REDISS://:pw@h/1", RedisUrl { tls: true, ..url("h", 6379, None, Some("pw"), 1) }),
        ];
        for (s, want) in cases {
            assert_eq!(RedisUrl::parse(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad() {
        use UrlError::*;
        let cases = [
            ("http://h", Scheme),
            ("redis:/h", Scheme),
            ("h:6379", Scheme),
            ("redis://alice@h", UserWithoutPassword),
            ("redis://:p%4@h", BadEscape),
            ("redis://:p%zz@h", BadEscape),
            ("redis://", BadHost),
            ("redis://:p@", BadHost),
            ("redis://:6379", BadHost),
            ("redis://h h", BadHost),
            ("redis://[::1", BadHost),
            ("redis://[]:1", BadHost),
            ("redis://[::1]x", BadHost),
            ("redis://h:0", BadPort),
            ("redis://h:65536", BadPort),
            ("redis://h:", BadPort),
            ("redis://h:+1", BadPort),
            ("redis://h:1a", BadPort),
            ("redis://h/x", BadDb),
            ("redis://h/-1", BadDb),
            ("redis://h/4294967296", BadDb),
            ("redis://h/1/2", BadDb),
            ("redis://h/0?db=1", QueryOrFragment),
            ("redis://h#x", QueryOrFragment),
        ];
        for (s, want) in cases {
            assert_eq!(RedisUrl::parse(s), Err(want), "{s}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let u = RedisUrl::parse("redis://alice:hunter2@h").unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{u:?}");
        assert!(!shown.contains("hunter2") && shown.contains("redacted"), "{shown}");
    }
}
