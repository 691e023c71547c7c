//! `suggest`: compare rules proposed from the stored differences themselves, so a first
//! verdict needs no hand-written rules (issue 15).
//!
//! Every stored difference is streamed once ([`crate::store::StoreReader::for_each_difference`])
//! and folded into a bounded summary per (route, path): counts, how each pair of values
//! looked ([`shape`]), a capped set of value digests. Memory depends on the number of
//! distinct paths (itself capped), never on the number of mismatches. A path becomes a rule
//! only when every one of its values is the same sort of noise; one meaningful-looking
//! change makes it "looks real" instead, because hiding a real difference is the one
//! mistake a suggestion must not make.
//!
//! - [`shape`]: what one pair of values looks like.
//! - [`render`]: the proposals as a TOML config `--config` takes as is, and in short.

mod render;
mod shape;

pub use render::{config as render_config, Summary};
pub use shape::MaskRule;

use crate::route::RoutePattern;
use crate::store::read::DifferenceFact;
use crate::store::{ReadFilter, StoreError, StoreReader};
use shape::{Generated, Real, Verdict};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

/// Most (route, path) summaries kept; later paths are counted as left out.
const MAX_PATHS: usize = 4096;
/// Most value digests kept per path for the "never repeated" test.
const MAX_DISTINCT: usize = 256;
/// Fewest examples before "never repeated" is evidence at all.
const MIN_NEVER_REPEATED: u64 = 5;
/// Most distinct masks one path may need before it is too irregular to mask.
const MAX_MASKS: usize = 4;
/// Most reasons kept per path for "looks real".
const MAX_REASONS: usize = 8;
/// Characters of an example value shown in a "looks real" line.
const EXAMPLE_CHARS: usize = 48;

/// Why suggestions could not be produced or written (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing to standard output: {0}")]
    Stdout(std::io::Error),
}

/// A rule the config can take as is.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Ignore(String),
    Mask(MaskRule),
    Unordered { path: String, key: Option<String> },
    Tolerance { relative: f64 },
}

impl Rule {
    /// The rule in a few words, as the reports list it.
    pub fn describe(&self) -> String {
        match self {
            Rule::Ignore(path) => format!("ignore {path}"),
            Rule::Mask(MaskRule::Preset(name)) => format!("mask {name}"),
            Rule::Mask(MaskRule::Regex { regex, .. }) => format!("mask /{regex}/"),
            Rule::Unordered {
                path,
                key: Some(key),
            } => format!("unordered {path} by {key}"),
            Rule::Unordered { path, key: None } => format!("unordered {path}"),
            Rule::Tolerance { relative } => format!("tolerance relative={relative:e}"),
        }
    }
}

/// One proposed rule and the evidence for it.
#[derive(Clone, Debug)]
pub struct Proposal {
    pub rule: Rule,
    /// Mismatches the rule would have explained.
    pub mismatches: u64,
    /// `differed in 80 of 80 examples on GET /users/{id}; values look like UUIDs`.
    pub evidence: String,
}

/// The proposals of one route, for its `[[route]]` table.
#[derive(Clone, Debug)]
pub struct RouteProposals {
    pub route: String,
    pub rules: Vec<Proposal>,
}

/// A path no rule is proposed for, and why.
#[derive(Clone, Debug)]
pub struct Observation {
    pub route: String,
    pub path: String,
    pub mismatches: u64,
    pub evidence: String,
}

/// Everything `suggest` found.
#[derive(Clone, Debug, Default)]
pub struct Suggestions {
    pub databases: Vec<String>,
    /// Mismatches read (the newest ones only when the look was bounded).
    pub mismatches: u64,
    pub differences: u64,
    /// Paths that are the same noise on every route they differ on: `[compare]`.
    pub global: Vec<Proposal>,
    pub routes: Vec<RouteProposals>,
    /// Differences that look meaningful: never hidden by a proposal.
    pub looks_real: Vec<Observation>,
    /// Differences not judged (redacted values, mixed shapes).
    pub not_judged: Vec<Observation>,
    /// Differences at paths beyond the summary's cap, not judged.
    pub left_out: u64,
    /// Set when only the newest differences were read (the reports' bounded look).
    pub bounded: Option<usize>,
}

impl Suggestions {
    /// Every proposed rule, the global ones first.
    pub fn rules(&self) -> impl Iterator<Item = (Option<&str>, &Proposal)> {
        self.global.iter().map(|p| (None, p)).chain(
            self.routes
                .iter()
                .flat_map(|r| r.rules.iter().map(move |p| (Some(r.route.as_str()), p))),
        )
    }
}

/// Reads the stores and proposes rules. `limit` reads only the newest `limit` differences
/// of each store (the reports' short look); `None` reads them all.
pub fn suggest(
    readers: &[StoreReader],
    filter: &ReadFilter,
    route: Option<&RoutePattern>,
    limit: Option<usize>,
) -> Result<Suggestions, StoreError> {
    let mut acc = Accumulator::default();
    for (store, reader) in readers.iter().enumerate() {
        reader.for_each_difference(filter, limit, |fact| {
            if route.is_none_or(|p| p.matches_key(&fact.route)) {
                acc.add(store, fact);
            }
        })?;
    }
    let mut out = acc.finish();
    out.databases = readers
        .iter()
        .map(|r| r.path().display().to_string())
        .collect();
    out.bounded = limit;
    Ok(out)
}

/// What is known of one (route, path) so far.
#[derive(Default)]
struct PathStats {
    /// The first concrete path seen, and whether others folded into the same `*` path.
    concrete: String,
    many: bool,
    mismatches: u64,
    last_mismatch: Option<(usize, i64)>,
    pairs: u64,
    generated: BTreeMap<Generated, u64>,
    jitter: u64,
    max_relative: f64,
    masked: u64,
    masks: Vec<MaskRule>,
    too_many_masks: bool,
    reordered: u64,
    /// Identifying keys common to every readable reordered pair; `None` before the first.
    keys: Option<BTreeSet<String>>,
    real: BTreeMap<Real, u64>,
    example: Option<(String, String)>,
    redacted: u64,
    digests: HashSet<u64>,
    repeats: u64,
}

#[derive(Default)]
struct Accumulator {
    paths: HashMap<(String, String), PathStats>,
    /// Mismatches per route, counted as their rows go by (a mismatch's rows are written
    /// together, so they arrive together).
    routes: HashMap<String, u64>,
    last_mismatch: Option<(usize, i64)>,
    mismatches: u64,
    differences: u64,
    left_out: u64,
}

/// The path with array indices as `*`, so the same field of every element is one path.
fn general_path(path: &str) -> String {
    if !path.starts_with("body/") {
        return path.to_string();
    }
    path.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn digest(text: Option<&str>) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.unwrap_or("").as_bytes())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(EXAMPLE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl Accumulator {
    fn add(&mut self, store: usize, fact: DifferenceFact) {
        self.differences += 1;
        let id = (store, fact.mismatch_id);
        if self.last_mismatch != Some(id) {
            self.last_mismatch = Some(id);
            self.mismatches += 1;
            match self.routes.get_mut(&fact.route) {
                Some(count) => *count += 1,
                None => {
                    self.routes.insert(fact.route.clone(), 1);
                }
            }
        }
        let key = (fact.route, general_path(&fact.path));
        let room = self.paths.len() < MAX_PATHS;
        let stats = match self.paths.get_mut(&key) {
            Some(stats) => stats,
            None if room => self.paths.entry(key).or_insert_with(|| PathStats {
                concrete: fact.path.clone(),
                ..PathStats::default()
            }),
            None => {
                self.left_out += 1;
                return;
            }
        };
        if stats.concrete != fact.path {
            stats.many = true;
        }
        if stats.last_mismatch != Some(id) {
            stats.last_mismatch = Some(id);
            stats.mismatches += 1;
        }
        stats.pairs += 1;
        let (primary, secondary) = (fact.primary.as_deref(), fact.secondary.as_deref());
        match shape::judge(
            &fact.kind,
            &fact.path,
            primary,
            secondary,
            fact.to_path.as_deref(),
            fact.at_ms,
        ) {
            Verdict::Generated(sort) => {
                *stats.generated.entry(sort).or_default() += 1;
                for value in [primary, secondary] {
                    let d = digest(value);
                    if stats.digests.contains(&d) {
                        stats.repeats += 1;
                    } else if stats.digests.len() < MAX_DISTINCT {
                        stats.digests.insert(d);
                    }
                }
            }
            Verdict::Jitter { relative } => {
                stats.jitter += 1;
                stats.max_relative = stats.max_relative.max(relative);
            }
            Verdict::Masked(masks) => {
                stats.masked += 1;
                for mask in masks {
                    if !stats.masks.contains(&mask) {
                        if stats.masks.len() < MAX_MASKS {
                            stats.masks.push(mask);
                        } else {
                            stats.too_many_masks = true;
                        }
                    }
                }
            }
            Verdict::Reordered(keys) => {
                stats.reordered += 1;
                if let Some(keys) = keys {
                    stats.keys = Some(match stats.keys.take() {
                        Some(known) => known.intersection(&keys).cloned().collect(),
                        None => keys,
                    });
                }
            }
            Verdict::Real(reason) => {
                if stats.real.len() < MAX_REASONS || stats.real.contains_key(&reason) {
                    *stats.real.entry(reason).or_default() += 1;
                } else if let Some(count) = stats.real.values_mut().next() {
                    *count += 1;
                }
                // A renamed key keeps its value: the example would say nothing.
                if stats.example.is_none() && fact.kind != "renamed" {
                    if let (Some(a), Some(b)) = (primary, secondary) {
                        stats.example = Some((cut(a), cut(b)));
                    }
                }
            }
            Verdict::Redacted => stats.redacted += 1,
        }
    }

    fn finish(self) -> Suggestions {
        let mut out = Suggestions {
            mismatches: self.mismatches,
            differences: self.differences,
            left_out: self.left_out,
            ..Suggestions::default()
        };
        let mut per_route: BTreeMap<String, RouteDraft> = BTreeMap::new();
        let mut paths: Vec<((String, String), PathStats)> = self.paths.into_iter().collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        // Paths that are something other than an ignore on some route stay route-local.
        let mut not_ignored: HashSet<String> = HashSet::new();
        let mut ignored_on: BTreeMap<String, Vec<(String, u64, String)>> = BTreeMap::new();
        for ((route, general), stats) in paths {
            let total = self.routes.get(&route).copied().unwrap_or(stats.mismatches);
            let differed = format!(
                "differed in {} of {} examples on {route}",
                stats.mismatches, total
            );
            let path = if stats.many {
                general.clone()
            } else {
                stats.concrete.clone()
            };
            let observe = |evidence: String| Observation {
                route: route.clone(),
                path: path.clone(),
                mismatches: stats.mismatches,
                evidence,
            };
            let draft = per_route.entry(route.clone()).or_default();
            match decide(&stats) {
                Decision::Real(why) => {
                    not_ignored.insert(general.clone());
                    out.looks_real.push(observe(format!("{differed}; {why}")));
                }
                Decision::NotJudged(why) => {
                    not_ignored.insert(general.clone());
                    out.not_judged.push(observe(format!("{differed}; {why}")));
                }
                Decision::Ignore(why) => {
                    ignored_on.entry(path.clone()).or_default().push((
                        route.clone(),
                        stats.mismatches,
                        why.clone(),
                    ));
                    draft.ignores.push(Proposal {
                        rule: Rule::Ignore(path.clone()),
                        mismatches: stats.mismatches,
                        evidence: format!("{differed}; {why}"),
                    });
                }
                Decision::Unordered(key) => {
                    not_ignored.insert(general.clone());
                    let why = match &key {
                        Some(key) => format!("arrays seen reordered; elements identified by {key}"),
                        None => "arrays seen reordered".to_string(),
                    };
                    draft.unordered.push(Proposal {
                        rule: Rule::Unordered { path, key },
                        mismatches: stats.mismatches,
                        evidence: format!("{differed}; {why}"),
                    });
                }
                Decision::Tolerance(relative) => {
                    not_ignored.insert(general.clone());
                    draft.tolerance.push((path, stats.mismatches, relative));
                }
                Decision::Mask(masks) => {
                    not_ignored.insert(general.clone());
                    for mask in masks {
                        match draft.masks.iter_mut().find(|(m, ..)| *m == mask) {
                            Some((_, count, paths)) => {
                                *count += stats.mismatches;
                                paths.push(path.clone());
                            }
                            None => draft
                                .masks
                                .push((mask, stats.mismatches, vec![path.clone()])),
                        }
                    }
                }
            }
        }
        // The same noise on two or more routes, and nothing else anywhere: `[compare]`.
        for (path, routes) in &ignored_on {
            if routes.len() < 2 || not_ignored.contains(&general_path(path)) {
                continue;
            }
            let mismatches = routes.iter().map(|r| r.1).sum();
            let names: Vec<&str> = routes.iter().map(|r| r.0.as_str()).collect();
            out.global.push(Proposal {
                rule: Rule::Ignore(path.clone()),
                mismatches,
                evidence: format!(
                    "differed in {mismatches} examples on {} routes ({}); {}",
                    routes.len(),
                    names.join(", "),
                    routes[0].2
                ),
            });
            for (route, ..) in routes {
                if let Some(draft) = per_route.get_mut(route) {
                    draft
                        .ignores
                        .retain(|p| p.rule != Rule::Ignore(path.clone()));
                }
            }
        }
        let mut routes: Vec<RouteProposals> = per_route
            .into_iter()
            .map(|(route, draft)| RouteProposals {
                rules: draft.into_rules(&route),
                route,
            })
            .filter(|r| !r.rules.is_empty())
            .collect();
        for route in &mut routes {
            if RoutePattern::parse(&route.route).is_err() {
                let rules = std::mem::take(&mut route.rules);
                for rule in rules {
                    out.not_judged.push(Observation {
                        route: route.route.clone(),
                        path: rule.rule.describe(),
                        mismatches: rule.mismatches,
                        evidence: format!(
                            "{}; its route key is not a route pattern, so no [[route]] table can hold the rule",
                            rule.evidence
                        ),
                    });
                }
            }
        }
        routes.retain(|r| !r.rules.is_empty());
        // First match wins among `[[route]]` tables: the more literal pattern goes first, so
        // `GET /users/me` keeps its own rules next to `GET /users/{id}`.
        routes.sort_by_key(|r| {
            (
                r.route.matches('{').count() + r.route.matches('*').count(),
                r.route.clone(),
            )
        });
        out.routes = routes;
        out.looks_real
            .sort_by(|a, b| b.mismatches.cmp(&a.mismatches).then(a.route.cmp(&b.route)));
        out
    }
}

/// What one route's table will hold, before it is ordered.
#[derive(Default)]
struct RouteDraft {
    ignores: Vec<Proposal>,
    masks: Vec<(MaskRule, u64, Vec<String>)>,
    unordered: Vec<Proposal>,
    tolerance: Vec<(String, u64, f64)>,
}

impl RouteDraft {
    fn into_rules(self, route: &str) -> Vec<Proposal> {
        let mut rules = self.ignores;
        for (mask, mismatches, paths) in self.masks {
            let what = match &mask {
                MaskRule::Preset("uuid") => "UUIDs",
                MaskRule::Preset("timestamp") => "timestamps",
                MaskRule::Preset(_) => "hex ids",
                MaskRule::Regex { .. } => "durations or epoch times",
            };
            let shown: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();
            let more = if paths.len() > 3 {
                format!(" and {} more", paths.len() - 3)
            } else {
                String::new()
            };
            rules.push(Proposal {
                rule: Rule::Mask(mask),
                mismatches,
                evidence: format!(
                    "differed in {mismatches} examples on {route} at {}{more}; only the {what} in them changed",
                    shown.join(", ")
                ),
            });
        }
        rules.extend(self.unordered);
        if !self.tolerance.is_empty() {
            let largest = self.tolerance.iter().map(|t| t.2).fold(0.0_f64, f64::max);
            let relative = power_of_ten_above(largest);
            let mismatches = self.tolerance.iter().map(|t| t.1).sum();
            let shown: Vec<&str> = self
                .tolerance
                .iter()
                .take(3)
                .map(|t| t.0.as_str())
                .collect();
            rules.push(Proposal {
                rule: Rule::Tolerance { relative },
                mismatches,
                evidence: format!(
                    "differed in {mismatches} examples on {route} at {}; numbers differ only in their last digits (at most {largest:.1e} relative)",
                    shown.join(", ")
                ),
            });
        }
        rules
    }
}

/// The smallest power of ten at or above `x`, at least 1e-15.
fn power_of_ten_above(x: f64) -> f64 {
    let exponent = x.max(1e-15).log10().ceil() as i32;
    let mut value: f64 = format!("1e{exponent}")
        .parse()
        .unwrap_or(shape::JITTER_RELATIVE);
    if value < x {
        value *= 10.0;
    }
    value
}

enum Decision {
    Ignore(String),
    Mask(Vec<MaskRule>),
    Unordered(Option<String>),
    Tolerance(f64),
    Real(String),
    NotJudged(String),
}

/// A path's verdict from all its pairs: a rule only when every pair is the same noise.
fn decide(stats: &PathStats) -> Decision {
    if let Some((reason, _)) = stats.real.iter().max_by_key(|(_, count)| **count) {
        let mut why = reason.describe();
        if stats.real.len() > 1 {
            why.push_str(&format!(" (and {} other reasons)", stats.real.len() - 1));
        }
        let noise = stats.pairs - stats.real.values().sum::<u64>();
        if noise > 0 {
            why.push_str(&format!(
                "; {noise} of its {} differences looked like noise, but a rule would hide the others too",
                stats.pairs
            ));
        }
        if let Some((a, b)) = &stats.example {
            why.push_str(&format!(", e.g. {a} -> {b}"));
        }
        return Decision::Real(why);
    }
    if stats.redacted > 0 {
        return Decision::NotJudged("values are redacted secrets; not judged".into());
    }
    let generated: u64 = stats.generated.values().sum();
    let shapes = [generated, stats.jitter, stats.masked, stats.reordered];
    if shapes.iter().filter(|n| **n > 0).count() > 1 {
        return Decision::NotJudged("values of several shapes; no one rule fits".into());
    }
    if generated > 0 {
        let opaque = stats.generated.contains_key(&Generated::Opaque);
        if opaque && (stats.repeats > 0 || stats.pairs < MIN_NEVER_REPEATED) {
            return Decision::Real(if stats.repeats > 0 {
                "id-like values changed, and some of them recur".into()
            } else {
                format!(
                    "id-like values changed in too few examples ({}) to call them generated",
                    stats.pairs
                )
            });
        }
        let (sort, _) = stats
            .generated
            .iter()
            .max_by_key(|(sort, count)| (**count, std::cmp::Reverse(**sort)))
            .expect("generated > 0");
        let mut why = sort.describe().to_string();
        if stats.repeats == 0 && *sort != Generated::Opaque && stats.pairs >= MIN_NEVER_REPEATED {
            why.push_str(", never repeated");
        }
        return Decision::Ignore(why);
    }
    if stats.jitter > 0 {
        return Decision::Tolerance(stats.max_relative);
    }
    if stats.masked > 0 {
        if stats.too_many_masks {
            return Decision::NotJudged("generated tokens of too many kinds to mask".into());
        }
        return Decision::Mask(stats.masks.clone());
    }
    if stats.reordered > 0 {
        let key = stats.keys.as_ref().and_then(|keys| {
            ["id", "key", "uuid", "name"]
                .iter()
                .find(|k| keys.contains(**k))
                .map(|k| k.to_string())
                .or_else(|| keys.iter().find(|k| k.ends_with("id")).cloned())
                .or_else(|| keys.iter().next().cloned())
        });
        return Decision::Unordered(key);
    }
    Decision::NotJudged("no values to judge".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_fold_into_stars() {
        assert_eq!(general_path("body/items/3/id"), "body/items/*/id");
        assert_eq!(general_path("headers.x-1"), "headers.x-1");
        assert_eq!(general_path("body#L12"), "body#L12");
    }

    #[test]
    fn tolerance_rounds_up_to_a_power_of_ten() {
        assert_eq!(power_of_ten_above(3e-9), 1e-8);
        assert_eq!(power_of_ten_above(1e-7), 1e-7);
        assert_eq!(power_of_ten_above(0.0), 1e-15);
    }
}
