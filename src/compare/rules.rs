//! The rules of the `[compare]` table and of each `[[route]]` table: how they are written in
//! the config file, and how they are compiled once at startup so that a bad regex or path
//! pattern fails before the first request, naming the file, key and line.

use super::json::{self, Tape};
use super::path::{segments, unescape_key, PathPattern};
use crate::route::auto_route;
use crate::route::RoutePattern;
use http::Method;
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
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
    /// Fields a migration renamed on purpose: the primary's path = the secondary's
    /// (`{ "body/email" = "body/email_address" }`), compared as one field.
    #[serde(default)]
    pub rename: BTreeMap<String, Spanned<String>>,
    /// Values a migration respelled on purpose (`ACTIVE` answered as `active`): the
    /// mapped pair is equal, any other change at the path is still reported.
    #[serde(default)]
    pub map: Vec<Spanned<MapSetting>>,
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
    #[serde(default)]
    pub rename: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub map: Vec<Spanned<MapSetting>>,
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
    rename: &'a BTreeMap<String, Spanned<String>>,
    map: &'a [Spanned<MapSetting>],
}

impl RuleTables<'_> {
    /// The rules' values without the places they were written at.
    fn canonical(&self) -> String {
        let inner = |v: &dyn std::fmt::Debug| format!("{v:?}");
        let mut text = format!(
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
        );
        // Only when present, so the digest of a configuration written before these
        // keys existed stays what it was.
        if !self.rename.is_empty() {
            let pairs: Vec<(&String, &String)> =
                self.rename.iter().map(|(k, v)| (k, v.get_ref())).collect();
            text.push_str(&format!(" rename={pairs:?}"));
        }
        if !self.map.is_empty() {
            let maps: Vec<String> = self.map.iter().map(|s| inner(s.get_ref())).collect();
            text.push_str(&format!(" map={maps:?}"));
        }
        text
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
            rename: &self.rename,
            map: &self.map,
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
            rename: &self.rename,
            map: &self.map,
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

/// `{ path = "body/status", from = "ACTIVE", to = "active" }`: where the primary has
/// `from` and the secondary `to`, the two are equal. `from` and `to` are TOML scalars
/// (string, integer, float, boolean) or `{ json = "null" }` for any JSON scalar TOML
/// cannot spell.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSetting {
    pub path: String,
    pub from: toml::Value,
    pub to: toml::Value,
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
    /// `replay --against-recorded`: the primary's side is a recording whose secrets read
    /// `[redacted]`; a difference the redaction explains is hidden by the rule `redacted`.
    pub recorded_redactions: bool,
}

/// The id of the rule that hides what a recording's redaction explains.
pub const REDACTED_RULE: &str = "redacted";

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

/// A JSON field renamed within its object: in an object at a path `parent` matches, the
/// primary's key `from` and the secondary's key `to` are one field.
#[derive(Debug)]
pub struct Rename {
    pub parent: PathPattern,
    /// Raw object keys (JSON-pointer escapes undone), as the tape holds them.
    pub from: String,
    pub to: String,
}

/// A header renamed: the primary's `from` is compared with the secondary's `to`
/// (lowercase names).
#[derive(Debug)]
pub struct HeaderRename {
    pub from: String,
    pub to: String,
}

/// A value mapping at the paths `pattern` matches: `from` on the primary's side equals
/// `to` on the secondary's. Both are one-value tapes, so they compare with the same
/// number semantics as the documents (`1` equals `1.0`).
#[derive(Debug)]
pub struct ValueMap {
    pub pattern: PathPattern,
    pub from: Tape,
    pub to: Tape,
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
    /// `rename`: JSON fields renamed within their object, route's first.
    pub renames: Vec<(Rename, usize)>,
    /// `rename` of headers (`headers.x-old` = `headers.x-new`).
    pub header_renames: Vec<(HeaderRename, usize)>,
    /// `map`: value mappings, route's first.
    pub maps: Vec<(ValueMap, usize)>,
    /// `replay --against-recorded`: where the recorded primary value is `[redacted]` (or
    /// holds it, for a secret scrubbed inside a longer value) and the secondary's value
    /// fits around it, the difference is hidden by this rule.
    pub redacted: Option<usize>,
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
            set.renames.extend(inherited.renames);
            set.header_renames.extend(inherited.header_renames);
            set.maps.extend(inherited.maps);
            if set.allow_added.is_none() {
                set.allow_added = inherited.allow_added;
            }
            if set.tolerance.is_none() {
                set.tolerance = inherited.tolerance;
            }
            routes.push((pattern, set));
        }
        if config.recorded_redactions {
            let id = ids.len();
            ids.push(REDACTED_RULE.to_string());
            global.redacted = Some(id);
            for (_, set) in &mut routes {
                set.redacted = Some(id);
            }
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
    for (source, target) in rules.rename {
        let compiled = compile_rename(source, target.get_ref())
            .map_err(|r| fail("rename", target.span(), source, r))?;
        match compiled {
            Compiled::Body(rename, text) => {
                let id = id_of(ids, format!("{prefix}rename {text}"));
                set.renames.push((rename, id));
            }
            Compiled::Header(rename, text) => {
                let id = id_of(ids, format!("{prefix}rename {text}"));
                set.header_renames.push((rename, id));
            }
        }
    }
    for map in rules.map {
        let setting = map.get_ref();
        let (compiled, id) =
            compile_map(setting).map_err(|r| fail("map", map.span(), setting.path.trim(), r))?;
        let id = id_of(ids, format!("{prefix}{id}"));
        set.maps.push((compiled, id));
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

/// A compiled `rename` entry and the text of its id (`body/email -> body/email_address`).
enum Compiled {
    Body(Rename, String),
    Header(HeaderRename, String),
}

/// Checks one `rename` entry: a JSON field renamed within its object (only the last
/// segment changes, and it is a literal key), or a header renamed.
fn compile_rename(source: &str, target: &str) -> Result<Compiled, String> {
    let (source, target) = (source.trim(), target.trim());
    let from = PathPattern::compile(source)?;
    let to = PathPattern::compile(target).map_err(|r| format!("{target:?}: {r}"))?;
    let (a, b) = (segments(from.as_str()), segments(to.as_str()));
    let header = |segs: &[&str], text: &str| {
        segs.len() == 2 && segs[0] == "headers" && text.starts_with("headers.")
    };
    if header(&a, source) && header(&b, target) {
        let (old, new) = (a[1].to_ascii_lowercase(), b[1].to_ascii_lowercase());
        if old == new {
            return Err("renames a header to itself".into());
        }
        for name in [&old, &new] {
            if name.contains('*') || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("{name:?} is not one header name"));
            }
        }
        let text = format!("headers.{old} -> headers.{new}");
        return Ok(Compiled::Header(HeaderRename { from: old, to: new }, text));
    }
    let field = |segs: &[&str], text: &str| {
        segs.len() >= 2 && segs[0] == "body" && text.starts_with("body/")
    };
    if !field(&a, source) || !field(&b, target) {
        return Err(
            "a rename is of a JSON field to another in the same object (`body/email` = `body/email_address`) or of a header (`headers.x-old` = `headers.x-new`)"
                .into(),
        );
    }
    let (old, new) = (a[a.len() - 1], b[b.len() - 1]);
    if a.len() != b.len() || a[..a.len() - 1] != b[..b.len() - 1] {
        return Err(format!(
            "{target:?}: a rename keeps the field in its object, only the last segment changes; moving a field to another object is not supported"
        ));
    }
    for key in [old, new] {
        if key.is_empty() || key.contains('*') {
            return Err(format!(
                "the renamed key {key:?} must be a field name, not empty and without `*` (wildcards go in the segments above it)"
            ));
        }
    }
    if old == new {
        return Err("renames a field to itself".into());
    }
    let parent = PathPattern::compile(&source[..source.len() - old.len() - 1])?;
    let text = format!("{} -> {}", from.as_str(), to.as_str());
    Ok(Compiled::Body(
        Rename {
            parent,
            from: unescape_key(old),
            to: unescape_key(new),
        },
        text,
    ))
}

/// Checks one `map` entry and returns it with its id (`map body/status "ACTIVE" -> "active"`,
/// the values as JSON text, so `"1"` and `1` are told apart).
fn compile_map(setting: &MapSetting) -> Result<(ValueMap, String), String> {
    let path = setting.path.trim();
    let pattern = PathPattern::compile(path)?;
    let segs = segments(pattern.as_str());
    if segs[0] != "body" || path.starts_with("body#") {
        return Err(
            "a map applies to JSON values: its path is `body` or below (`body/items/*/status`)"
                .into(),
        );
    }
    let from = scalar_tape(&setting.from).map_err(|r| format!("from: {r}"))?;
    let to = scalar_tape(&setting.to).map_err(|r| format!("to: {r}"))?;
    let (from_text, to_text) = (json::render(from.root()), json::render(to.root()));
    if json::scalar_equal(from.root(), to.root()) {
        return Err(format!(
            "from {from_text} and to {to_text} are equal: nothing to map"
        ));
    }
    let id = format!("map {} {from_text} -> {to_text}", pattern.as_str());
    Ok((ValueMap { pattern, from, to }, id))
}

/// A TOML scalar (or `{ json = "..." }`, for `null` and numbers TOML cannot hold) as a
/// one-value JSON tape.
fn scalar_tape(value: &toml::Value) -> Result<Tape, String> {
    let text =
        match value {
            toml::Value::String(s) => serde_json::to_string(s).map_err(|e| e.to_string())?,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f)
                .ok_or("a number is finite")?
                .to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Table(table) => match (table.len(), table.get("json")) {
                (1, Some(toml::Value::String(text))) => text.clone(),
                _ => return Err(
                    "a table here is `{ json = \"<JSON scalar>\" }`, e.g. `{ json = \"null\" }`"
                        .into(),
                ),
            },
            toml::Value::Array(_) | toml::Value::Datetime(_) => {
                return Err("a string, number, boolean or `{ json = \"null\" }`".into())
            }
        };
    let tape = Tape::parse(text.as_bytes()).map_err(|_| json::describe_invalid(text.as_bytes()))?;
    if matches!(
        tape.root().view(),
        json::View::Array(_) | json::View::Object(_)
    ) {
        return Err("a map is between scalars (string, number, boolean, null)".into());
    }
    Ok(tape)
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The `[compare]` and `[[route]]` tables of a config text, compiled.
    pub(in crate::compare) fn compile_toml(text: &str) -> Result<CompiledRules, RulesError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            compare: CompareSection,
            #[serde(default)]
            route: Vec<RouteSection>,
        }
        let file: File = toml::from_str(text).expect("test TOML parses");
        CompiledRules::compile(&RulesConfig {
            compare: file.compare,
            routes: file.route,
            source: None,
            recorded_redactions: false,
        })
    }

    fn error(text: &str) -> String {
        compile_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn rename_and_map_ids_say_what_they_hide() {
        let rules = compile_toml(
            r#"
            [compare]
            rename = { "body/email" = "body/email_address", "headers.X-Old" = "headers.x-new" }
            map = [
                { path = "body/items/*/status", from = "ACTIVE", to = "active" },
                { path = "body/n", from = 1, to = "1" },
                { path = "body/gone", from = { json = "null" }, to = false },
            ]

            [[route]]
            pattern = "GET /users/{id}"
            rename = { "body/**/name" = "body/**/full_name" }
            "#,
        )
        .unwrap();
        assert_eq!(
            rules.ids,
            [
                "rename body/email -> body/email_address",
                "rename headers.x-old -> headers.x-new",
                r#"map body/items/*/status "ACTIVE" -> "active""#,
                r#"map body/n 1 -> "1""#,
                r#"map body/gone null -> false"#,
                "GET /users/{id}: rename body/**/name -> body/**/full_name",
            ]
        );
        let (_, route) = &rules.routes[0];
        assert_eq!(
            route.renames.len(),
            2,
            "the route's own, then the global one"
        );
        assert_eq!(route.renames[0].0.from, "name");
        assert_eq!(route.maps.len(), 3);
        assert_eq!(route.header_renames.len(), 1);
    }

    #[test]
    fn a_renamed_key_is_the_unescaped_pointer_segment() {
        let rules =
            compile_toml("[compare]\nrename = { \"body/a~1b\" = \"body/a~0b\" }\n").unwrap();
        let rename = &rules.global.renames[0].0;
        assert_eq!((rename.from.as_str(), rename.to.as_str()), ("a/b", "a~b"));
        assert_eq!(rename.parent.as_str(), "body");
    }

    #[test]
    fn bad_renames_and_maps_are_refused_with_a_reason() {
        let cases = [
            (r#"rename = { "" = "body/x" }"#, "a path starts with"),
            (r#"rename = { "body/x" = "" }"#, "a path starts with"),
            (
                r#"rename = { "status" = "body/x" }"#,
                "a rename is of a JSON field",
            ),
            (
                r#"rename = { "body" = "body/x" }"#,
                "a rename is of a JSON field",
            ),
            (
                r#"rename = { "body#L1" = "body#L2" }"#,
                "a rename is of a JSON field",
            ),
            (
                r#"rename = { "body/x" = "headers.x" }"#,
                "a rename is of a JSON field",
            ),
            (
                r#"rename = { "body/x" = "body/x" }"#,
                "renames a field to itself",
            ),
            (
                r#"rename = { "headers.X-A" = "headers.x-a" }"#,
                "renames a header to itself",
            ),
            (
                r#"rename = { "body/user/name" = "body/name" }"#,
                "only the last segment",
            ),
            (
                r#"rename = { "body/a/x" = "body/b/x" }"#,
                "only the last segment",
            ),
            (r#"rename = { "body/*" = "body/x" }"#, "without `*`"),
            (r#"rename = { "body/x" = "body/**" }"#, "without `*`"),
            (r#"rename = { "body/x" = "body/" }"#, "not empty"),
            (
                r#"rename = { "body/x" = "body/y*" }"#,
                "must be a whole segment",
            ),
            (
                r#"map = [{ path = "", from = "a", to = "b" }]"#,
                "a path starts with",
            ),
            (
                r#"map = [{ path = "headers.x", from = "a", to = "b" }]"#,
                "JSON values",
            ),
            (
                r#"map = [{ path = "body#L1", from = "a", to = "b" }]"#,
                "JSON values",
            ),
            (
                r#"map = [{ path = "body/s", from = "a", to = "a" }]"#,
                "nothing to map",
            ),
            (
                r#"map = [{ path = "body/s", from = 1, to = 1.0 }]"#,
                "nothing to map",
            ),
            (
                r#"map = [{ path = "body/s", from = [1], to = 2 }]"#,
                "from: a string",
            ),
            (
                r#"map = [{ path = "body/s", from = 1, to = { json = "[1]" } }]"#,
                "to: a map is between scalars",
            ),
            (
                r#"map = [{ path = "body/s", from = 1, to = { json = "nul" } }]"#,
                "to: invalid JSON",
            ),
            (
                r#"map = [{ path = "body/s", from = 1, to = { text = "x" } }]"#,
                "to: a table here",
            ),
            (
                r#"map = [{ path = "body/s", from = nan, to = 1 }]"#,
                "finite",
            ),
        ];
        for (rule, reason) in cases {
            let err = error(&format!("[compare]\n{rule}\n"));
            assert!(err.contains(reason), "{rule}: {err}");
            let key = if rule.starts_with("map") {
                "compare.map"
            } else {
                "compare.rename"
            };
            assert!(err.contains(key), "{rule}: {err}");
            let err = error(&format!("[[route]]\npattern = \"/x\"\n{rule}\n"));
            assert!(err.contains(reason), "{rule}: {err}");
        }
    }

    #[test]
    fn the_canonical_text_holds_renames_and_maps_only_when_present() {
        let parse = |text: &str| -> RulesConfig {
            #[derive(Deserialize)]
            struct File {
                compare: CompareSection,
            }
            let file: File = toml::from_str(text).unwrap();
            RulesConfig {
                compare: file.compare,
                ..RulesConfig::default()
            }
        };
        let plain = parse("[compare]\nignore = [\"body/x\"]\n").canonical();
        assert!(
            !plain.contains("rename") && !plain.contains("map"),
            "{plain}"
        );
        let renamed = parse(
            "[compare]\nignore = [\"body/x\"]\nrename = { \"body/a\" = \"body/b\" }\nmap = [{ path = \"body/s\", from = \"A\", to = \"a\" }]\n",
        )
        .canonical();
        assert!(renamed.starts_with(plain.trim_end()), "{renamed}");
        assert!(
            renamed.contains(r#"rename=[("body/a", "body/b")]"#),
            "{renamed}"
        );
        assert!(
            renamed.contains("map=") && renamed.contains("\\\"A\\\""),
            "{renamed}"
        );
        let spaced = parse(
            "[compare]\nignore = [\"body/x\"]\n\n# moved\nrename = { \"body/a\" = \"body/b\" }\nmap = [\n  { path = \"body/s\", from = \"A\", to = \"a\" },\n]\n",
        )
        .canonical();
        assert_eq!(renamed, spaced, "the digest is of values, not of positions");
    }
}
