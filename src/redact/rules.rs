//! What counts as a secret: the built-in lists and the `[redact]` config section added to
//! (or, with `replace-defaults = true`, replacing) them, compiled once at startup.

use crate::compare::path::{segments, PathPattern};
use http::HeaderName;
use serde::Deserialize;

/// Headers whose values are credentials (RFC 9110 section 11.6, RFC 6265), and the common
/// API-key headers.
pub const DEFAULT_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-amz-security-token",
];

/// Query parameters that carry credentials: OAuth 2.0 bearer tokens in the query (RFC 6750
/// section 2.3), API keys, and pre-signed URLs (AWS Signature Version 4).
pub const DEFAULT_QUERY: [&str; 16] = [
    "access_token",
    "id_token",
    "refresh_token",
    "token",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "auth",
];

/// Body fields (JSON keys at any depth, form and multipart field names) that carry
/// credentials.
pub const DEFAULT_BODY: [&str; 12] = [
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "private_key",
    "secret_key",
];

/// The `[redact]` table of the config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedactSection {
    /// Query parameter names, added to [`DEFAULT_QUERY`].
    #[serde(default)]
    pub query: Vec<String>,
    /// Bare field names, or paths in the report grammar (`body/user/ssn`, `body/**/pin`).
    #[serde(default)]
    pub body: Vec<String>,
    /// Header names, added to [`DEFAULT_HEADERS`].
    #[serde(default)]
    pub headers: Vec<String>,
    /// Use only the lists given, not the defaults.
    #[serde(default)]
    pub replace_defaults: bool,
}

/// An entry of `[redact]` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{entry:?}: {reason}")]
pub struct RedactError {
    /// `query`, `body` or `headers`.
    pub list: &'static str,
    pub entry: String,
    pub reason: String,
}

/// The compiled lists.
#[derive(Clone, Debug)]
pub struct RedactRules {
    headers: Vec<HeaderName>,
    /// Normalized with [`normalize`].
    query: Vec<String>,
    /// Normalized with [`normalize`].
    fields: Vec<String>,
    paths: Vec<PathPattern>,
    /// The query and body entries as written, for `config check`.
    shown_query: Vec<String>,
    shown_body: Vec<String>,
    section: RedactSection,
}

impl Default for RedactRules {
    fn default() -> Self {
        RedactRules::compile(&RedactSection::default()).expect("the default lists compile")
    }
}

impl PartialEq for RedactRules {
    fn eq(&self, other: &Self) -> bool {
        self.section == other.section
    }
}

/// Field and parameter names compare case-insensitively and without `_` or `-`, so that
/// `access_token`, `accessToken` and `Access-Token` are one name.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `name` after [`normalize`] equals `normalized`, without allocating: this runs for every
/// member of a body.
fn normalized_eq(name: &str, normalized: &str) -> bool {
    let mut name = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase);
    let mut other = normalized.chars();
    loop {
        match (name.next(), other.next()) {
            (None, None) => return true,
            (a, b) if a == b => {}
            _ => return false,
        }
    }
}

impl RedactRules {
    /// Validates the section; an error names the list and the entry.
    pub fn compile(section: &RedactSection) -> Result<RedactRules, RedactError> {
        let defaults = !section.replace_defaults;
        let error = |list, entry: &str, reason: &str| RedactError {
            list,
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        let mut headers = Vec::new();
        let given_headers = section.headers.iter().map(String::as_str);
        let default_headers = DEFAULT_HEADERS.iter().copied().filter(|_| defaults);
        for entry in default_headers.chain(given_headers) {
            let name = entry.trim();
            let name = name.strip_prefix("headers.").unwrap_or(name);
            let name = HeaderName::try_from(name)
                .map_err(|_| error("headers", entry, "not a valid header name"))?;
            if !headers.contains(&name) {
                headers.push(name);
            }
        }
        let mut query = Vec::new();
        let mut shown_query = Vec::new();
        let given_query = section.query.iter().map(String::as_str);
        for entry in DEFAULT_QUERY
            .iter()
            .copied()
            .filter(|_| defaults)
            .chain(given_query)
        {
            let name = normalize(entry.trim());
            if name.is_empty() {
                return Err(error("query", entry, "a parameter name is empty"));
            }
            if !query.contains(&name) {
                query.push(name);
                shown_query.push(entry.trim().to_string());
            }
        }
        let mut fields = Vec::new();
        let mut paths = Vec::new();
        let mut shown_body = Vec::new();
        let given_body = section.body.iter().map(String::as_str);
        for entry in DEFAULT_BODY
            .iter()
            .copied()
            .filter(|_| defaults)
            .chain(given_body)
        {
            let text = entry.trim();
            if text == "body" || text.starts_with("body/") {
                paths.push(PathPattern::compile(text).map_err(|r| error("body", entry, &r))?);
                shown_body.push(text.to_string());
            } else if text.is_empty() || text.contains(['/', '*']) {
                return Err(error(
                    "body",
                    entry,
                    "expected a field name or a path starting with `body/` (for example `body/user/ssn`)",
                ));
            } else {
                let name = normalize(text);
                if !fields.contains(&name) {
                    fields.push(name);
                    shown_body.push(text.to_string());
                }
            }
        }
        Ok(RedactRules {
            headers,
            query,
            fields,
            paths,
            shown_query,
            shown_body,
            section: section.clone(),
        })
    }

    /// Secret header names, lowercase.
    pub fn headers(&self) -> &[HeaderName] {
        &self.headers
    }

    pub fn is_secret_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|h| h.as_str().eq_ignore_ascii_case(name))
    }

    pub fn is_secret_query(&self, name: &str) -> bool {
        self.query.iter().any(|q| normalized_eq(name, q))
    }

    /// Whether a body field (a JSON key, a form or multipart field name) is secret by name.
    pub fn is_secret_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| normalized_eq(name, f))
    }

    /// Whether any `body/...` path is configured; without one, no walk needs full paths.
    pub fn has_paths(&self) -> bool {
        !self.paths.is_empty()
    }

    /// Whether the value at `path` (segments, `body` first; the last one is the field name
    /// or array index) is a secret.
    pub fn is_secret_value(&self, path: &[&str], is_field: bool) -> bool {
        let named = is_field
            && path
                .last()
                .is_some_and(|name| self.is_secret_field(&unescape(name)));
        named || self.paths.iter().any(|p| p.matches(path))
    }

    /// Whether a reported difference path (`headers.<name>`, `body/...`) holds a secret
    /// value itself or lies inside one.
    pub fn is_secret_path(&self, path: &str) -> bool {
        let segs = segments(path);
        match segs.as_slice() {
            ["headers", name] => self.is_secret_header(name),
            ["body", rest @ ..] => {
                rest.iter()
                    .any(|name| self.is_secret_field(&unescape(name)))
                    || self.paths.iter().any(|p| p.covers(&segs))
            }
            _ => false,
        }
    }

    /// The lists in effect, as `config check` prints them.
    pub fn effective(&self) -> Vec<String> {
        let list = |items: Vec<String>| {
            let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        vec![
            "[redact]".to_string(),
            format!("replace-defaults = {}", self.section.replace_defaults),
            format!(
                "headers = {}",
                list(self.headers.iter().map(|h| h.to_string()).collect())
            ),
            format!("query = {}", list(self.shown_query.clone())),
            format!("body = {}", list(self.shown_body.clone())),
        ]
    }
}

/// A JSON-pointer segment back to its key (RFC 6901 section 4).
pub(super) fn unescape(segment: &str) -> std::borrow::Cow<'_, str> {
    if segment.contains('~') {
        segment.replace("~1", "/").replace("~0", "~").into()
    } else {
        segment.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_additions_are_case_and_separator_insensitive() {
        let rules = RedactRules::compile(&RedactSection {
            query: vec!["Session".into()],
            body: vec!["ssn".into(), "body/user/pin".into()],
            headers: vec!["X-Secret".into()],
            replace_defaults: false,
        })
        .unwrap();
        assert!(rules.is_secret_query("X-Amz-Signature"));
        assert!(rules.is_secret_query("session"));
        assert!(rules.is_secret_header("x-secret") && rules.is_secret_header("Cookie"));
        assert!(rules.is_secret_value(&["body", "a", "accessToken"], true));
        assert!(rules.is_secret_value(&["body", "SSN"], true));
        assert!(rules.is_secret_value(&["body", "user", "pin"], true));
        assert!(!rules.is_secret_value(&["body", "name"], true));
        assert!(rules.is_secret_path("body/user/pin"));
        assert!(rules.is_secret_path("body/password/0"));
        assert!(rules.is_secret_path("headers.set-cookie"));
        assert!(!rules.is_secret_path("body/user/name"));
        assert!(!rules.is_secret_path("status"));
    }

    #[test]
    fn effective_lists_read_as_written() {
        let rules = RedactRules::compile(&RedactSection {
            query: vec!["Session_ID".into()],
            body: vec!["body/user/ssn".into()],
            ..RedactSection::default()
        })
        .unwrap();
        let text = rules.effective().join("\n");
        assert!(text.contains("\"access_token\"") && text.contains("\"Session_ID\""));
        assert!(text.contains("\"X-Amz-Signature\"") || text.contains("\"x-amz-signature\""));
        assert!(text.contains("\"body/user/ssn\""), "{text}");
        let reparsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            reparsed["redact"]["replace-defaults"].as_bool(),
            Some(false)
        );
    }

    #[test]
    fn replace_defaults_keeps_only_the_given_lists() {
        let rules = RedactRules::compile(&RedactSection {
            body: vec!["pin".into()],
            replace_defaults: true,
            ..RedactSection::default()
        })
        .unwrap();
        assert!(!rules.is_secret_header("authorization"));
        assert!(!rules.is_secret_query("token"));
        assert!(!rules.is_secret_value(&["body", "password"], true));
        assert!(rules.is_secret_value(&["body", "pin"], true));
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |section: RedactSection| RedactRules::compile(&section).unwrap_err();
        let err = bad(RedactSection {
            headers: vec!["bad header".into()],
            ..RedactSection::default()
        });
        assert_eq!((err.list, err.entry.as_str()), ("headers", "bad header"));
        let err = bad(RedactSection {
            body: vec!["body/a**".into()],
            ..RedactSection::default()
        });
        assert_eq!(err.list, "body");
        assert!(bad(RedactSection {
            body: vec!["user/ssn".into()],
            ..RedactSection::default()
        })
        .reason
        .contains("body/"));
        assert_eq!(
            bad(RedactSection {
                query: vec![" ".into()],
                ..RedactSection::default()
            })
            .list,
            "query"
        );
    }
}
