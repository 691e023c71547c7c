//! The route key of a request: its method plus its path with identifier segments templated,
//! so that `GET /users/17` and `GET /users/42` are counted and reported together as
//! `GET /users/{id}`. Explicit `[[route]]` patterns in the config take precedence; see
//! [`crate::compare`].
//!
//! [`RoutePattern`] is the one grammar for everything that picks routes: `[[route]]`
//! patterns, and the report's and gate's `--route` and `--route-max` filters over route
//! keys. `GET /users/{id}`: the method is optional, `{name}` and `*` as a whole segment
//! match exactly one segment, `*` inside a segment (`/search*`, `/v*/users`) matches any
//! characters within that one segment, and `**` matches any number of segments.

use http::Method;

/// `METHOD /path/{id}`: numeric, UUID and long hex segments become `{id}`.
pub fn auto_route(method: &Method, path: &str) -> String {
    let mut key = String::with_capacity(method.as_str().len() + 1 + path.len());
    key.push_str(method.as_str());
    key.push(' ');
    key.push_str(&template_path(path));
    key
}

/// The path with identifier-like segments replaced by `{id}`; an empty path becomes `/`.
pub fn template_path(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if is_identifier(segment) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// Numeric ids, UUIDs, and hex ids of 16 characters or more (object ids, hashes).
pub fn is_identifier(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(segment) {
        return true;
    }
    segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_identifier_segments() {
        let cases = [
            ("/users/42", "/users/{id}"),
            ("/users/42/orders/7", "/users/{id}/orders/{id}"),
            ("/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/items/{id}"),
            ("/blobs/0123456789abcdef0123", "/blobs/{id}"),
            ("/blobs/cafe", "/blobs/cafe"),
            ("/v2/users", "/v2/users"),
            ("/", "/"),
            ("", "/"),
            ("/users/", "/users/"),
        ];
        for (path, want) in cases {
            assert_eq!(template_path(path), want, "{path}");
        }
        assert_eq!(auto_route(&Method::GET, "/users/9"), "GET /users/{id}");
    }
}

/// A route pattern (grammar in the module's documentation).
#[derive(Clone, Debug)]
pub struct RoutePattern {
    method: Option<Method>,
    segments: Vec<RouteSegment>,
    path_text: String,
}

#[derive(Clone, Debug)]
enum RouteSegment {
    Literal(String),
    /// `*` or `{name}`: one segment, not empty.
    One,
    /// A segment with `*` inside (`search*`): its literal parts, in order, around the stars.
    Glob(Vec<String>),
    /// `**`: any number of segments.
    Any,
}

impl RoutePattern {
    pub fn parse(text: &str) -> Result<RoutePattern, String> {
        let text = text.trim();
        let (method, path) = match text.split_once(' ') {
            Some((m, p)) => {
                let method = Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("{m:?} is not an HTTP method"))?;
                (Some(method), p.trim())
            }
            None => (None, text),
        };
        if !path.starts_with('/') {
            return Err(
                "the path must start with `/` (for example `GET /users/{id}` or `/search*`)".into(),
            );
        }
        let mut segments = Vec::new();
        for seg in path.split('/').skip(1) {
            segments.push(match seg {
                // `**/**` means what `**` means; one of them is enough.
                "**" if matches!(segments.last(), Some(RouteSegment::Any)) => continue,
                "**" => RouteSegment::Any,
                "*" => RouteSegment::One,
                s if s.starts_with('{') && s.ends_with('}') && s.len() > 2 => RouteSegment::One,
                s if s.contains('{') || s.contains('}') => {
                    return Err(format!("segment {s:?}: `{{name}}` must be a whole segment"))
                }
                s if s.contains('*') => {
                    RouteSegment::Glob(s.split('*').map(str::to_string).collect())
                }
                s => RouteSegment::Literal(s.to_string()),
            });
        }
        Ok(RoutePattern {
            method,
            segments,
            path_text: path.to_string(),
        })
    }

    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// The path as written (`/users/{id}`).
    pub fn path_text(&self) -> &str {
        &self.path_text
    }

    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.method_matches(method.as_str()) && self.path_matches(path)
    }

    /// Whether a route key (`GET /users/{id}`, as the store holds it) is one this pattern
    /// picks. A templated segment of the key (`{id}`) is one segment like any other.
    pub fn matches_key(&self, key: &str) -> bool {
        match key.split_once(' ') {
            Some((method, path)) => self.method_matches(method) && self.path_matches(path),
            None => false,
        }
    }

    fn method_matches(&self, method: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m.as_str() == method)
    }

    fn path_matches(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').skip(1).collect();
        self.segments_match(&segs)
    }

    fn segments_match(&self, segs: &[&str]) -> bool {
        crate::wildcard::glob_segments(
            &self.segments,
            segs,
            false,
            |seg| matches!(seg, RouteSegment::Any),
            |seg, segment| match seg {
                RouteSegment::One => !segment.is_empty(),
                RouteSegment::Literal(lit) => lit == segment,
                RouteSegment::Glob(parts) => glob_within(parts, segment),
                RouteSegment::Any => false,
            },
        )
    }

    /// The route key: the pattern itself, with the request's method when it names none.
    pub fn key(&self, method: &Method) -> String {
        format!(
            "{} {}",
            self.method.as_ref().unwrap_or(method).as_str(),
            self.path_text
        )
    }
}

/// Whether `text` is the `parts` joined by any runs of characters: the first part at the
/// start, the last at the end, the others in order between. Taking each middle part at
/// its earliest place is enough (a later place can only leave less room for the rest),
/// so this is linear in the segment's length times the parts', never exponential.
fn glob_within(parts: &[String], text: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return true;
    };
    if parts.len() == 1 {
        return text == first;
    }
    if text.len() < first.len() + last.len() || !text.starts_with(first.as_str()) {
        return false;
    }
    if !text.ends_with(last.as_str()) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod pattern_tests {
    use super::*;
    use proptest::prelude::*;

    /// Exponential but obviously correct: the matcher `RoutePattern` must agree with.
    fn reference(pattern: &[RouteSegment], path: &[&str]) -> bool {
        match pattern.split_first() {
            None => path.is_empty(),
            Some((RouteSegment::Any, rest)) => {
                (0..=path.len()).any(|skip| reference(rest, &path[skip..]))
            }
            Some((seg, rest)) => match path.split_first() {
                None => false,
                Some((first, tail)) => {
                    let here = match seg {
                        RouteSegment::One => !first.is_empty(),
                        RouteSegment::Literal(lit) => lit == first,
                        RouteSegment::Glob(parts) => wildcard(&parts.join("*"), first),
                        RouteSegment::Any => false,
                    };
                    here && reference(rest, tail)
                }
            },
        }
    }

    /// Naive `*` matching, trying every split.
    fn wildcard(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((head, tail)) => {
                text.starts_with(head)
                    && (head.len()..=text.len())
                        .filter(|&i| text.is_char_boundary(i))
                        .any(|i| wildcard(tail, &text[i..]))
            }
        }
    }

    #[test]
    fn route_pattern_with_many_double_stars_on_a_deep_path_finishes() {
        let pattern = RoutePattern::parse(&format!("GET {}/zzz", "/**/*".repeat(12))).unwrap();
        let path = "/a".repeat(60);
        assert!(!pattern.matches(&Method::GET, &path));
        assert!(pattern.matches(&Method::GET, &format!("{path}/zzz")));
    }

    proptest! {
        #[test]
        fn route_matcher_agrees_with_the_reference(
            pattern in prop::collection::vec(
                prop::sample::select(vec!["a", "", "*", "{id}", "**", "a*", "*b", "a*b", "*a*"]),
                0..6,
            ),
            path in prop::collection::vec(
                prop::sample::select(vec!["a", "b", "", "ab", "ba", "aab"]),
                0..8,
            ),
        ) {
            let text = format!("/{}", pattern.join("/"));
            let compiled = RoutePattern::parse(&text).unwrap();
            prop_assert_eq!(
                compiled.segments_match(&path),
                reference(&compiled.segments, &path)
            );
        }
    }

    fn picks(pattern: &str, key: &str) -> bool {
        RoutePattern::parse(pattern).unwrap().matches_key(key)
    }

    #[test]
    fn one_grammar_for_route_filters() {
        let cases = [
            ("GET /users/*", "GET /users/{id}", true),
            ("GET /users/*", "GET /users/{id}/orders", false),
            ("GET /users/**", "GET /users/{id}/orders", true),
            ("/users/{id}", "POST /users/{id}", true),
            ("GET /search*", "GET /search", true),
            ("GET /search*", "GET /searchable", true),
            ("GET /search*", "GET /search/{id}", false),
            ("GET /v*/users", "GET /v2/users", true),
            ("GET /v*/users", "GET /v2/x/users", false),
            ("GET /*a*a*a*b", "GET /aaaaaaaaab", true),
            ("GET /a*b*c", "GET /abc", true),
            ("GET /a*b*c", "GET /ac", false),
            ("GET /ab*ba", "GET /aba", false),
            ("POST /a", "GET /a", false),
            ("GET /a", "GET /a", true),
            ("GET /a", "no method", false),
        ];
        for (pattern, key, want) in cases {
            assert_eq!(picks(pattern, key), want, "{pattern} vs {key}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(RoutePattern::parse("users")
            .unwrap_err()
            .contains("must start with `/`"));
        assert!(RoutePattern::parse("GE(T /a")
            .unwrap_err()
            .contains("not an HTTP method"));
        assert!(RoutePattern::parse("GET /a{id}")
            .unwrap_err()
            .contains("whole segment"));
    }
}
