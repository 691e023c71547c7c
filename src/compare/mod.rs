//! Decides whether two responses mean the same thing, and where they differ.
//!
//! This is the first, deliberately simple verdict: statuses equal and body bytes equal.
//! Everything that judges responses goes through [`Comparator`], so a richer engine replaces
//! the inside without touching the proxy, the pipeline or the store.

use crate::exchange::Captured;
use crate::route::auto_route;
use http::Method;
use serde::Deserialize;
use std::fmt;

/// The `[compare]` table of the config file: rules that apply to every route.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareSection {}

/// One `[[route]]` table of the config file: a route pattern and its own rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteSection {
    pub pattern: String,
}

/// The rule part of the configuration, as read from the file.
#[derive(Clone, Debug, Default)]
pub struct RulesConfig {
    pub compare: CompareSection,
    pub routes: Vec<RouteSection>,
}

/// A rule set that failed to compile.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("route pattern {pattern:?}: {reason}")]
    RoutePattern { pattern: String, reason: String },
}

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
        }
    }

    pub fn parse(s: &str) -> Option<DiffKind> {
        [
            DiffKind::Status,
            DiffKind::Changed,
            DiffKind::Added,
            DiffKind::Removed,
            DiffKind::Type,
            DiffKind::Text,
            DiffKind::Binary,
            DiffKind::Decode,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One place where the two responses differ, in the path grammar shared with ignore rules
/// (`status`, `headers.<name>`, `body`, `body/<json-pointer>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    /// The primary's value, rendered for people (JSON text for JSON values).
    pub primary: Option<String>,
    pub secondary: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {} -> {}",
            self.path,
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

/// A compiled rule set. Built once at startup, so a bad rule fails before the first request.
#[derive(Debug, Default)]
pub struct Comparator {}

impl Comparator {
    pub fn new(_config: &RulesConfig) -> Result<Comparator, RulesError> {
        Ok(Comparator {})
    }

    /// Every rule's identifier, so a report can list the rules that never matched.
    pub fn rule_ids(&self) -> Vec<String> {
        Vec::new()
    }

    /// The route key that groups this request in counters and reports.
    pub fn route_of(&self, method: &Method, path: &str) -> String {
        auto_route(method, path)
    }

    /// The first verdict: statuses equal and body bytes equal.
    pub fn compare(&self, _route: &str, primary: &Captured, secondary: &Captured) -> Verdict {
        let mut differences = Vec::new();
        if primary.status != secondary.status {
            differences.push(Difference {
                path: "status".into(),
                kind: DiffKind::Status,
                primary: Some(primary.status.as_u16().to_string()),
                secondary: Some(secondary.status.as_u16().to_string()),
            });
        }
        if primary.body != secondary.body {
            differences.push(Difference {
                path: "body".into(),
                kind: DiffKind::Binary,
                primary: Some(format!("{} bytes", primary.body.len())),
                secondary: Some(format!("{} bytes", secondary.body.len())),
            });
        }
        Verdict {
            differences,
            ..Verdict::default()
        }
    }
}
