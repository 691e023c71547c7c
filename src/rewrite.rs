//! Request rewrites for the secondary: the `[[rewrite]]` tables of the config file, applied
//! in file order to the copy of each request the secondary gets, never to the primary's
//! request nor to the baseline's (the baseline must see exactly what the primary sees, or
//! its differences would not be the primary's noise).
//!
//! A migrated system often lives under another path prefix, wants its own credentials or
//! an extra query parameter; without rewrites every such request would be a mismatch (or
//! a 401) that says nothing about the migration.
//!
//! Values may read the environment (`${env:NEW_API_TOKEN}`) so that secrets stay out of
//! the file. Such a value is read once when the config is loaded, sent marked sensitive
//! (HPACK never indexes it, RFC 7541 section 7.1.3), and never written anywhere: what a
//! rewrite changed is kept as the template (`Bearer ${env:NEW_API_TOKEN}`), and literal
//! values of secret headers or query parameters are redacted like the rest of the request.

use crate::redact::RedactRules;
use crate::route::RoutePattern;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use regex::Regex;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// One `[[rewrite]]` table as written: exactly one action key, its `value` where the
/// action takes one, and an optional `route` it is limited to.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RewriteSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathSetting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A route pattern (`GET /v1/**`, the `[[route]]` grammar) matched against the
    /// client's request; the rewrite applies to every request without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// `path = { from = "^/v1/(.*)", to = "/v2/$1" }`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathSetting {
    pub from: String,
    pub to: String,
}

/// A `[[rewrite]]` table that cannot be used, named by its position and line.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", self.field())]
pub struct RewriteError {
    /// `file:line`, empty without a file.
    location: String,
    index: usize,
    pub reason: String,
}

impl RewriteError {
    /// `file:line: [[rewrite]] #2`: where the table is.
    pub fn field(&self) -> String {
        if self.location.is_empty() {
            format!("[[rewrite]] #{}", self.index)
        } else {
            format!("{}: [[rewrite]] #{}", self.location, self.index)
        }
    }
}

/// A header or query value as configured: what is sent, and what may be shown.
#[derive(Clone)]
struct Value {
    sent: String,
    /// The value as written in the file: `${env:NAME}` references unresolved.
    template: String,
    /// Whether any part came from the environment: the value is then a secret.
    from_env: bool,
}

impl Value {
    /// Reads `${env:NAME}` references from `lookup` (the process environment); any other
    /// `${…}` is refused, so a misspelt reference is not sent literally.
    fn parse(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
        let mut sent = String::new();
        let mut rest = template;
        let mut from_env = false;
        while let Some(at) = rest.find("${") {
            sent.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("{template:?}: `${{` is not closed by `}}`"));
            };
            let reference = &after[..end];
            let Some(name) = reference.strip_prefix("env:") else {
                return Err(format!(
                    "{template:?}: `${{{reference}}}` is not a reference this knows; only `${{env:NAME}}` is"
                ));
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("{template:?}: `${{env:{name}}}` names no variable"));
            }
            match lookup(name) {
                Some(value) => sent.push_str(&value),
                None => return Err(format!("the environment variable {name} is not set")),
            }
            from_env = true;
            rest = &after[end + 1..];
        }
        sent.push_str(rest);
        Ok(Value {
            sent,
            template: template.to_string(),
            from_env,
        })
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the sent value: it may hold a secret read from the environment.
        write!(f, "{:?}", self.template)
    }
}

#[derive(Clone, Debug)]
enum Action {
    SetHeader(HeaderName, HeaderValue, Value),
    AppendHeader(HeaderName, HeaderValue, Value),
    RemoveHeader(HeaderName),
    Path { from: Regex, to: String },
    AddQuery(String, Value),
    SetQuery(String, Value),
    RemoveQuery(String),
}

#[derive(Clone, Debug)]
struct Step {
    action: Action,
    route: Option<RoutePattern>,
}

/// The compiled `[[rewrite]]` list; empty when the file has none.
#[derive(Clone, Debug, Default)]
pub struct Rewrites {
    steps: Vec<Step>,
    /// The tables as written (templates, never resolved values), for `config check`.
    written: Vec<RewriteSetting>,
    /// The list as written (templates, never resolved values), for equality, the settings
    /// digest and `config check`.
    canonical: String,
}

impl PartialEq for Rewrites {
    fn eq(&self, other: &Rewrites) -> bool {
        self.canonical == other.canonical
    }
}

/// Headers a rewrite may not touch: the connection's own (RFC 9110 section 7.6.1), the
/// framing the client computes (RFC 9112 section 6), Host, which `preserve-host` decides,
/// and the shadow marker, which is how a loop is recognised.
fn refused_header(name: &HeaderName, marker: &HeaderName) -> bool {
    use http::header;
    name == marker
        || [
            header::CONNECTION,
            header::CONTENT_LENGTH,
            header::HOST,
            header::TE,
            header::TRAILER,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
        ]
        .contains(name)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// What one rewrite changed in one request, kept with a stored mismatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Path { from: String, to: String },
    HeaderSet { name: HeaderName, shown: Shown },
    HeaderAppended { name: HeaderName, shown: Shown },
    HeaderRemoved { name: HeaderName },
    QueryAdded { name: String, shown: Shown },
    QuerySet { name: String, shown: Shown },
    QueryRemoved { name: String },
}

/// A value as it may be shown: the file's template when it read the environment, else
/// the literal (redacted later if its header or parameter is secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    Template(String),
    Literal(String),
}

impl Change {
    /// One line for `show` and the reports, redacted under `rules`.
    pub fn describe(&self, rules: &RedactRules) -> String {
        let shown = |secret: bool, shown: &Shown| match shown {
            Shown::Template(t) => t.clone(),
            Shown::Literal(_) if secret => crate::redact::REDACTED.to_string(),
            Shown::Literal(l) => l.clone(),
        };
        match self {
            Change::Path { from, to } => format!("path {from} -> {to}"),
            Change::HeaderSet { name, shown: s } => format!(
                "header {name} set to {}",
                shown(rules.is_secret_header(name.as_str()), s)
            ),
            Change::HeaderAppended { name, shown: s } => format!(
                "header {name} appended {}",
                shown(rules.is_secret_header(name.as_str()), s)
            ),
            Change::HeaderRemoved { name } => format!("header {name} removed"),
            Change::QueryAdded { name, shown: s } => format!(
                "query {name} added {}",
                shown(rules.is_secret_query(name), s)
            ),
            Change::QuerySet { name, shown: s } => format!(
                "query {name} set to {}",
                shown(rules.is_secret_query(name), s)
            ),
            Change::QueryRemoved { name } => format!("query {name} removed"),
        }
    }
}

/// The secondary's request after the rewrites, when any changed it.
#[derive(Debug)]
pub struct Rewritten {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub changes: Vec<Change>,
}

/// A rewrite whose result is not a request target that can be sent.
#[derive(Debug, thiserror::Error)]
#[error("the rewritten target {target:?} cannot be sent: {reason}")]
pub struct RewriteFailed {
    pub target: String,
    pub reason: String,
}

impl RewriteFailed {
    /// As the failure of the leg it was meant for, when that leg answers the client (the
    /// secondary after a cutover): it was never asked. The target is left out: it may hold
    /// a query secret.
    pub fn leg_error(&self) -> crate::exchange::LegError {
        crate::exchange::LegError {
            kind: crate::exchange::ErrorKind::Protocol,
            message: "a [[rewrite]] made a target that cannot be sent".into(),
            latency: std::time::Duration::ZERO,
        }
    }
}

fn shown_of(value: &Value) -> Shown {
    if value.from_env {
        Shown::Template(value.template.clone())
    } else {
        Shown::Literal(value.template.clone())
    }
}

impl Rewrites {
    /// Compiles the `[[rewrite]]` tables of `source` (for line numbers in errors), reading
    /// `${env:…}` from the process environment.
    pub fn compile(
        settings: &[Spanned<RewriteSetting>],
        source: Option<&Path>,
        marker: &HeaderName,
    ) -> Result<Rewrites, RewriteError> {
        Rewrites::compile_with(settings, source, marker, &|name| std::env::var(name).ok())
    }

    fn compile_with(
        settings: &[Spanned<RewriteSetting>],
        source: Option<&Path>,
        marker: &HeaderName,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Rewrites, RewriteError> {
        let mut steps = Vec::with_capacity(settings.len());
        let mut canonical = String::new();
        for (i, spanned) in settings.iter().enumerate() {
            let fail = |reason: String| RewriteError {
                location: location(source, spanned.span()),
                index: i + 1,
                reason,
            };
            let setting = spanned.get_ref();
            let (step, spelled) = compile_one(setting, marker, lookup).map_err(fail)?;
            canonical.push_str(&spelled);
            canonical.push('\n');
            steps.push(step);
        }
        let written = settings.iter().map(|s| s.get_ref().clone()).collect();
        Ok(Rewrites {
            steps,
            written,
            canonical,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The `[[rewrite]]` tables as a config file spells them (templates, never resolved
    /// values), for `config check`.
    pub fn toml_tables(&self) -> String {
        self.written
            .iter()
            .map(|setting| {
                // Key by key, so that `path` stays an inline table under its own header.
                let mut table = String::from("[[rewrite]]");
                if let Ok(toml::Value::Table(keys)) = toml::Value::try_from(setting) {
                    for (key, value) in keys {
                        table.push_str(&format!("\n{key} = {value}"));
                    }
                }
                table
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The list as written, one rewrite per line (templates, never resolved values).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The secondary's request: `None` when no rewrite changed anything (the request is
    /// then sent as the primary's), else the new target and headers and what changed.
    /// Route conditions match the client's request, whatever earlier rewrites did.
    pub fn apply(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<Rewritten>, RewriteFailed> {
        if self.steps.is_empty() {
            return Ok(None);
        }
        let original_path = uri.path();
        let mut path: Option<String> = None;
        let mut query: Option<Option<String>> = None;
        let mut new_headers: Option<HeaderMap> = None;
        let mut changes = Vec::new();
        for step in &self.steps {
            if let Some(route) = &step.route {
                if !route.matches(method, original_path) {
                    continue;
                }
            }
            let current_query = |query: &Option<Option<String>>| -> Option<String> {
                match query {
                    Some(q) => q.clone(),
                    None => uri.query().map(str::to_string),
                }
            };
            match &step.action {
                Action::SetHeader(name, value, v) => {
                    let h = new_headers.get_or_insert_with(|| headers.clone());
                    h.insert(name.clone(), value.clone());
                    changes.push(Change::HeaderSet {
                        name: name.clone(),
                        shown: shown_of(v),
                    });
                }
                Action::AppendHeader(name, value, v) => {
                    let h = new_headers.get_or_insert_with(|| headers.clone());
                    h.append(name.clone(), value.clone());
                    changes.push(Change::HeaderAppended {
                        name: name.clone(),
                        shown: shown_of(v),
                    });
                }
                Action::RemoveHeader(name) => {
                    let present = new_headers.as_ref().unwrap_or(headers).contains_key(name);
                    if present {
                        let h = new_headers.get_or_insert_with(|| headers.clone());
                        h.remove(name);
                        changes.push(Change::HeaderRemoved { name: name.clone() });
                    }
                }
                Action::Path { from, to } => {
                    let before = path.as_deref().unwrap_or(original_path);
                    if from.is_match(before) {
                        let after = from.replace(before, to.as_str()).into_owned();
                        if after != before {
                            changes.push(Change::Path {
                                from: before.to_string(),
                                to: after.clone(),
                            });
                            path = Some(after);
                        }
                    }
                }
                Action::AddQuery(name, v) => {
                    let mut q = current_query(&query).unwrap_or_default();
                    if !q.is_empty() {
                        q.push('&');
                    }
                    q.push_str(&encode_pair(name, &v.sent));
                    query = Some(Some(q));
                    changes.push(Change::QueryAdded {
                        name: name.clone(),
                        shown: shown_of(v),
                    });
                }
                Action::SetQuery(name, v) => {
                    let kept = without_param(current_query(&query).as_deref(), name);
                    let mut q = kept.unwrap_or_default();
                    if !q.is_empty() {
                        q.push('&');
                    }
                    q.push_str(&encode_pair(name, &v.sent));
                    query = Some(Some(q));
                    changes.push(Change::QuerySet {
                        name: name.clone(),
                        shown: shown_of(v),
                    });
                }
                Action::RemoveQuery(name) => {
                    let before = current_query(&query);
                    let after = without_param(before.as_deref(), name);
                    if after != before {
                        query = Some(after);
                        changes.push(Change::QueryRemoved { name: name.clone() });
                    }
                }
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let uri = if path.is_some() || query.is_some() {
            let path = path.as_deref().unwrap_or(original_path);
            let query = match &query {
                Some(q) => q.clone(),
                None => uri.query().map(str::to_string),
            };
            let target = match query.as_deref() {
                Some(q) if !q.is_empty() => format!("{path}?{q}"),
                _ => path.to_string(),
            };
            let failed = |reason: String| RewriteFailed {
                target: target.clone(),
                reason,
            };
            if !target.starts_with('/') {
                return Err(failed("it does not start with /".into()));
            }
            // The same check as every target serve sends: inside the base path.
            let normalized =
                crate::upstream::target::normalize(&target).map_err(|e| failed(e.to_string()))?;
            let mut parts = uri.clone().into_parts();
            parts.path_and_query = Some(
                normalized
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| failed(e.to_string()))?,
            );
            Uri::from_parts(parts).map_err(|e| failed(e.to_string()))?
        } else {
            uri.clone()
        };
        Ok(Some(Rewritten {
            uri,
            headers: new_headers.unwrap_or_else(|| headers.clone()),
            changes,
        }))
    }
}

/// `name=value`, form-encoded (the `application/x-www-form-urlencoded` serializer of the
/// URL Standard, which is what servers decode queries with).
fn encode_pair(name: &str, value: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish()
}

/// The query without any pair named `name` (compared decoded); the other pairs keep their
/// bytes as the client sent them. `None` when nothing is left.
fn without_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let decoded: String = form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            decoded != name
        })
        .collect();
    if kept.is_empty() || kept.iter().all(|p| p.is_empty()) {
        None
    } else {
        Some(kept.join("&"))
    }
}

/// `file:line` of a span, or nothing without a file.
fn location(source: Option<&Path>, span: std::ops::Range<usize>) -> String {
    let Some(path) = source else {
        return String::new();
    };
    let line = std::fs::read_to_string(path)
        .ok()
        .filter(|text| span.start <= text.len())
        .map(|text| text[..span.start].matches('\n').count() + 1);
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

fn compile_one(
    setting: &RewriteSetting,
    marker: &HeaderName,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Step, String), String> {
    let actions = [
        setting.set_header.is_some(),
        setting.append_header.is_some(),
        setting.remove_header.is_some(),
        setting.path.is_some(),
        setting.add_query.is_some(),
        setting.set_query.is_some(),
        setting.remove_query.is_some(),
    ];
    let keys =
        "set-header, append-header, remove-header, path, add-query, set-query or remove-query";
    match actions.iter().filter(|a| **a).count() {
        0 => return Err(format!("names no action: give one of {keys}")),
        1 => {}
        _ => {
            return Err(format!(
                "names more than one action: give one of {keys} per table"
            ))
        }
    }
    let route = match &setting.route {
        None => None,
        Some(text) => {
            Some(RoutePattern::parse(text).map_err(|reason| format!("route {text:?}: {reason}"))?)
        }
    };
    let needs_value = setting.set_header.is_some()
        || setting.append_header.is_some()
        || setting.add_query.is_some()
        || setting.set_query.is_some();
    let value = match (&setting.value, needs_value) {
        (Some(v), true) => Some(Value::parse(v, lookup)?),
        (None, true) => return Err("needs a `value`".into()),
        (Some(_), false) => return Err("takes no `value`".into()),
        (None, false) => None,
    };
    let header = |name: &str| -> Result<HeaderName, String> {
        let parsed = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        if refused_header(&parsed, marker) {
            return Err(format!(
                "header {parsed} cannot be rewritten: shadowdiff sets it for each connection"
            ));
        }
        Ok(parsed)
    };
    let header_value = |name: &HeaderName, v: &Value| -> Result<HeaderValue, String> {
        let mut value = HeaderValue::from_str(&v.sent).map_err(|_| {
            if v.from_env {
                // Never the value itself: it came from the environment.
                format!(
                    "the value of header {name} (from {}) holds a character a header cannot",
                    v.template
                )
            } else {
                format!("{:?} is not a valid value for header {name}", v.template)
            }
        })?;
        if v.from_env {
            value.set_sensitive(true);
        }
        Ok(value)
    };
    let query_name = |name: &str| -> Result<String, String> {
        if name.is_empty() {
            Err("a query parameter needs a name".into())
        } else {
            Ok(name.to_string())
        }
    };
    let route_text = setting
        .route
        .as_deref()
        .map(|r| format!(" route={r:?}"))
        .unwrap_or_default();
    let (action, spelled) = if let Some(name) = &setting.set_header {
        let v = value.expect("checked: needs a value");
        let name = header(name)?;
        let hv = header_value(&name, &v)?;
        let spelled = format!("set-header {name} {:?}", v.template);
        (Action::SetHeader(name, hv, v), spelled)
    } else if let Some(name) = &setting.append_header {
        let v = value.expect("checked: needs a value");
        let name = header(name)?;
        let hv = header_value(&name, &v)?;
        let spelled = format!("append-header {name} {:?}", v.template);
        (Action::AppendHeader(name, hv, v), spelled)
    } else if let Some(name) = &setting.remove_header {
        let name = header(name)?;
        let spelled = format!("remove-header {name}");
        (Action::RemoveHeader(name), spelled)
    } else if let Some(p) = &setting.path {
        let from = Regex::new(&p.from).map_err(|e| format!("path from {:?}: {e}", p.from))?;
        // A `$3` the regex has no group for would silently become empty.
        check_captures(&from, &p.to)?;
        let spelled = format!("path {:?} -> {:?}", p.from, p.to);
        (
            Action::Path {
                from,
                to: p.to.clone(),
            },
            spelled,
        )
    } else if let Some(name) = &setting.add_query {
        let v = value.expect("checked: needs a value");
        let name = query_name(name)?;
        let spelled = format!("add-query {name:?} {:?}", v.template);
        (Action::AddQuery(name, v), spelled)
    } else if let Some(name) = &setting.set_query {
        let v = value.expect("checked: needs a value");
        let name = query_name(name)?;
        let spelled = format!("set-query {name:?} {:?}", v.template);
        (Action::SetQuery(name, v), spelled)
    } else if let Some(name) = &setting.remove_query {
        let name = query_name(name)?;
        let spelled = format!("remove-query {name:?}");
        (Action::RemoveQuery(name), spelled)
    } else {
        unreachable!("exactly one action was counted above")
    };
    Ok((Step { action, route }, format!("{spelled}{route_text}")))
}

/// Refuses `$N` or `${name}` in a replacement that the regex has no group for.
fn check_captures(regex: &Regex, to: &str) -> Result<(), String> {
    let names: Vec<&str> = regex.capture_names().flatten().collect();
    let groups = regex.captures_len();
    let bytes = to.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let rest = &to[i + 1..];
        let (reference, len) = if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => return Err(format!("path to {to:?}: `${{` is not closed")),
            }
        } else {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            (&rest[..len], len)
        };
        let known = match reference.parse::<usize>() {
            Ok(n) => n < groups,
            Err(_) => names.contains(&reference),
        };
        if !reference.is_empty() && !known {
            return Err(format!(
                "path to {to:?}: ${reference} names no group of the `from` regex (write $$ for a literal $)"
            ));
        }
        i += 1 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(toml_text: &str, env: &[(&str, &str)]) -> Result<Rewrites, String> {
        #[derive(Deserialize)]
        struct File {
            rewrite: Vec<Spanned<RewriteSetting>>,
        }
        let file: File = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Rewrites::compile_with(
            &file.rewrite,
            None,
            &crate::upstream::SHADOW_HEADER,
            &lookup,
        )
        .map_err(|e| e.to_string())
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> (Method, Uri, HeaderMap) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        (Method::GET, target.parse().unwrap(), map)
    }

    #[test]
    fn rewrites_apply_in_order_and_say_what_they_changed() {
        let rewrites = compile(
            r#"
            [[rewrite]]
            path = { from = "^/v1/(.*)", to = "/v2/$1" }
            [[rewrite]]
            set-header = "authorization"
            value = "Bearer ${env:NEW_TOKEN}"
            [[rewrite]]
            remove-header = "cookie"
            [[rewrite]]
            remove-query = "legacy"
            [[rewrite]]
            add-query = "api version"
            value = "2&3"
            "#,
            &[("NEW_TOKEN", "s3cret")],
        )
        .unwrap();
        let (m, u, h) = request(
            "/v1/users/7?legacy=1&a=%20b&legacy=2",
            &[("cookie", "x=1"), ("authorization", "Bearer old")],
        );
        let out = rewrites.apply(&m, &u, &h).unwrap().unwrap();
        assert_eq!(out.uri, "/v2/users/7?a=%20b&api+version=2%263");
        assert_eq!(out.headers["authorization"], "Bearer s3cret");
        assert!(out.headers["authorization"].is_sensitive());
        assert!(!out.headers.contains_key("cookie"));
        let rules = RedactRules::default();
        let shown: Vec<String> = out.changes.iter().map(|c| c.describe(&rules)).collect();
        assert_eq!(
            shown,
            [
                "path /v1/users/7 -> /v2/users/7",
                "header authorization set to Bearer ${env:NEW_TOKEN}",
                "header cookie removed",
                "query legacy removed",
                "query api version added 2&3",
            ]
        );
        assert!(!format!("{rewrites:?}").contains("s3cret"));
        assert!(!rewrites.canonical().contains("s3cret"));
    }

    #[test]
    fn a_request_no_rewrite_touches_is_sent_as_it_is() {
        let rewrites = compile(
            r#"
            [[rewrite]]
            path = { from = "^/v1/(.*)", to = "/v2/$1" }
            route = "GET /v1/**"
            [[rewrite]]
            remove-header = "cookie"
            "#,
            &[],
        )
        .unwrap();
        let (m, u, h) = request("/other", &[]);
        assert!(rewrites.apply(&m, &u, &h).unwrap().is_none());
        let (_, u, h) = request("/v1/x", &[]);
        assert!(rewrites.apply(&Method::POST, &u, &h).unwrap().is_none());
    }

    #[test]
    fn literal_values_of_secret_headers_are_redacted_when_shown() {
        let rewrites = compile(
            r#"
            [[rewrite]]
            set-header = "authorization"
            value = "Bearer literal-in-file"
            [[rewrite]]
            set-query = "access_token"
            value = "abc"
            "#,
            &[],
        )
        .unwrap();
        let (m, u, h) = request("/x?access_token=old", &[]);
        let out = rewrites.apply(&m, &u, &h).unwrap().unwrap();
        assert_eq!(out.uri, "/x?access_token=abc");
        let rules = RedactRules::default();
        let shown: Vec<String> = out.changes.iter().map(|c| c.describe(&rules)).collect();
        assert_eq!(
            shown,
            [
                "header authorization set to [redacted]",
                "query access_token set to [redacted]"
            ]
        );
    }

    #[test]
    fn bad_rewrites_are_refused_with_their_reason() {
        let cases = [
            ("[[rewrite]]\nvalue = \"x\"", "names no action"),
            (
                "[[rewrite]]\nremove-header = \"a\"\nremove-query = \"b\"",
                "more than one action",
            ),
            ("[[rewrite]]\nset-header = \"x-a\"", "needs a `value`"),
            (
                "[[rewrite]]\nremove-header = \"host\"",
                "cannot be rewritten",
            ),
            (
                "[[rewrite]]\nremove-header = \"x-shadowdiff\"",
                "cannot be rewritten",
            ),
            (
                "[[rewrite]]\nset-header = \"bad name\"\nvalue = \"1\"",
                "not a header name",
            ),
            (
                "[[rewrite]]\nset-header = \"x-a\"\nvalue = \"${env:MISSING_VAR}\"",
                "MISSING_VAR is not set",
            ),
            (
                "[[rewrite]]\nset-header = \"x-a\"\nvalue = \"${MISSING_VAR}\"",
                "only `${env:NAME}`",
            ),
            (
                "[[rewrite]]\npath = { from = \"^/v1/(.*)\", to = \"/v2/$2\" }",
                "$2 names no group",
            ),
            (
                "[[rewrite]]\npath = { from = \"(\", to = \"/\" }",
                "path from",
            ),
            ("[[rewrite]]\nremove-query = \"\"", "needs a name"),
            (
                "[[rewrite]]\nremove-header = \"a\"\nroute = \"GET\"",
                "route",
            ),
        ];
        for (text, expected) in cases {
            let err = compile(text, &[]).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains("[[rewrite]] #1"), "{err}");
        }
    }

    #[test]
    fn an_env_value_that_is_not_a_header_value_is_refused_without_showing_it() {
        let err = compile(
            "[[rewrite]]\nset-header = \"x-a\"\nvalue = \"${env:T}\"",
            &[("T", "line\nbreak-secret")],
        )
        .unwrap_err();
        assert!(err.contains("${env:T}"), "{err}");
        assert!(!err.contains("break-secret"), "{err}");
    }

    #[test]
    fn a_rewrite_that_leaves_the_root_fails_instead_of_being_sent() {
        let rewrites = compile(
            "[[rewrite]]\npath = { from = \"^/a/(.*)\", to = \"/../$1\" }",
            &[],
        )
        .unwrap();
        let (m, u, h) = request("/a/b", &[]);
        let err = rewrites.apply(&m, &u, &h).unwrap_err();
        assert!(err.to_string().contains("/../b"), "{err}");
    }
}
