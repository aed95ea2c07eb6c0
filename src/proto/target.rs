//! The request-target a proxied connection asks the upstream for: the route's base path with the
//! rest of the client's path appended as it came, then the route's query and the client's. The
//! forward proxy (`--route PATH=ws://...`) and both ends of the tunnel check paths with it.
//!
//! The rest is not rewritten, so it must not be able to name anything outside the base once the
//! upstream has decoded and normalised it. RFC 3986 §5.2.4 removes `.` and `..` segments, and
//! §2.3 makes `%2E` the same as `.`, so `/chat/%2e%2e/admin` is `/admin` to an upstream that
//! normalises. Some upstreams also split segments where the RFC does not: at `%2F` and `%5C`
//! (decoded before routing), at `\` (WHATWG URL parsers read it as `/`), and before `;` (servlet
//! containers strip path parameters, so `..;` is `..`). A path whose segments, read all these
//! ways, include `.` or `..` is refused; other dots, encoded separators and the query are the
//! application's and go through unchanged.

use alloc::format;
use alloc::string::String;

/// The target for an upstream whose own target is `upstream` (`/base?q`), given the rest of the
/// client's path after the route's prefix (empty or starting with `/`) and the client's query.
///
/// # Errors
/// [`DotSegment`] when `rest` has a `.` or `..` segment, literal or encoded, in any of the
/// readings above.
pub fn upstream_target(
    upstream: &str,
    rest: &str,
    query: Option<&str>,
) -> Result<String, DotSegment> {
    if has_dot_segment(rest) {
        return Err(DotSegment);
    }
    let (base, upstream_query) = match upstream.split_once('?') {
        Some((base, q)) => (base, Some(q)),
        None => (upstream, None),
    };
    let mut target = format!("{}{rest}", base.trim_end_matches('/'));
    if target.is_empty() {
        target.push('/');
    }
    match (upstream_query, query) {
        (Some(a), Some(b)) => target = format!("{target}?{a}&{b}"),
        (Some(q), None) | (None, Some(q)) => target = format!("{target}?{q}"),
        (None, None) => {}
    }
    Ok(target)
}

/// A path with a `.` or `..` segment: it could name something outside the route's base (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotSegment;

/// Whether `path` has a `.` or `..` segment, literal or encoded, in any of the readings above
/// (RFC 3986 §5.2.4, §2.3).
pub fn has_dot_segment(path: &str) -> bool {
    // Decoded once, as an upstream decodes: `%252e` is `%2e` to it, data and not a dot.
    let read = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    read.split('/').any(|segment| matches!(segment.split(';').next(), Some("." | "..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_in_any_reading_are_refused() {
        for rest in [
            "/..",
            "/.",
            "/../admin",
            "/x/../../admin",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/.%2e/admin",
            "/%2E./admin",
            "/%2e",
            "/..%2fadmin",
            "/..%2Fadmin",
            "/..%5cadmin",
            "/x%5C..",
            "/..\\admin",
            "/..;/admin",
            "/%2e%2e;jsessionid=1/admin",
            "/.;x",
        ] {
            assert_eq!(upstream_target("/ws/chat", rest, None), Err(DotSegment), "{rest}");
        }
    }

    #[test]
    fn other_dots_encoded_separators_and_queries_go_through_unchanged() {
        let t = |up, rest, q| upstream_target(up, rest, q).unwrap();
        assert_eq!(t("/ws/chat", "", None), "/ws/chat");
        assert_eq!(t("/", "", None), "/");
        assert_eq!(t("/ws/chat/", "/room", None), "/ws/chat/room");
        assert_eq!(t("/b", "/a..b/...x/.hidden/x.", None), "/b/a..b/...x/.hidden/x.");
        assert_eq!(t("/b", "/a%2Fb/c%5cd/;p", None), "/b/a%2Fb/c%5cd/;p");
        assert_eq!(t("/b", "/x", Some("next=../up&p=%2e%2e")), "/b/x?next=../up&p=%2e%2e");
        assert_eq!(t("/b?v=1", "/x", Some("a=2")), "/b/x?v=1&a=2");
        assert_eq!(t("/b?v=1", "", None), "/b?v=1");
    }
}
