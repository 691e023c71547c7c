//! Secret values inside bodies and queries: JSON at any depth, `application/x-www-form-urlencoded`
//! (and the query, which has the same syntax), and `multipart/form-data` (RFC 7578).
//!
//! Each function rewrites only the secret values and keeps every other byte as it was, so
//! a stored example still reads like the body that was sent. Each returns `None` when
//! nothing was secret (or the input does not parse as its kind), and pushes every value it
//! replaced to `found`, so the caller can scrub the same strings out of derived text (a
//! unified diff, a rendered difference).

use crate::compare::path::escape_key;
use jiter::{Jiter, JiterErrorType, JiterResult, JsonErrorType, Peek};

/// Deeper JSON than this is replaced whole: a walk never recurses without bound.
const MAX_DEPTH: usize = 128;

/// Redacts the values of secret members. `root` is the path of the document itself
/// (`["body"]` for a body, the segments of a difference path for a rendered value);
/// `secret(path, is_field)` decides per value (`path` ends with the member's escaped key or
/// the element's index; with `full_paths` false, only that last segment is filled in and
/// array indices are left empty, which saves an allocation per value when no configured
/// path needs them); `marker(raw)` is the JSON text put in place of the raw JSON text of a
/// secret value.
pub fn json(
    bytes: &[u8],
    root: &[&str],
    full_paths: bool,
    secret: &dyn Fn(&[String], bool) -> bool,
    marker: &dyn Fn(&[u8]) -> String,
    found: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let mut walk = JsonWalk {
        jiter: Jiter::new(bytes),
        path: root.iter().map(|s| s.to_string()).collect(),
        full_paths,
        secret,
        spans: Vec::new(),
    };
    let parsed = (|| {
        let peek = walk.jiter.peek()?;
        walk.member(peek, false, 0)?;
        walk.jiter.finish()
    })();
    match parsed {
        // Too deep for the parser to walk: nothing in it can be told apart, so all of it
        // is treated as secret.
        Err(e)
            if matches!(
                e.error_type,
                JiterErrorType::JsonError(JsonErrorType::RecursionLimitExceeded)
            ) =>
        {
            walk.spans = vec![(0, bytes.len())];
        }
        Err(_) => return None,
        Ok(()) if walk.spans.is_empty() => return None,
        Ok(()) => {}
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for (start, end) in walk.spans {
        let raw = &bytes[start..end];
        out.extend_from_slice(&bytes[at..start]);
        out.extend_from_slice(marker(raw).as_bytes());
        remember_json(raw, found);
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

/// A secret JSON value as the strings it may reappear as elsewhere: its raw text, and for
/// strings the text without quotes and the decoded text.
fn remember_json(raw: &[u8], found: &mut Vec<String>) {
    let raw = String::from_utf8_lossy(raw);
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if let Ok(decoded) = serde_json::from_str::<String>(&raw) {
            if decoded != inner {
                found.push(decoded);
            }
        }
        found.push(inner.to_string());
    }
    found.push(raw.into_owned());
}

struct JsonWalk<'j, 's> {
    jiter: Jiter<'j>,
    path: Vec<String>,
    full_paths: bool,
    secret: &'s dyn Fn(&[String], bool) -> bool,
    /// Byte ranges of the secret values, in document order, never nested.
    spans: Vec<(usize, usize)>,
}

impl JsonWalk<'_, '_> {
    fn member(&mut self, peek: Peek, is_field: bool, depth: usize) -> JiterResult<()> {
        let start = self.jiter.current_index();
        if depth > MAX_DEPTH || (self.secret)(&self.path, is_field) {
            self.jiter.known_skip(peek)?;
            self.spans.push((start, self.jiter.current_index()));
            return Ok(());
        }
        match peek {
            Peek::Array => {
                let mut next = self.jiter.known_array()?;
                let mut index = 0usize;
                while let Some(peek) = next {
                    self.path.push(if self.full_paths {
                        index.to_string()
                    } else {
                        String::new()
                    });
                    self.member(peek, false, depth + 1)?;
                    self.path.pop();
                    index += 1;
                    next = self.jiter.array_step()?;
                }
            }
            Peek::Object => {
                let mut key = self.jiter.known_object()?.map(escaped);
                while let Some(name) = key {
                    let peek = self.jiter.peek()?;
                    self.path.push(name);
                    self.member(peek, true, depth + 1)?;
                    self.path.pop();
                    key = self.jiter.next_key()?.map(escaped);
                }
            }
            _ => self.jiter.known_skip(peek)?,
        }
        Ok(())
    }
}

/// `key` as one JSON-pointer segment, owned.
pub(super) fn escaped(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    escape_key(key, &mut out);
    out
}

/// Redacts the values of secret `name=value` pairs of a query or form body (WHATWG URL
/// `application/x-www-form-urlencoded`), deciding on the percent-decoded name.
pub fn form(
    text: &str,
    secret: &dyn Fn(&str) -> bool,
    marker: &dyn Fn(&str) -> String,
    found: &mut Vec<String>,
) -> Option<String> {
    let mut changed = false;
    let pairs: Vec<String> = text
        .split('&')
        .map(|pair| {
            let Some((name, value)) = pair.split_once('=') else {
                return pair.to_string();
            };
            let Some((decoded_name, decoded_value)) =
                form_urlencoded::parse(pair.as_bytes()).next()
            else {
                return pair.to_string();
            };
            if value.is_empty() || !secret(&decoded_name) {
                return pair.to_string();
            }
            changed = true;
            if decoded_value != value {
                found.push(decoded_value.to_string());
            }
            found.push(value.to_string());
            format!("{name}={}", marker(&decoded_value))
        })
        .collect();
    changed.then(|| pairs.join("&"))
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type (RFC 7578 section 4.1).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        (name.trim().eq_ignore_ascii_case("boundary") && !value.is_empty())
            .then(|| value.to_string())
    })
}

/// Replaces the content of every part whose `Content-Disposition: form-data; name=...` is
/// secret (RFC 7578 section 4.2), keeping the part's headers and the framing.
pub fn multipart(
    body: &[u8],
    boundary: &str,
    secret: &dyn Fn(&str) -> bool,
    marker: &str,
    found: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n{dash}");
    let mut at = if body.starts_with(dash.as_bytes()) {
        0
    } else {
        find(body, delimiter.as_bytes(), 0)? + 2
    };
    let mut out = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut copied = 0;
    loop {
        // `at` is at a dash-boundary; the part begins after its line.
        let after = at + dash.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        let Some(line_end) = find(body, b"\r\n", after) else {
            break;
        };
        let part_start = line_end + 2;
        let Some(part_end) = find(body, delimiter.as_bytes(), part_start) else {
            break;
        };
        if let Some(head_end) = find(&body[..part_end], b"\r\n\r\n", part_start) {
            let content = head_end + 4;
            let head = String::from_utf8_lossy(&body[part_start..head_end]);
            if part_name(&head).is_some_and(|name| secret(&name)) && content < part_end {
                out.extend_from_slice(&body[copied..content]);
                out.extend_from_slice(marker.as_bytes());
                found.push(String::from_utf8_lossy(&body[content..part_end]).into_owned());
                copied = part_end;
                changed = true;
            }
        }
        at = part_end + 2;
    }
    if !changed {
        return None;
    }
    out.extend_from_slice(&body[copied..]);
    Some(out)
}

/// The `name` parameter of a part's Content-Disposition header.
fn part_name(head: &str) -> Option<String> {
    head.split("\r\n").find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("name")
                .then(|| value.trim().trim_matches('"').to_string())
        })
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_secret_field(path: &[String], is_field: bool) -> bool {
        is_field && path.last().is_some_and(|k| k == "password" || k == "token")
    }

    #[test]
    fn json_values_at_any_depth_are_replaced_and_the_rest_kept() {
        let body = br#"{"user": {"name": "ann", "password": "hunter22"}, "items": [{"token": {"a": 1}}], "n": 1}"#;
        let mut found = Vec::new();
        let marker = |_: &[u8]| "\"[redacted]\"".to_string();
        let out = json(body, &["body"], true, &is_secret_field, &marker, &mut found).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"user": {"name": "ann", "password": "[redacted]"}, "items": [{"token": "[redacted]"}], "n": 1}"#
        );
        assert!(found.contains(&"hunter22".to_string()));
        assert!(found.contains(&r#"{"a": 1}"#.to_string()));
        let plain = br#"{"name": "ann"}"#;
        assert_eq!(
            json(
                plain,
                &["body"],
                true,
                &is_secret_field,
                &marker,
                &mut found
            ),
            None
        );
        assert_eq!(
            json(
                b"{bad",
                &["body"],
                true,
                &is_secret_field,
                &marker,
                &mut found
            ),
            None
        );
    }

    #[test]
    fn json_deeper_than_the_bound_is_replaced_whole_without_recursing_further() {
        let marker = |_: &[u8]| "null".to_string();
        for depth in [150, 5000] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let mut found = Vec::new();
            let out = json(
                deep.as_bytes(),
                &["body"],
                false,
                &|_, _| false,
                &marker,
                &mut found,
            );
            let out = String::from_utf8(out.unwrap()).unwrap();
            assert!(
                out.len() < deep.len() && out.contains("null"),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn form_pairs_are_decided_on_the_decoded_name() {
        let mut found = Vec::new();
        let secret = |name: &str| name == "password";
        let marker = |_: &str| "[redacted]".to_string();
        let out = form(
            "user=ann&pass%77ord=hunter%2022&x",
            &secret,
            &marker,
            &mut found,
        );
        assert_eq!(out.as_deref(), Some("user=ann&pass%77ord=[redacted]&x"));
        assert!(found.contains(&"hunter 22".to_string()));
        assert_eq!(form("user=ann", &secret, &marker, &mut found), None);
    }

    #[test]
    fn multipart_parts_named_secret_are_replaced() {
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let b = boundary(ct).unwrap();
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nhunter22\r\n\
                    --XyZ--\r\n";
        let mut found = Vec::new();
        let secret = |name: &str| name == "password";
        let out = multipart(body.as_bytes(), &b, &secret, "[redacted]", &mut found).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, body.replace("hunter22", "[redacted]"));
        assert_eq!(found, vec!["hunter22".to_string()]);
        assert_eq!(boundary("application/json"), None);
    }
}
