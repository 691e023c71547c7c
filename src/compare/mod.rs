//! Decides whether two responses mean the same thing, and where they differ.
//!
//! Everything that judges responses goes through [`Comparator`], compiled once from the
//! rules at startup and then used from the pipeline's compare thread (never the async
//! runtime). A comparison decodes both bodies ([`decode`]), compares the status and the
//! selected headers, then the bodies by kind: JSON structurally ([`json`]), text by lines
//! ([`text`]), anything else by size and digest. Every difference passes through one
//! [`sink`] that applies the ignore rules and counts what each rule hid.
//!
//! # Layout
//!
//! - [`path`]: the path grammar shared by differences and ignore rules.
//! - [`rules`]: the `[compare]` / `[[route]]` tables and their compiled form.
//! - [`decode`]: Content-Encoding and charset, undone before comparing.
//! - [`sink`]: where differences are collected, ignored and counted.
//! - [`json`], [`text`]: the body diffs.
//! - [`files`]: `shadowdiff diff A B`, the same engine on two files.

pub(crate) mod decode;
pub mod json;
pub mod path;
mod rules;
mod sink;
mod text;

pub use rules::{
    CompareSection, MapSetting, MaskSetting, RouteSection, RulesConfig, RulesError,
    ToleranceSetting, UnorderedSetting,
};

use crate::exchange::Captured;
use decode::{decode, media_type, Declared};
use http::{HeaderMap, Method, StatusCode};
use rules::CompiledRules;
use sha2::{Digest, Sha256};
use sink::Sink;
use std::fmt;

/// What a difference is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiffKind {
    /// Different status codes.
    Status,
    /// Same place, different value.
    Changed,
    /// Present only in the secondary.
    Added,
    /// Present only in the primary.
    Removed,
    /// Different JSON types at the same place (number against string).
    Type,
    /// Text bodies whose lines differ.
    Text,
    /// Non-text bodies whose bytes differ.
    Binary,
    /// A body that could not be decoded (bad gzip, invalid charset).
    Decode,
    /// An array whose elements are all there, equal under the rules, in another order:
    /// one difference for the array, since one per index would bury the only fact that
    /// matters (nothing changed but the order).
    Reordered,
    /// An object key gone and another one added holding an equal value: one difference
    /// from `path` to `to`, where a removed and an added would hide that the data is intact.
    Renamed,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Status => "status",
            DiffKind::Changed => "changed",
            DiffKind::Added => "added",
            DiffKind::Removed => "removed",
            DiffKind::Type => "type",
            DiffKind::Text => "text",
            DiffKind::Binary => "binary",
            DiffKind::Decode => "decode",
            DiffKind::Reordered => "reordered",
            DiffKind::Renamed => "renamed",
        }
    }
}

/// One place where the two responses differ, in the path grammar shared with ignore rules
/// (`status`, `headers.<name>`, `body`, `body/<json-pointer>`, `body#L<n>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    /// The primary's value, rendered for people (JSON text for JSON values).
    pub primary: Option<String>,
    pub secondary: Option<String>,
    /// Where a renamed key went (the secondary's path); `None` for every other kind.
    pub to: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(to) = &self.to {
            write!(f, " → {to}")?;
        }
        write!(
            f,
            " ({}): {} -> {}",
            self.kind.as_str(),
            self.primary.as_deref().unwrap_or("(none)"),
            self.secondary.as_deref().unwrap_or("(none)")
        )
    }
}

/// How many differences one rule hid in one comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiddenCount {
    pub rule: String,
    pub count: u64,
}

/// The judgement of one pair of responses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub differences: Vec<Difference>,
    /// Differences that a rule hid, per rule: what the verdict does not show, and why.
    pub hidden: Vec<HiddenCount>,
    /// Unified diff of the two bodies when they are text and differ.
    pub body_diff: Option<String>,
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The rules in force for one route, as [`Comparator::route`] found them.
#[derive(Clone, Copy)]
pub struct RouteRules<'a>(&'a rules::RuleSet);

/// A compiled rule set. Built once at startup, so a bad rule fails before the first request.
#[derive(Debug, Default)]
pub struct Comparator {
    rules: CompiledRules,
}

impl Comparator {
    pub fn new(config: &RulesConfig) -> Result<Comparator, RulesError> {
        Ok(Comparator {
            rules: CompiledRules::compile(config)?,
        })
    }

    /// Every rule's identifier, so a report can list the rules that never matched.
    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.ids.clone()
    }

    /// The route key that groups this request in counters and reports: the first explicit
    /// `[[route]]` pattern that matches, else the automatic template.
    pub fn route_of(&self, method: &Method, path: &str) -> String {
        self.rules.route_of(method, path)
    }

    /// Compares two complete responses under the rules of the route key `route`.
    pub fn compare(&self, route: &str, primary: &Captured, secondary: &Captured) -> Verdict {
        self.compare_with_trailers(
            self.rules.for_route(route),
            (primary.status, &primary.headers, &primary.body),
            (secondary.status, &secondary.headers, &secondary.body),
            (&primary.trailers, &secondary.trailers),
        )
    }

    /// A request's route key together with its rules, found in one pass (the compare
    /// thread's path: [`Comparator::compare_in`] then needs no second lookup).
    pub fn route(&self, method: &Method, path: &str) -> (String, RouteRules<'_>) {
        let (key, rules) = self.rules.route(method, path);
        (key, RouteRules(rules))
    }

    /// Compares two complete responses under a route's rules.
    pub fn compare_in(
        &self,
        rules: RouteRules<'_>,
        primary: &Captured,
        secondary: &Captured,
    ) -> Verdict {
        self.compare_with_trailers(
            rules.0,
            (primary.status, &primary.headers, &primary.body),
            (secondary.status, &secondary.headers, &secondary.body),
            (&primary.trailers, &secondary.trailers),
        )
    }

    /// The same as [`Comparator::compare`] on borrowed parts, for callers that have no
    /// [`Captured`] (the `diff` command, benchmarks).
    pub fn compare_parts(
        &self,
        route: &str,
        primary: (StatusCode, &HeaderMap, &[u8]),
        secondary: (StatusCode, &HeaderMap, &[u8]),
    ) -> Verdict {
        let none = HeaderMap::new();
        let rules = self.rules.for_route(route);
        self.compare_with_trailers(rules, primary, secondary, (&none, &none))
    }

    fn compare_with_trailers(
        &self,
        rules: &rules::RuleSet,
        primary: (StatusCode, &HeaderMap, &[u8]),
        secondary: (StatusCode, &HeaderMap, &[u8]),
        trailers: (&HeaderMap, &HeaderMap),
    ) -> Verdict {
        let mut sink = Sink::new(rules);
        if primary.0 != secondary.0 {
            sink.emit(
                "status",
                DiffKind::Status,
                || Some(primary.0.as_u16().to_string()),
                || Some(secondary.0.as_u16().to_string()),
            );
        }
        compare_headers(&mut sink, primary.1, secondary.1);
        compare_trailers(&mut sink, trailers.0, trailers.1);
        let body_diff = compare_bodies(
            &mut sink,
            (primary.1, primary.2),
            (secondary.1, secondary.2),
        );
        let hidden = sink
            .hidden
            .iter()
            .map(|(rule, count)| HiddenCount {
                rule: self.rules.ids[*rule].clone(),
                count: *count,
            })
            .collect();
        Verdict {
            differences: sink.differences,
            hidden,
            body_diff,
        }
    }
}

/// The media type of content-type always; other headers only when the rules name them,
/// because date, server, content-length and the like differ on every response.
fn compare_headers(sink: &mut Sink<'_>, a: &HeaderMap, b: &HeaderMap) {
    let (type_a, type_b) = (media_type(a), media_type(b));
    let media_differs = type_a != type_b;
    if media_differs {
        let kind = match (&type_a, &type_b) {
            (Some(_), None) => DiffKind::Removed,
            (None, Some(_)) => DiffKind::Added,
            _ => DiffKind::Changed,
        };
        sink.emit("headers.content-type", kind, || type_a, || type_b);
    }
    let rules = sink.rules;
    let renamed = compare_renamed_headers(sink, a, b);
    let names = rules.headers.iter().filter(|name| {
        let media = media_differs && *name == "content-type";
        !media && !renamed.contains(&name.as_str())
    });
    compare_fields(sink, "headers", names, a, b);
}

/// The `rename` rules of compared headers: where the primary sends the old name (and not
/// the new) and the secondary the new (and not the old), the two values are compared at
/// `headers.<old>` and the rename is counted. Returns the names settled here, which the
/// ordinary pass skips. A rename of a header `headers = [...]` does not list hides
/// nothing, since that header is never compared.
fn compare_renamed_headers<'r>(sink: &mut Sink<'r>, a: &HeaderMap, b: &HeaderMap) -> Vec<&'r str> {
    let rules = sink.rules;
    let mut settled: Vec<&'r str> = Vec::new();
    for (rename, id) in &rules.header_renames {
        let (old, new) = (rename.from.as_str(), rename.to.as_str());
        // Only where the primary sent the old name alone and the secondary the new one.
        let moved = a.contains_key(old)
            && !a.contains_key(new)
            && b.contains_key(new)
            && !b.contains_key(old);
        let compared = rules.headers.iter().any(|h| h == old);
        if !moved || !compared || settled.contains(&old) || settled.contains(&new) {
            continue;
        }
        settled.extend([old, new]);
        let path = format!("headers.{old}");
        if let Some(ignore) = sink
            .ignored_by(&path)
            .or_else(|| sink.ignored_by(&format!("headers.{new}")))
        {
            sink.hide(ignore);
            continue;
        }
        sink.hide(*id);
        compare_values(sink, &path, joined(a, old), joined(b, new));
    }
    settled
}

/// All values of a field joined with `, ` (RFC 9110 section 5.3), `None` when absent.
fn joined(h: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = h
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// One field's values on both sides, compared at `path` (masks apply).
fn compare_values(sink: &mut Sink<'_>, path: &str, va: Option<String>, vb: Option<String>) {
    match (va, vb) {
        (Some(x), Some(y)) if x != y => match sink.masked_equal(&x, &y) {
            Some(rule) if sink.ignored_by(path).is_none() => sink.hide(rule),
            _ => sink.emit(path, DiffKind::Changed, || Some(x), || Some(y)),
        },
        (Some(x), None) => sink.emit(path, DiffKind::Removed, || Some(x), || None),
        (None, Some(y)) => sink.emit(path, DiffKind::Added, || None, || Some(y)),
        _ => {}
    }
}

/// Trailer fields that carry a gRPC call's outcome (gRPC over HTTP/2: `grpc-status`,
/// `grpc-message`): compared by default, since a changed status is a changed answer.
const COMPARED_TRAILERS: [&str; 2] = ["grpc-status", "grpc-message"];

/// The gRPC outcome always; other trailers only when `[compare] headers` names them, as
/// for headers. A difference is at `trailers.<name>`.
fn compare_trailers(sink: &mut Sink<'_>, a: &HeaderMap, b: &HeaderMap) {
    if a.is_empty() && b.is_empty() {
        return;
    }
    let rules = sink.rules;
    let names = COMPARED_TRAILERS.iter().copied().chain(
        rules
            .headers
            .iter()
            .map(String::as_str)
            .filter(|name| !COMPARED_TRAILERS.contains(name)),
    );
    compare_fields(sink, "trailers", names, a, b);
}

/// Compares the named fields of two maps, all values of a name joined with `, `
/// (RFC 9110 section 5.3), each difference at `<section>.<name>`.
fn compare_fields<'n>(
    sink: &mut Sink<'_>,
    section: &str,
    names: impl Iterator<Item = &'n (impl AsRef<str> + ?Sized + 'n)>,
    a: &HeaderMap,
    b: &HeaderMap,
) {
    for name in names {
        let name = name.as_ref();
        let path = format!("{section}.{name}");
        compare_values(sink, &path, joined(a, name), joined(b, name));
    }
}

/// What a decoded body turned out to be (also how `report::diffview` shows one, so a body
/// is shown as what it was compared as).
pub(crate) enum Body<'a> {
    Empty,
    Json(json::Tape),
    /// Declared JSON that does not parse: the reason.
    BadJson(String),
    Text(&'a str),
    Binary,
}

pub(crate) fn classify<'a>(bytes: &'a [u8], declared: Declared) -> Body<'a> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Body::Empty;
    }
    let looks_json = || {
        matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
    };
    match declared {
        Declared::Json => match json::Tape::parse(bytes) {
            Ok(v) => Body::Json(v),
            Err(json::Invalid) => Body::BadJson(json::describe_invalid(bytes)),
        },
        Declared::Generic | Declared::Text => {
            if declared == Declared::Generic && looks_json() {
                if let Ok(v) = json::Tape::parse(bytes) {
                    return Body::Json(v);
                }
            }
            match std::str::from_utf8(bytes) {
                Ok(text) if declared == Declared::Text || !text.contains('\0') => Body::Text(text),
                _ => Body::Binary,
            }
        }
        Declared::Binary => Body::Binary,
    }
}

fn kind_name(body: &Body<'_>) -> &'static str {
    match body {
        Body::Empty => "empty",
        Body::Json(_) => "JSON",
        Body::BadJson(_) => "invalid JSON",
        Body::Text(_) => "text",
        Body::Binary => "binary",
    }
}

/// Compares the bodies; returns the unified diff when they are text-like and differ.
fn compare_bodies(
    sink: &mut Sink<'_>,
    (headers_a, raw_a): (&HeaderMap, &[u8]),
    (headers_b, raw_b): (&HeaderMap, &[u8]),
) -> Option<String> {
    let (a, b) = match (decode(headers_a, raw_a), decode(headers_b, raw_b)) {
        (Ok(a), Ok(b)) => (a, b),
        (da, db) => {
            // Identical bytes that fail identically are not a difference between the two.
            if raw_a == raw_b && da.is_err() && db.is_err() {
                return None;
            }
            let describe = |d: &Result<decode::Decoded<'_>, String>| match d {
                Ok(_) => Some("decoded".to_string()),
                Err(e) => Some(e.clone()),
            };
            sink.emit("body", DiffKind::Decode, || describe(&da), || describe(&db));
            return None;
        }
    };
    // Same bytes after decoding: nothing can differ, whatever the rules.
    if a.bytes == b.bytes {
        return None;
    }
    let (body_a, body_b) = (
        classify(&a.bytes, a.declared),
        classify(&b.bytes, b.declared),
    );
    match (&body_a, &body_b) {
        (Body::Json(x), Body::Json(y)) => {
            let mut path = String::from("body");
            json::diff(sink, &mut path, x, y);
            None
        }
        (Body::Text(x), Body::Text(y)) => text::diff(sink, x, y),
        (Body::Binary, Body::Binary) => {
            sink.emit(
                "body",
                DiffKind::Binary,
                || Some(digest(&a.bytes)),
                || Some(digest(&b.bytes)),
            );
            None
        }
        (Body::Empty, _) => {
            sink.emit(
                "body",
                DiffKind::Added,
                || None,
                || Some(summary(&body_b, &b.bytes)),
            );
            None
        }
        (_, Body::Empty) => {
            sink.emit(
                "body",
                DiffKind::Removed,
                || Some(summary(&body_a, &a.bytes)),
                || None,
            );
            None
        }
        _ => {
            sink.emit(
                "body",
                DiffKind::Type,
                || Some(summary(&body_a, &a.bytes)),
                || Some(summary(&body_b, &b.bytes)),
            );
            if sink.ignored_by("body").is_some() {
                return None;
            }
            text::unified(
                &String::from_utf8_lossy(&a.bytes),
                &String::from_utf8_lossy(&b.bytes),
            )
        }
    }
}

fn summary(body: &Body<'_>, bytes: &[u8]) -> String {
    match body {
        Body::BadJson(reason) => reason.clone(),
        Body::Binary => digest(bytes),
        other => format!("{} body, {} bytes", kind_name(other), bytes.len()),
    }
}

/// Size and SHA-256: enough to tell two binary bodies apart and find them again.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} bytes, sha256:{hex}", bytes.len())
}
