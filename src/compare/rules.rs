//! The rules of the `[compare]` table and of each `[[route]]` table: how they are written in
//! the config file, and how they are compiled once at startup so that a bad regex or path
//! pattern fails before the first request, naming the file, key and line.

use super::path::PathPattern;
use crate::route::auto_route;
use crate::route::RoutePattern;
use http::Method;
use regex::Regex;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The `[compare]` table of the config file: rules that apply to every route.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareSection {
    /// Header names compared in full, beyond the media type of content-type.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Paths whose differences are hidden (and counted), e.g. `body/**/updated_at`.
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Rewrites of string values, header values and text bodies before comparison.
    #[serde(default)]
    pub mask: Vec<Spanned<MaskSetting>>,
    /// Arrays compared as multisets.
    #[serde(default)]
    pub unordered: Vec<Spanned<UnorderedSetting>>,
    /// Numbers closer than this compare equal.
    pub tolerance: Option<Spanned<ToleranceSetting>>,
    /// Differences a migration makes on purpose: `["added"]` lets the secondary answer a
    /// superset of the primary's fields (each added one counted as hidden by the rule).
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
}

/// One `[[route]]` table of the config file: a route pattern and its own rules, which
/// apply before the global ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteSection {
    /// `GET /users/{id}`, `/orders/**`: `{name}` and `*` match one segment, `**` any number.
    pub pattern: Spanned<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    #[serde(default)]
    pub mask: Vec<Spanned<MaskSetting>>,
    #[serde(default)]
    pub unordered: Vec<Spanned<UnorderedSetting>>,
    pub tolerance: Option<Spanned<ToleranceSetting>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// This route's share of requests shadowed (`0.1`, `"10%"`), over the global `sample`.
    pub sample: Option<toml::Value>,
    /// Shadow this route's writes even with `shadow-writes` off (or not, with `false`).
    pub shadow_writes: Option<bool>,
}

/// The rule keys shared by `[compare]` and `[[route]]`, borrowed.
struct RuleTables<'a> {
    headers: &'a [String],
    ignore: &'a [Spanned<String>],
    mask: &'a [Spanned<MaskSetting>],
    unordered: &'a [Spanned<UnorderedSetting>],
    tolerance: Option<&'a Spanned<ToleranceSetting>>,
    allow: &'a [Spanned<String>],
}

impl RuleTables<'_> {
    /// The rules' values without the places they were written at.
    fn canonical(&self) -> String {
        let inner = |v: &dyn std::fmt::Debug| format!("{v:?}");
        format!(
            "headers={:?} ignore={:?} mask={:?} unordered={:?} tolerance={:?} allow={:?}",
            self.headers,
            self.ignore
                .iter()
                .map(|s| inner(s.get_ref()))
                .collect::<Vec<_>>(),
            self.mask
                .iter()
                .map(|s| inner(s.get_ref()))
                .collect::<Vec<_>>(),
            self.unordered
                .iter()
                .map(|s| inner(s.get_ref()))
                .collect::<Vec<_>>(),
            self.tolerance.map(|s| inner(s.get_ref())),
            self.allow.iter().map(|s| s.get_ref()).collect::<Vec<_>>(),
        )
    }
}

impl RulesConfig {
    /// The rules as values, not as positions in their file: what the settings digest
    /// hashes, so that a comment added above a rule does not change the digest.
    pub fn canonical(&self) -> String {
        let mut text = format!("[compare] {}\n", self.compare.tables().canonical());
        for route in &self.routes {
            text.push_str(&format!(
                "[[route]] {:?} {}\n",
                route.pattern.get_ref(),
                route.tables().canonical()
            ));
        }
        text
    }
}

impl CompareSection {
    fn tables(&self) -> RuleTables<'_> {
        RuleTables {
            headers: &self.headers,
            ignore: &self.ignore,
            mask: &self.mask,
            unordered: &self.unordered,
            tolerance: self.tolerance.as_ref(),
            allow: &self.allow,
        }
    }
}

impl RouteSection {
    fn tables(&self) -> RuleTables<'_> {
        RuleTables {
            headers: &self.headers,
            ignore: &self.ignore,
            mask: &self.mask,
            unordered: &self.unordered,
            tolerance: self.tolerance.as_ref(),
            allow: &self.allow,
        }
    }
}

/// A mask: a built-in preset by name (`"uuid"`), or a regex and its replacement.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum MaskSetting {
    Preset(String),
    Regex {
        regex: String,
        #[serde(default = "default_replacement")]
        replace: String,
    },
}

fn default_replacement() -> String {
    "<masked>".to_string()
}

/// `"body/tags"`, or `{ path = "body/items", key = "id" }` to pair elements by a field.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum UnorderedSetting {
    Path(String),
    Keyed { path: String, key: Option<String> },
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ToleranceSetting {
    #[serde(default)]
    pub absolute: f64,
    #[serde(default)]
    pub relative: f64,
}

/// The rule part of the configuration, as read from the file.
#[derive(Clone, Debug, Default)]
pub struct RulesConfig {
    pub compare: CompareSection,
    pub routes: Vec<RouteSection>,
    /// The file the rules came from, so errors can name it and its line.
    pub source: Option<PathBuf>,
}

/// A rule set that failed to compile.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{location}route pattern {pattern:?}: {reason}")]
    RoutePattern {
        location: Location,
        pattern: String,
        reason: String,
    },
    #[error("{location}key `{key}`: {value:?}: {reason}")]
    Rule {
        location: Location,
        key: String,
        value: String,
        reason: String,
    },
}

/// `file:line: ` when known, else nothing.
#[derive(Debug, Default)]
pub struct Location(Option<String>);

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "{s}: "),
            None => Ok(()),
        }
    }
}

impl Location {
    /// Only called on the error path: re-reads the file to turn a byte span into a line.
    fn of(source: Option<&PathBuf>, span: std::ops::Range<usize>) -> Location {
        let Some(path) = source else {
            return Location(None);
        };
        let line = std::fs::read_to_string(path)
            .ok()
            .filter(|text| span.start <= text.len())
            .map(|text| text[..span.start].matches('\n').count() + 1);
        Location(Some(match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        }))
    }
}

/// A compiled string rewrite.
#[derive(Debug)]
pub struct Mask {
    pub regex: Regex,
    pub replacement: String,
}

/// Arrays at `pattern` are multisets; with `key`, elements pair up by that field.
#[derive(Debug)]
pub struct Unordered {
    pub pattern: PathPattern,
    pub key: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub absolute: f64,
    pub relative: f64,
}

impl Tolerance {
    pub fn accepts(&self, a: f64, b: f64) -> bool {
        let delta = (a - b).abs();
        delta <= self.absolute || delta <= self.relative * a.abs().max(b.abs())
    }
}

/// The rules in force for one route: the route's own rules first, then the global ones.
/// Each rule carries the index of its id in [`CompiledRules::ids`].
#[derive(Debug, Default)]
pub struct RuleSet {
    pub headers: Vec<String>,
    pub ignore: Vec<(PathPattern, usize)>,
    pub masks: Vec<(Mask, usize)>,
    pub unordered: Vec<(Unordered, usize)>,
    pub tolerance: Option<(Tolerance, usize)>,
    /// `allow = ["added"]`: keys and elements only the secondary has are hidden by it.
    pub allow_added: Option<usize>,
}

/// Everything compiled from a [`RulesConfig`].
#[derive(Debug, Default)]
pub struct CompiledRules {
    /// Stable human ids of every rule, indexed by the numbers in each [`RuleSet`].
    pub ids: Vec<String>,
    pub global: RuleSet,
    /// Per explicit route: its pattern and the merged rule set (route rules, then global).
    pub routes: Vec<(RoutePattern, RuleSet)>,
}

impl CompiledRules {
    pub fn compile(config: &RulesConfig) -> Result<CompiledRules, RulesError> {
        let source = config.source.as_ref();
        let mut ids = Vec::new();
        let mut global = RuleSet::default();
        add_rules(
            &mut global,
            &mut ids,
            "",
            "compare",
            config.compare.tables(),
            source,
        )?;
        let mut routes = Vec::new();
        for route in &config.routes {
            let text = route.pattern.get_ref();
            let pattern = RoutePattern::parse(text).map_err(|reason| RulesError::RoutePattern {
                location: Location::of(source, route.pattern.span()),
                pattern: text.clone(),
                reason,
            })?;
            let mut set = RuleSet::default();
            let prefix = format!("{}: ", text.trim());
            add_rules(&mut set, &mut ids, &prefix, "route", route.tables(), source)?;
            // The global rules apply too, after the route's own; they compile again so each
            // set owns its regexes (cheap, and keeps RuleSet free of shared references).
            let mut scratch = Vec::new();
            let mut inherited = RuleSet::default();
            add_rules(
                &mut inherited,
                &mut scratch,
                "",
                "compare",
                config.compare.tables(),
                source,
            )?;
            for name in inherited.headers {
                if !set.headers.contains(&name) {
                    set.headers.push(name);
                }
            }
            set.ignore.extend(inherited.ignore);
            set.masks.extend(inherited.masks);
            set.unordered.extend(inherited.unordered);
            if set.allow_added.is_none() {
                set.allow_added = inherited.allow_added;
            }
            if set.tolerance.is_none() {
                set.tolerance = inherited.tolerance;
            }
            routes.push((pattern, set));
        }
        Ok(CompiledRules {
            ids,
            global,
            routes,
        })
    }

    /// The route key of a request: the first explicit pattern that matches, else the
    /// automatic template.
    pub fn route_of(&self, method: &Method, path: &str) -> String {
        self.route(method, path).0
    }

    /// The route key of a request together with its rules, found in one pass: the first
    /// explicit pattern that matches (its own rules, then the global ones), else the
    /// automatic template (the global rules).
    pub fn route(&self, method: &Method, path: &str) -> (String, &RuleSet) {
        self.routes
            .iter()
            .find(|(pattern, _)| pattern.matches(method, path))
            .map(|(pattern, set)| (pattern.key(method), set))
            .unwrap_or_else(|| (auto_route(method, path), &self.global))
    }

    /// The rules in force for a route key produced by [`CompiledRules::route_of`], for
    /// callers that have only the key (tests, benchmarks); a request's route and rules
    /// come together from [`CompiledRules::route`].
    pub fn for_route(&self, route: &str) -> &RuleSet {
        let (method, path) = route.split_once(' ').unwrap_or(("", route));
        self.routes
            .iter()
            .find(|(pattern, _)| {
                pattern.path_text() == path && pattern.method().is_none_or(|m| m.as_str() == method)
            })
            .map(|(_, set)| set)
            .unwrap_or(&self.global)
    }
}

/// Compiles one table's rules into `set`, registering each rule's id in `ids`.
fn add_rules(
    set: &mut RuleSet,
    ids: &mut Vec<String>,
    prefix: &str,
    table: &str,
    rules: RuleTables<'_>,
    source: Option<&PathBuf>,
) -> Result<(), RulesError> {
    // The inherited copy of the global rules is compiled into a scratch id list; the
    // global rules were registered first, in the same order, so the indices agree.
    let id_of = |ids: &mut Vec<String>, id: String| -> usize {
        if let Some(i) = ids.iter().position(|existing| *existing == id) {
            return i;
        }
        ids.push(id);
        ids.len() - 1
    };
    let fail =
        |key: &str, span: std::ops::Range<usize>, value: &str, reason: String| RulesError::Rule {
            location: Location::of(source, span),
            key: format!("{table}.{key}"),
            value: value.to_string(),
            reason,
        };
    for allowed in rules.allow {
        match allowed.get_ref().trim() {
            "added" => set.allow_added = Some(id_of(ids, format!("{prefix}allow added"))),
            other => {
                return Err(fail(
                    "allow",
                    allowed.span(),
                    other,
                    "only `added` can be allowed (a secondary answering a superset of the primary's fields)".into(),
                ))
            }
        }
    }
    for name in rules.headers {
        let name = name.trim().to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(RulesError::Rule {
                location: Location::of(source, usize::MAX..usize::MAX),
                key: format!("{table}.headers"),
                value: name,
                reason: "not a valid header name".into(),
            });
        }
        if !set.headers.contains(&name) {
            set.headers.push(name);
        }
    }
    for pattern in rules.ignore {
        let compiled = PathPattern::compile(pattern.get_ref())
            .map_err(|r| fail("ignore", pattern.span(), pattern.get_ref(), r))?;
        let id = id_of(ids, format!("{prefix}ignore {}", compiled.as_str()));
        set.ignore.push((compiled, id));
    }
    for mask in rules.mask {
        let (compiled, id) = match mask.get_ref() {
            MaskSetting::Preset(name) => {
                let (pattern, replacement) = preset(name.trim()).ok_or_else(|| {
                    fail(
                        "mask",
                        mask.span(),
                        name,
                        "unknown preset; use `uuid`, `timestamp`, `hex-id` or { regex = \"...\", replace = \"...\" }".into(),
                    )
                })?;
                let regex = Regex::new(pattern).expect("built-in mask presets are valid");
                (
                    Mask {
                        regex,
                        replacement: replacement.to_string(),
                    },
                    format!("{prefix}mask {}", name.trim()),
                )
            }
            MaskSetting::Regex { regex, replace } => {
                let compiled = Regex::new(regex)
                    .map_err(|e| fail("mask.regex", mask.span(), regex, e.to_string()))?;
                (
                    Mask {
                        regex: compiled,
                        replacement: replace.clone(),
                    },
                    format!("{prefix}mask /{regex}/ -> {replace}"),
                )
            }
        };
        let id = id_of(ids, id);
        set.masks.push((compiled, id));
    }
    for unordered in rules.unordered {
        let (path, key) = match unordered.get_ref() {
            UnorderedSetting::Path(path) => (path, None),
            UnorderedSetting::Keyed { path, key } => (path, key.clone()),
        };
        let pattern =
            PathPattern::compile(path).map_err(|r| fail("unordered", unordered.span(), path, r))?;
        let id = match &key {
            Some(key) => format!("{prefix}unordered {} by {key}", pattern.as_str()),
            None => format!("{prefix}unordered {}", pattern.as_str()),
        };
        let id = id_of(ids, id);
        set.unordered.push((Unordered { pattern, key }, id));
    }
    if let Some(spanned) = rules.tolerance {
        let t = spanned.get_ref();
        let bad = |v: f64| !v.is_finite() || v < 0.0;
        if bad(t.absolute) || bad(t.relative) {
            return Err(fail(
                "tolerance",
                spanned.span(),
                &format!("absolute = {}, relative = {}", t.absolute, t.relative),
                "tolerances are finite and not negative".into(),
            ));
        }
        let id = id_of(
            ids,
            format!(
                "{prefix}tolerance absolute={} relative={}",
                t.absolute, t.relative
            ),
        );
        set.tolerance = Some((
            Tolerance {
                absolute: t.absolute,
                relative: t.relative,
            },
            id,
        ));
    }
    Ok(())
}

/// Built-in masks for the values that differ on every response.
fn preset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "uuid" => (
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            "<uuid>",
        ),
        // RFC 3339 (and its space-separated variant), then the common log format
        // (`10/Oct/2000:13:55:36 -0700`).
        "timestamp" => (
            r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})?|\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
            "<timestamp>",
        ),
        "hex-id" => (r"\b[0-9a-fA-F]{16,}\b", "<hex-id>"),
        _ => return None,
    })
}
