//! Secrets never reach the disk or the logs: everything about a request or a response that
//! is stored (differences, examples, unified diffs) or recorded (traffic files) passes
//! through a [`Redactor`] first. Comparison runs before redaction and sees the real values.
//!
//! What is secret is listed in [`rules`] (headers, query parameters, body fields and
//! paths; the `[redact]` config section adds to the defaults). [`body`] finds those values
//! inside JSON, form and multipart bodies and queries; [`url`] masks passwords in upstream
//! URLs. A secret value in a stored example reads `[redacted]`; in a difference it reads
//! `[redacted hmac:<12 hex digits>]`, an HMAC-SHA256 keyed with the store's own key, so
//! that a difference in a secret stays visible (two digests that differ) without the value.

mod body;
mod rules;
pub mod url;

use rules::unescape;
pub use rules::{RedactError, RedactRules, RedactSection};

use crate::compare::path::segments;
use crate::exchange::{Captured, RecordedRequest};
use crate::store::MismatchDetail;
use body::escaped;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use std::sync::Arc;

/// What a redacted value reads as in stored examples and record files.
pub const REDACTED: &str = "[redacted]";

/// Secret values shorter than this are not searched for in derived text (diff lines,
/// rendered differences): a two-letter value would match all over the text. Values at a
/// secret place are always replaced, whatever their length.
pub const MIN_SCRUB_LEN: usize = 4;

/// At most this many secret values of one exchange are searched for in derived text, the
/// first found (headers and query before bodies): the search costs values times texts, and
/// a body with a token per record would otherwise make it quadratic on the compare thread.
pub const MAX_SCRUBBED: usize = 64;

/// Bytes of the HMAC shown: 48 bits tell two values apart without identifying either.
const DIGEST_BYTES: usize = 6;

/// Applies the redaction rules, with the key of the store that will hold the result.
#[derive(Clone)]
pub struct Redactor {
    rules: Arc<RedactRules>,
    /// `None` for record files: nothing compares their values, so they carry no digest.
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("Redactor")
            .field("rules", &self.rules)
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl Redactor {
    /// For a store: differences show digests keyed with `key`.
    pub fn new(rules: Arc<RedactRules>, key: [u8; 32]) -> Redactor {
        Redactor {
            rules,
            key: Some(key),
        }
    }

    /// For record files: every secret reads `[redacted]`.
    pub fn without_digests(rules: Arc<RedactRules>) -> Redactor {
        Redactor { rules, key: None }
    }

    pub fn rules(&self) -> &RedactRules {
        &self.rules
    }

    /// `[redacted hmac:1a2b3c4d5e6f]` for `value`; equal values give equal digests.
    pub fn digest(&self, value: &[u8]) -> String {
        let Some(key) = &self.key else {
            return REDACTED.to_string();
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let hex: String = tag[..DIGEST_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("[redacted hmac:{hex}]")
    }

    /// Redacts a request before it is recorded: secret headers, query parameters and body
    /// fields read `[redacted]`.
    pub fn request(&self, request: &mut RecordedRequest) {
        self.request_into(request, &mut Vec::new());
    }

    /// Redacts a request and the primary's response recorded beside it
    /// (`--record-responses`): secret headers and body fields of both, and a secret of
    /// the request that the response echoes (a token reflected in a body) wherever it
    /// appears in the response's text.
    pub fn recorded_exchange(&self, request: &mut RecordedRequest, response: &mut Captured) {
        let mut found = Vec::new();
        self.request_into(request, &mut found);
        self.response_into(response, &mut found);
        let scrub = Scrub::new(self, found);
        if scrub.secrets.is_empty() {
            return;
        }
        if let Ok(text) = std::str::from_utf8(&response.body) {
            let mut text = text.to_string();
            scrub.apply(&mut text);
            response.body = text.into();
        }
    }

    /// Redacts everything a stored mismatch holds: the request, both responses, the
    /// difference values and the unified diff. Runs after the comparison.
    pub fn mismatch(&self, detail: &mut MismatchDetail) {
        let mut found = Vec::new();
        self.request_into(&mut detail.request, &mut found);
        self.response_into(&mut detail.primary, &mut found);
        self.response_into(&mut detail.secondary, &mut found);
        let forms = is_form(&detail.primary.headers) || is_form(&detail.secondary.headers);
        let scrub = Scrub::new(self, found);
        for difference in &mut detail.differences {
            // A renamed key's value is secret if either name is: the secondary's value sits
            // at `to`, and is redacted as the field found there.
            let secret = self.rules.is_secret_path(&difference.path)
                || difference
                    .to
                    .as_deref()
                    .is_some_and(|to| self.rules.is_secret_path(to));
            let is_body = |path: &str| {
                path == "body" || path.starts_with("body/") || path.starts_with("body#")
            };
            let is_line = difference.path.starts_with("body#");
            let secondary_path = difference.to.as_deref().unwrap_or(&difference.path);
            let places = [difference.path.as_str(), secondary_path];
            let values = [&mut difference.primary, &mut difference.secondary];
            for (value, path) in values.into_iter().zip(places) {
                let Some(value) = value else { continue };
                if secret {
                    *value = self.digest(value.as_bytes());
                    continue;
                }
                if is_body(path) {
                    let root = segments(path);
                    if let Some(redacted) = self.json(value.as_bytes(), &root, true, &mut vec![]) {
                        *value = String::from_utf8_lossy(&redacted).into_owned();
                    }
                    if forms && is_line {
                        // A line of a form body: `a=1&password=...`.
                        if let Some(line) = self.form_fields(value, true, &mut vec![]) {
                            *value = line;
                        }
                    }
                }
                scrub.apply(value);
            }
        }
        for line in &mut detail.rewrites {
            scrub.apply(line);
        }
        if let Some(diff) = &mut detail.body_diff {
            if forms {
                *diff = diff
                    .split_inclusive('\n')
                    .map(|line| match line.split_at_checked(1) {
                        Some((mark @ (" " | "+" | "-"), rest))
                            if !line.starts_with("+++") && !line.starts_with("---") =>
                        {
                            match self.form_fields(rest, true, &mut vec![]) {
                                Some(rest) => format!("{mark}{rest}"),
                                None => line.to_string(),
                            }
                        }
                        _ => line.to_string(),
                    })
                    .collect();
            }
            scrub.apply(diff);
        }
    }

    fn request_into(&self, request: &mut RecordedRequest, found: &mut Vec<String>) {
        self.headers(&mut request.headers, found);
        if let Some(query) = request.uri.query() {
            let rules = &self.rules;
            let marker = |_: &str| REDACTED.to_string();
            if let Some(query) =
                body::form(query, &|name| rules.is_secret_query(name), &marker, found)
            {
                // Scheme and authority (an HTTP/2 request has them) stay as they were.
                let mut parts = std::mem::take(&mut request.uri).into_parts();
                let target = format!(
                    "{}?{query}",
                    parts.path_and_query.as_ref().map_or("/", |p| p.path())
                );
                parts.path_and_query = target.parse().ok();
                // Cannot fail ([redacted] is valid in a query); if it did, the URI would
                // be `/` rather than keep the secret.
                request.uri =
                    http::Uri::from_parts(parts).unwrap_or_else(|_| http::Uri::from_static("/"));
            }
        }
        if let Some(redacted) = self.body(&mut request.headers, &request.body, found) {
            request.body = redacted.into();
        }
    }

    fn response_into(&self, captured: &mut Captured, found: &mut Vec<String>) {
        self.headers(&mut captured.headers, found);
        if let Some(redacted) = self.body(&mut captured.headers, &captured.body, found) {
            captured.body = redacted.into();
        }
    }

    /// Replaces the value of every secret header, keeping the header's presence and count
    /// so that a difference in *whether* a credential was sent stays visible.
    fn headers(&self, headers: &mut HeaderMap, found: &mut Vec<String>) {
        for name in self.rules.headers() {
            if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
                for value in entry.iter_mut() {
                    remember_header(name.as_str(), value, found);
                    *value = HeaderValue::from_static(REDACTED);
                }
            }
        }
    }

    /// A body with its secret fields replaced, `None` when nothing in it was secret. A
    /// content-encoded body is decoded first; when it changes, it is kept decoded and the
    /// Content-Encoding and Content-Length headers are removed, so what is stored says
    /// what it is.
    fn body(
        &self,
        headers: &mut HeaderMap,
        raw: &[u8],
        found: &mut Vec<String>,
    ) -> Option<Vec<u8>> {
        if raw.is_empty() {
            return None;
        }
        let encoded = headers.contains_key(CONTENT_ENCODING);
        let decoded;
        let bytes = if encoded {
            decoded = crate::compare::decode::decode(headers, raw).ok()?.bytes;
            &decoded[..]
        } else {
            raw
        };
        let media = crate::compare::decode::media_type(headers);
        let redacted = match media.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let text = std::str::from_utf8(bytes).ok()?;
                self.form_fields(text, false, found).map(String::into_bytes)
            }
            Some(m) if m.starts_with("multipart/form-data") => {
                let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
                let boundary = body::boundary(content_type)?;
                let rules = &self.rules;
                let secret = |name: &str| rules.is_secret_value(&["body", &escaped(name)], true);
                body::multipart(bytes, &boundary, &secret, REDACTED, found)
            }
            Some(m) if is_json_type(m) => self.json(bytes, &["body"], false, found),
            None | Some("text/plain" | "application/octet-stream") => {
                let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
                if matches!(first, Some(b'{' | b'[')) {
                    self.json(bytes, &["body"], false, found)
                } else {
                    None
                }
            }
            Some(_) => None,
        }?;
        if encoded {
            headers.remove(CONTENT_ENCODING);
            headers.remove(CONTENT_LENGTH);
        }
        Some(redacted)
    }

    /// JSON with secret values replaced by `[redacted]`, or by their digest when `digests`.
    fn json(
        &self,
        bytes: &[u8],
        root: &[&str],
        digests: bool,
        found: &mut Vec<String>,
    ) -> Option<Vec<u8>> {
        let rules = &self.rules;
        let secret = |path: &[String], is_field: bool| {
            let named = is_field
                && path
                    .last()
                    .is_some_and(|key| rules.is_secret_field(&unescape(key)));
            named || {
                rules.has_paths() && {
                    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                    rules.is_secret_value(&segments, false)
                }
            }
        };
        let marker = |raw: &[u8]| {
            let shown = if digests {
                self.digest(raw)
            } else {
                REDACTED.to_string()
            };
            format!("\"{shown}\"")
        };
        body::json(bytes, root, rules.has_paths(), &secret, &marker, found)
    }

    /// Form fields (`a=1&password=...`) with secret values replaced.
    fn form_fields(&self, text: &str, digests: bool, found: &mut Vec<String>) -> Option<String> {
        let rules = &self.rules;
        let secret = |name: &str| rules.is_secret_value(&["body", &escaped(name)], true);
        let marker = |value: &str| {
            if digests {
                self.digest(value.as_bytes())
            } else {
                REDACTED.to_string()
            }
        };
        body::form(text, &secret, &marker, found)
    }
}

fn is_json_type(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json") || media.ends_with("/json")
}

fn is_form(headers: &HeaderMap) -> bool {
    crate::compare::decode::media_type(headers).as_deref()
        == Some("application/x-www-form-urlencoded")
}

/// A secret header value, and the parts of it that may reappear elsewhere on their own:
/// the credentials after an Authorization scheme (RFC 9110 section 11.4), every cookie
/// value of a Cookie header, the cookie value of a Set-Cookie header (RFC 6265 section 4).
fn remember_header(name: &str, value: &HeaderValue, found: &mut Vec<String>) {
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let cookie_value = |pair: &str| pair.split_once('=').map(|(_, v)| v.trim().to_string());
    match name {
        "cookie" => found.extend(text.split(';').filter_map(cookie_value)),
        "set-cookie" => found.extend(text.split(';').next().and_then(cookie_value)),
        _ => {
            if let Some((_, credentials)) = text.trim().split_once(' ') {
                found.push(credentials.trim().to_string());
            }
        }
    }
    found.push(text);
}

/// The secret values of one exchange, searched for in text derived from it (unified diffs,
/// rendered differences) and replaced by their digests.
struct Scrub {
    /// Longest first, so a value is replaced before any shorter value inside it.
    secrets: Vec<(String, String)>,
}

impl Scrub {
    fn new(redactor: &Redactor, mut found: Vec<String>) -> Scrub {
        let mut seen = std::collections::HashSet::new();
        found.retain(|s| s.len() >= MIN_SCRUB_LEN && s != REDACTED && seen.insert(s.clone()));
        found.truncate(MAX_SCRUBBED);
        found.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let secrets = found
            .into_iter()
            .map(|s| {
                let digest = redactor.digest(s.as_bytes());
                (s, digest)
            })
            .collect();
        Scrub { secrets }
    }

    fn apply(&self, text: &mut String) {
        for (secret, digest) in &self.secrets {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{DiffKind, Difference};
    use bytes::Bytes;
    use http::{Method, StatusCode};
    use std::time::Duration;

    fn redactor() -> Redactor {
        Redactor::new(Arc::new(RedactRules::default()), [7; 32])
    }

    fn captured(content_type: &str, body: &str, cookie: &str) -> Captured {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
        headers.insert("set-cookie", cookie.parse().unwrap());
        Captured {
            trailers: Default::default(),
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body.to_string()),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn redacts_every_value_of_secret_headers_only() {
        let mut h = HeaderMap::new();
        h.append("authorization", HeaderValue::from_static("Bearer abc"));
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        h.append("x-request-id", HeaderValue::from_static("r1"));
        redactor().headers(&mut h, &mut Vec::new());
        assert_eq!(h["authorization"], REDACTED);
        let cookies: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(cookies, vec![REDACTED, REDACTED]);
        assert_eq!(h["x-request-id"], "r1");
    }

    #[test]
    fn digests_are_keyed_and_equal_for_equal_values() {
        let a = redactor();
        let b = Redactor::new(Arc::new(RedactRules::default()), [8; 32]);
        assert_eq!(a.digest(b"x"), a.digest(b"x"));
        assert_ne!(a.digest(b"x"), a.digest(b"y"));
        assert_ne!(a.digest(b"x"), b.digest(b"x"));
        assert!(a.digest(b"x").starts_with("[redacted hmac:"));
        assert_eq!(a.digest(b"x").len(), "[redacted hmac:]".len() + 12);
        let unkeyed = Redactor::without_digests(Arc::new(RedactRules::default()));
        assert_eq!(unkeyed.digest(b"x"), REDACTED);
        assert!(!format!("{a:?}").contains("7, 7"));
    }

    #[test]
    fn a_mismatch_keeps_no_secret_and_shows_changes_as_digests() {
        let r = redactor();
        let mut detail = MismatchDetail {
            request: RecordedRequest {
                method: Method::POST,
                uri: "/login?access_token=tok-AAAA&page=2".parse().unwrap(),
                headers: HeaderMap::new(),
                body: Bytes::from_static(br#"{"user":"ann","password":"pw-BBBB"}"#),
            },
            primary: captured(
                "application/json",
                r#"{"token":"tok-CCCC","n":1}"#,
                "sid=sid-DDDD; Path=/",
            ),
            secondary: captured(
                "application/json",
                r#"{"token":"tok-EEEE","n":1}"#,
                "sid=sid-FFFF; Path=/",
            ),
            differences: vec![
                Difference {
                    path: "headers.set-cookie".into(),
                    kind: DiffKind::Changed,
                    primary: Some("sid=sid-DDDD; Path=/".into()),
                    secondary: Some("sid=sid-FFFF; Path=/".into()),
                    to: None,
                },
                Difference {
                    path: "body/token".into(),
                    kind: DiffKind::Changed,
                    primary: Some("\"tok-CCCC\"".into()),
                    secondary: Some("\"tok-EEEE\"".into()),
                    to: None,
                },
                Difference {
                    path: "body/extra".into(),
                    kind: DiffKind::Added,
                    primary: None,
                    secondary: Some(r#"{"refresh_token":"rt-GGGG","echo":"sid-DDDD"}"#.into()),
                    to: None,
                },
                // A value renamed into a secret field is as secret as the field.
                Difference {
                    path: "body/note".into(),
                    kind: DiffKind::Renamed,
                    primary: Some("\"tok-HHHH\"".into()),
                    secondary: Some("\"tok-HHHH\"".into()),
                    to: Some("body/token".into()),
                },
            ],
            body_diff: Some("-sid-DDDD\n+sid-FFFF\n".into()),
            rewrites: Vec::new(),
        };
        detail
            .request
            .headers
            .insert(CONTENT_TYPE, "application/json".parse().unwrap());
        r.mismatch(&mut detail);
        let all = format!("{detail:?}");
        for secret in [
            "AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG", "HHHH",
        ] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
        assert_eq!(detail.request.uri, "/login?access_token=[redacted]&page=2");
        let mut absolute = RecordedRequest {
            method: Method::GET,
            uri: "http://h:1/a?sig=s-JJJJ".parse().unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        r.request(&mut absolute);
        assert_eq!(absolute.uri, "http://h:1/a?sig=[redacted]");
        let cookie = &detail.differences[0];
        assert!(cookie
            .primary
            .as_ref()
            .unwrap()
            .starts_with("[redacted hmac:"));
        assert_ne!(cookie.primary, cookie.secondary);
        assert!(detail.differences[2]
            .secondary
            .as_ref()
            .unwrap()
            .contains("\"refresh_token\":\"[redacted hmac:"));
    }

    #[test]
    fn a_gzip_body_with_a_secret_is_kept_decoded_and_redacted() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"password":"pw-HHHH","n":1}"#).unwrap();
        let mut c = captured("application/json", "", "a=b");
        c.body = gz.finish().unwrap().into();
        c.headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        c.headers.insert(CONTENT_LENGTH, "40".parse().unwrap());
        redactor().response_into(&mut c, &mut Vec::new());
        assert_eq!(c.body, r#"{"password":"[redacted]","n":1}"#);
        assert!(!c.headers.contains_key(CONTENT_ENCODING));
        assert!(!c.headers.contains_key(CONTENT_LENGTH));
    }

    #[test]
    fn configured_paths_reach_into_arrays() {
        let rules = RedactRules::compile(&RedactSection {
            body: vec!["body/cards/*/number".into()],
            ..RedactSection::default()
        })
        .unwrap();
        let r = Redactor::new(Arc::new(rules), [1; 32]);
        let mut c = captured(
            "application/json",
            r#"{"cards":[{"number":"4111-IIII","exp":"12/30"}],"number":3}"#,
            "a=b",
        );
        r.response_into(&mut c, &mut Vec::new());
        assert_eq!(
            c.body,
            r#"{"cards":[{"number":"[redacted]","exp":"12/30"}],"number":3}"#
        );
    }

    #[test]
    fn form_bodies_and_their_text_diffs_are_redacted() {
        let r = redactor();
        let form = "application/x-www-form-urlencoded";
        let mut detail = MismatchDetail {
            request: RecordedRequest {
                method: Method::POST,
                uri: "/x".parse().unwrap(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
            },
            primary: captured(form, "user=ann&password=ab", "a=b"),
            secondary: captured(form, "user=ann&password=cd", "a=b"),
            differences: vec![Difference {
                path: "body#L1".into(),
                kind: DiffKind::Changed,
                primary: Some("user=ann&password=ab".into()),
                secondary: Some("user=ann&password=cd".into()),
                to: None,
            }],
            body_diff: Some(
                "--- primary\n+++ secondary\n-user=ann&password=ab\n+user=ann&password=cd\n".into(),
            ),
            rewrites: Vec::new(),
        };
        r.mismatch(&mut detail);
        assert_eq!(detail.primary.body, "user=ann&password=[redacted]");
        let d = &detail.differences[0];
        assert!(d
            .primary
            .as_ref()
            .unwrap()
            .starts_with("user=ann&password=[redacted hmac:"));
        assert_ne!(d.primary, d.secondary);
        let diff = detail.body_diff.unwrap();
        assert!(!diff.contains("=ab") && !diff.contains("=cd"), "{diff}");
    }
}
