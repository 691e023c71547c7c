//! The one path grammar shared by reported differences and ignore rules (the table in
//! docs/compare-rules.md): `status`, `headers.<lowercase-name>`,
//! `trailers.<lowercase-name>`, `body`, `body/<json-pointer>`, `body#L<n>` (line `n` of a
//! text body). Patterns add `*` for exactly one segment and `**` for any number, and
//! `body#L*` for any line, so a path copied out of a report can be pasted into the config
//! unchanged.

/// Splits a path or pattern into segments: `headers.etag` is `["headers", "etag"]` (and
/// `trailers.grpc-status` likewise), `body/items/0` is `["body", "items", "0"]`, `body#L7`
/// is `["body", "#L7"]`: a line is one segment below `body`, so an ignore of `body` covers
/// every line as it covers every JSON field.
pub fn segments(path: &str) -> Vec<&str> {
    if let Some(line) = path
        .strip_prefix("body")
        .filter(|rest| rest.starts_with('#'))
    {
        return vec!["body", line];
    }
    for section in ["headers", "trailers"] {
        if let Some(name) = path
            .strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            return vec![section, name];
        }
    }
    path.split('/').collect()
}

/// Escapes an object key as one JSON-pointer segment (RFC 6901 section 3: `~` is `~0`,
/// `/` is `~1`).
pub fn escape_key(key: &str, out: &mut String) {
    if !key.contains(['~', '/']) {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// Undoes [`escape_key`]: the object key one JSON-pointer segment names (`a~1b` is `a/b`).
pub fn unescape_key(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: zero or more segments.
    Any,
    /// `#L*`: any line of a text body.
    Line,
}

/// The path of line `n` (1-based) of a text body.
pub fn line_path(n: usize) -> String {
    format!("body#L{n}")
}

/// A line segment as [`segments`] splits it: `#L` and a line number.
fn is_line(segment: &str) -> bool {
    segment
        .strip_prefix("#L")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A compiled path pattern.
#[derive(Clone, Debug)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Checks the pattern against the grammar, so a typo fails at startup.
    pub fn compile(text: &str) -> Result<PathPattern, String> {
        let text = text.trim();
        let root = segments(text);
        let named_field = |section: &str| {
            root.first() == Some(&section) && text.starts_with(section) && root.len() == 2
        };
        match root.first().copied() {
            Some("status") | Some("headers") | Some("trailers") if root.len() == 1 => {}
            Some(section @ ("headers" | "trailers")) if named_field(section) => {
                if root[1].is_empty() {
                    return Err(format!("a field name is missing after `{section}.`"));
                }
            }
            Some("body") if text.starts_with("body#") => {
                if root.len() != 2 || !(root[1] == "#L*" || is_line(root[1])) {
                    return Err(
                        "a text line is written `body#L<n>` (1-based) or `body#L*` for any line"
                            .into(),
                    );
                }
            }
            Some("body") => {}
            _ => {
                return Err(
                    "a path starts with `status`, `headers.<name>`, `trailers.<name>` or `body` (for example `body/items/*/id`)"
                        .into(),
                )
            }
        }
        let field_names = root.len() == 2 && (named_field("headers") || named_field("trailers"));
        let mut compiled = Vec::with_capacity(root.len());
        for (i, seg) in root.iter().enumerate() {
            let seg = if i == 1 && field_names {
                seg.to_ascii_lowercase()
            } else {
                seg.to_string()
            };
            compiled.push(match seg.as_str() {
                "#L*" if i == 1 && text.starts_with("body#") => Segment::Line,
                "*" => Segment::One,
                // `**/**` means what `**` means; one of them is enough.
                "**" if compiled.last() == Some(&Segment::Any) => continue,
                "**" => Segment::Any,
                s if s.contains('*') => {
                    return Err(format!(
                        "segment {s:?}: `*` and `**` must be a whole segment"
                    ))
                }
                _ => Segment::Literal(seg),
            });
        }
        Ok(PathPattern {
            text: text.to_string(),
            segments: compiled,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern matches the path exactly.
    pub fn matches(&self, path: &[&str]) -> bool {
        match_from(&self.segments, path, false)
    }

    /// True when the pattern matches the path or one of its ancestors: ignoring
    /// `body/items` also hides everything below it.
    pub fn covers(&self, path: &[&str]) -> bool {
        match_from(&self.segments, path, true)
    }
}

fn match_from(pattern: &[Segment], path: &[&str], prefix_ok: bool) -> bool {
    crate::wildcard::glob_segments(
        pattern,
        path,
        prefix_ok,
        |seg| *seg == Segment::Any,
        |seg, first| match seg {
            Segment::One => true,
            Segment::Literal(lit) => lit == first,
            Segment::Line => is_line(first),
            Segment::Any => false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(pattern: &str, path: &str) -> bool {
        PathPattern::compile(pattern)
            .unwrap()
            .covers(&segments(path))
    }

    #[test]
    fn wildcards_and_prefixes() {
        let cases = [
            ("body/**/updated_at", "body/updated_at", true),
            ("body/**/updated_at", "body/a/b/updated_at", true),
            ("body/**/updated_at", "body/a/b/updated_at/x", true),
            ("body/**/updated_at", "body/a/updated", false),
            ("body/items/*/id", "body/items/3/id", true),
            ("body/items/*/id", "body/items/id", false),
            ("body/items", "body/items/0/price", true),
            ("body/items", "body/itemsx", false),
            ("headers.ETag", "headers.etag", true),
            ("headers.etag", "headers.date", false),
            ("trailers.grpc-message", "trailers.grpc-message", true),
            ("trailers.Grpc-Message", "trailers.grpc-message", true),
            ("trailers", "trailers.grpc-status", true),
            ("trailers.grpc-message", "trailers.grpc-status", false),
            ("status", "status", true),
            ("body", "body/x", true),
            ("body/**", "body", true),
            ("body", "body#L745", true),
            ("body#L745", "body#L745", true),
            ("body#L745", "body#L74", false),
            ("body#L*", "body#L1", true),
            ("body#L*", "body", false),
            ("body#L*", "body/x", false),
            ("body/x", "body#L1", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(covers(pattern, path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "",
            "bodyx",
            "headers.",
            "trailers.",
            "body/it*ms",
            "statusx",
            "foo/bar",
            "body#",
            "body#L",
            "body#Lx",
            "body#L1/x",
            "body#L1*",
        ] {
            assert!(PathPattern::compile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_pointer_keys() {
        let mut s = String::new();
        escape_key("a/b~c", &mut s);
        assert_eq!(s, "a~1b~0c");
        assert_eq!(unescape_key(&s), "a/b~c");
        assert_eq!(unescape_key("~01"), "~1");
    }
}
