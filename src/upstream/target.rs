//! The request-target check: a request never leaves the configured base path (issue 12,
//! bug 2).
//!
//! An upstream configured as `http://host/api/v2` receives `/api/v2` + the request's path.
//! Were `..` forwarded, the upstream (or the URL parser on the way, which resolves dot
//! segments and reads `%2e` as `.`) would climb out of `/api/v2`. So every path is decided
//! here, after one percent-decoding, the same way in serve (every leg, tunnels included),
//! in replay (traffic files) and defensively in the request builders:
//!
//! - refused: a backslash, an encoded slash or backslash (`%2f`, `%5c`, any case), a `.` or
//!   `..` segment carrying `;` parameters (`/..;/`, which servlet containers read as `..`),
//!   a `%25` whose decoding is an encoded `.`, `/` or `\` (double encoding, which a second
//!   decoder on the way would turn into the above), and dot segments that climb above the
//!   path's own root;
//! - otherwise the `.` and `..` segments are removed as RFC 3986 section 5.2.4 does, with
//!   `%2e` (any case) counted as `.`, and the rest is kept exactly as received: the other
//!   percent-encodings and the query are untouched.

use std::borrow::Cow;

/// Why a request target is refused. The message is short enough for a 400 body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the path holds a backslash")]
    Backslash,
    #[error("the path holds an encoded slash or backslash ({0})")]
    EncodedSeparator(String),
    #[error("the path holds a dot segment with parameters ({0:?})")]
    DotSegmentParameters(String),
    #[error("the path is percent-encoded twice (it decodes to {0})")]
    DoubleEncoded(String),
    #[error("the path climbs above its root with `..`")]
    AboveRoot,
    #[error("the path without its dot segments is not a valid request target")]
    Unusable,
}

/// The origin form (RFC 9112 section 3.2.1) of a request target: an absolute-form target
/// (`http://host/p?q`, as HTTP/2 clients and recorded URLs write it) becomes `/p?q`, `/`
/// when it has no path; an origin-form target is returned as it is.
pub fn origin_form(uri: &http::Uri) -> http::Uri {
    if uri.scheme().is_none() {
        return uri.clone();
    }
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(
        uri.path_and_query()
            .filter(|pq| !pq.as_str().is_empty())
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    http::Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// [`normalize`] for a request's URI: `None` when it passes unchanged, else the URI with
/// the normalized path (scheme and authority of an HTTP/2 request are kept).
pub fn normalize_uri(uri: &http::Uri) -> Result<Option<http::Uri>, TargetError> {
    let Some(pq) = uri.path_and_query() else {
        return Ok(None); // authority-form (CONNECT): no path to leave
    };
    let Cow::Owned(normalized) = normalize(pq.as_str())? else {
        return Ok(None);
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(normalized.parse().map_err(|_| TargetError::Unusable)?);
    http::Uri::from_parts(parts)
        .map(Some)
        .map_err(|_| TargetError::Unusable)
}

/// Checks a request's `path?query` and returns it with its dot segments removed; borrowed
/// when nothing had to change, so a clean path is forwarded byte for byte.
pub fn normalize(path_and_query: &str) -> Result<Cow<'_, str>, TargetError> {
    let (path, query) = match path_and_query.find('?') {
        Some(at) => path_and_query.split_at(at),
        None => (path_and_query, ""),
    };
    // Without a `.`, a `%` or a backslash there is nothing to refuse or remove: the common
    // case, decided in one scan.
    if !path.bytes().any(|b| matches!(b, b'.' | b'%' | b'\\')) {
        return Ok(Cow::Borrowed(path_and_query));
    }
    check_encodings(path)?;
    let rooted = path.starts_with('/');
    let body = path.strip_prefix('/').unwrap_or(path);
    // Most paths hold no dot segment: one pass that checks every segment and allocates
    // nothing, and the path goes on as received.
    let mut has_dots = false;
    for segment in body.split('/') {
        has_dots |= dot_segment(segment)?.is_some();
    }
    if !has_dots {
        return Ok(Cow::Borrowed(path_and_query));
    }
    let mut kept: Vec<&str> = Vec::new();
    // A path ending in a dot segment keeps its trailing slash (`/a/b/..` is `/a/`).
    let mut trailing_slash = false;
    for segment in body.split('/') {
        trailing_slash = false;
        match dot_segment(segment)? {
            Some(Dot::Current) => trailing_slash = true,
            Some(Dot::Parent) => {
                if kept.pop().is_none() {
                    return Err(TargetError::AboveRoot);
                }
                trailing_slash = true;
            }
            None => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(path_and_query.len());
    if rooted {
        out.push('/');
    }
    out.push_str(&kept.join("/"));
    if trailing_slash && !kept.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        // `./` of a rootless path is its root; an empty request target is not a path.
        out.push('/');
    }
    out.push_str(query);
    Ok(Cow::Owned(out))
}

/// Refuses the characters and encodings that a later decoder could turn into a separator
/// or a dot segment the check above never saw.
fn check_encodings(path: &str) -> Result<(), TargetError> {
    if path.contains('\\') {
        return Err(TargetError::Backslash);
    }
    if !path.contains('%') {
        return Ok(());
    }
    // One percent-decoding of the whole path; a `%` not followed by two hex digits stays.
    let bytes = path.as_bytes();
    let mut once = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match hex_pair(bytes.get(i + 1..i + 3)).filter(|_| bytes[i] == b'%') {
            Some(b'/' | b'\\') => {
                return Err(TargetError::EncodedSeparator(path[i..i + 3].to_string()))
            }
            Some(decoded) => {
                once.push(decoded);
                i += 3;
            }
            None => {
                once.push(bytes[i]);
                i += 1;
            }
        }
    }
    // What is still an encoded `.`, `/` or `\` after one decoding was encoded twice
    // (`%252e`, also `%25%32%65`): a second decoder on the way would see a dot or a
    // separator.
    for at in (0..once.len()).filter(|&at| once[at] == b'%') {
        if let Some(b'.' | b'/' | b'\\') = hex_pair(once.get(at + 1..at + 3)) {
            let text = String::from_utf8_lossy(&once[at..at + 3]).into_owned();
            return Err(TargetError::DoubleEncoded(text));
        }
    }
    Ok(())
}

/// The byte two hex digits encode.
fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let pair = pair?;
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

enum Dot {
    Current,
    Parent,
}

/// Whether a raw segment is `.` or `..` once decoded (`%2e` is `.`), refusing one that
/// only differs from them by `;` parameters (encoded or not).
fn dot_segment(segment: &str) -> Result<Option<Dot>, TargetError> {
    let decoded = decode_dots(segment);
    let name = decoded.split(';').next().unwrap_or_default();
    let dot = match name {
        "." => Dot::Current,
        ".." => Dot::Parent,
        _ => return Ok(None),
    };
    if name.len() != decoded.len() {
        return Err(TargetError::DotSegmentParameters(segment.to_string()));
    }
    Ok(Some(dot))
}

/// Decodes the encodings a dot segment can be spelled with (`%2e`, and `%3b` for `;`);
/// every other character is kept, so the result is only used to classify the segment.
fn decode_dots(segment: &str) -> Cow<'_, str> {
    if !segment.contains('%') {
        return Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        match hex_pair(bytes.get(i + 1..i + 3)).filter(|_| bytes[i] == b'%') {
            Some(b'.') => {
                out.push('.');
                i += 3;
            }
            Some(b';') => {
                out.push(';');
                i += 3;
            }
            _ => {
                // `%` is ASCII, so `i` is always on a character boundary here.
                let c = segment[i..]
                    .chars()
                    .next()
                    .expect("i is inside the segment");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn origin_form_keeps_path_and_query_of_an_absolute_target() {
        let of = |text: &str| origin_form(&text.parse().unwrap()).to_string();
        assert_eq!(of("http://h:8080/a/b?x=1"), "/a/b?x=1");
        assert_eq!(of("https://h"), "/");
        assert_eq!(of("/a?b"), "/a?b");
        assert_eq!(of("*"), "*");
    }

    /// What an upstream that decodes once and then resolves dot segments itself would do
    /// with a path (also reading `\` as `/` and dropping `;` parameters, as some do):
    /// whether it stays at or below its root.
    fn stays_under_root(path: &str) -> bool {
        let bytes = path.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match hex_pair(bytes.get(i + 1..i + 3)).filter(|_| bytes[i] == b'%') {
                Some(b) => {
                    decoded.push(b);
                    i += 3;
                }
                None => {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
        }
        let decoded = String::from_utf8_lossy(&decoded).replace('\\', "/");
        let mut depth = 0i64;
        for segment in decoded.split('/').skip(1) {
            match segment.split(';').next().unwrap_or_default() {
                "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return false;
            }
        }
        true
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/", "/", ".", "..", "%2e", "%2E", "a", ";", "%3b", "%25", "%2f", "\\", "%5C", "2e",
            "?", "%",
        ])
    }

    proptest! {
        #[test]
        fn an_accepted_path_stays_under_the_base_for_every_reader(
            pieces in prop::collection::vec(piece(), 0..14),
        ) {
            let input = format!("/{}", pieces.concat());
            if let Ok(out) = normalize(&input) {
                prop_assert_eq!(normalize(&out).unwrap(), out.clone(), "idempotent");
                let path = out.split('?').next().unwrap();
                prop_assert!(stays_under_root(path), "{} -> {}", input, out);
                // A WHATWG URL parser (`%2e` is `.`), as other hops may use, keeps the base too.
                let url = url::Url::parse(&format!("http://h/api/v2{out}")).unwrap();
                prop_assert!(url.path().starts_with("/api/v2/"), "{} -> {}", input, url);
            }
        }
    }

    #[test]
    fn removes_dot_segments_and_keeps_the_rest_as_received() {
        let cases = [
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a/%2E/b/%2e%2E/c?x=/../y", "/a/c?x=/../y"),
            ("/a/b/../%41%20?q=%2e%2e", "/a/%41%20?q=%2e%2e"),
            ("/a//../b", "/a/b"),
            ("/..a/.b/b..", "/..a/.b/b.."),
            ("/", "/"),
            ("/.", "/"),
            ("/a/..", "/"),
            ("*", "*"),
            ("/%zz/100%", "/%zz/100%"),
            ("/caf\u{e9}/./x", "/caf\u{e9}/x"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
        assert!(matches!(normalize("/a/b?c=..").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_what_could_leave_the_root() {
        let cases = [
            ("/../../admin/secret", TargetError::AboveRoot),
            ("/%2e%2e/%2E%2E/admin", TargetError::AboveRoot),
            ("/./../..", TargetError::AboveRoot),
            ("/a/../..", TargetError::AboveRoot),
            ("/..", TargetError::AboveRoot),
            (
                "/..;/admin",
                TargetError::DotSegmentParameters("..;".into()),
            ),
            ("/a/.;x/b", TargetError::DotSegmentParameters(".;x".into())),
            (
                "/%2e%2e%3b/admin",
                TargetError::DotSegmentParameters("%2e%2e%3b".into()),
            ),
            ("/a%2fb", TargetError::EncodedSeparator("%2f".into())),
            ("/a%2Fb", TargetError::EncodedSeparator("%2F".into())),
            ("/a%5cb", TargetError::EncodedSeparator("%5c".into())),
            ("/a\\b", TargetError::Backslash),
            ("/%252e%252e/", TargetError::DoubleEncoded("%2e".into())),
            ("/%252F", TargetError::DoubleEncoded("%2F".into())),
            ("/%255c", TargetError::DoubleEncoded("%5c".into())),
            ("/%25%32%65", TargetError::DoubleEncoded("%2e".into())),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), Err(want), "{input}");
        }
        // A `%25` that decodes to anything else is a plain percent sign.
        assert_eq!(normalize("/100%25off").unwrap(), "/100%25off");
    }
}
