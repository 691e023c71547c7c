//! The one report model every format renders. It is built from the counter tables of any
//! number of stores (several proxy instances merge into one report) and from a few example
//! rows, so building it costs the same for a thousand mismatches as for a million.

use crate::store::read::{DifferenceRow, MismatchRow, RunRow};
use crate::store::{latency, OutcomeKind, ReadFilter, StoreError, StoreReader};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// How many differing paths a route lists.
const TOP_PATHS: usize = 10;

/// Reports covering at most this long (in whole minutes) also read per-second counts.
pub const SECONDS_UP_TO_MS: i64 = 10 * 60_000;

/// What part of the stores a report covers.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub filter: ReadFilter,
    /// Only routes this pattern picks (`GET /users/*`; grammar: [`crate::route`]).
    pub route: Option<crate::route::RoutePattern>,
    /// Examples listed per route.
    pub examples_per_route: usize,
}

/// Requests by how they ended. `mismatch_rate` is mismatched / (matched + mismatched), 0
/// when nothing was compared; `error_rate` is errors / (matched + mismatched + errors).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counts {
    pub requests: u64,
    pub matched: u64,
    pub mismatched: u64,
    pub errors: u64,
    pub skipped: u64,
    pub mismatch_rate: f64,
    pub error_rate: f64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// How the baseline served these comparisons; absent when no baseline was configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineCounts>,
}

/// Comparisons where the baseline's answer told what is noise (`used`), and where it could
/// not (`unusable`, by reason): those were judged without it, never counted as mismatches.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BaselineCounts {
    pub used: u64,
    pub unusable: u64,
    pub unusable_by_reason: BTreeMap<String, u64>,
}

impl BaselineCounts {
    fn add(&mut self, state: &str, reason: &str, count: u64) {
        if state == "used" {
            self.used += count;
        } else {
            self.unusable += count;
            *self
                .unusable_by_reason
                .entry(reason.to_string())
                .or_default() += count;
        }
    }

    fn merge(&mut self, other: &BaselineCounts) {
        self.used += other.used;
        self.unusable += other.unusable;
        for (reason, count) in &other.unusable_by_reason {
            *self.unusable_by_reason.entry(reason.clone()).or_default() += count;
        }
    }
}

impl Counts {
    /// Matched plus mismatched: the requests that were actually compared.
    pub fn compared(&self) -> u64 {
        self.matched + self.mismatched
    }

    /// `outcome` is `None` for a row no release writes: counted as not compared, under
    /// the reason `unknown outcome`, rather than guessed into another outcome.
    fn add(&mut self, outcome: Option<OutcomeKind>, reason: &str, count: u64) {
        match outcome {
            Some(OutcomeKind::Matched) => self.matched += count,
            Some(OutcomeKind::Mismatched) => self.mismatched += count,
            Some(OutcomeKind::Error) => {
                self.errors += count;
                *self.errors_by_kind.entry(reason.to_string()).or_default() += count;
            }
            Some(OutcomeKind::Skipped) => {
                self.skipped += count;
                *self
                    .skipped_by_reason
                    .entry(reason.to_string())
                    .or_default() += count;
            }
            None => {
                self.skipped += count;
                *self
                    .skipped_by_reason
                    .entry("unknown outcome".to_string())
                    .or_default() += count;
            }
        }
    }

    fn finish(&mut self) {
        self.requests = self.matched + self.mismatched + self.errors + self.skipped;
        self.mismatch_rate = ratio(self.mismatched, self.compared());
        self.error_rate = ratio(self.errors, self.compared() + self.errors);
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    /// Observations the proxy had to drop because the pipeline was full: never compared.
    pub dropped: u64,
    /// Observations judged but lost before the store took them (a full disk), by reason;
    /// the counts above miss them. See docs/STORE.md, `losses`.
    pub lost: BTreeMap<String, u64>,
    /// Whose responses the clients got in the covered runs (`--answer-from`): `primary`,
    /// `secondary`, or `both` when the range spans a cutover.
    pub answered_by: String,
}

/// Latency percentiles of one leg, in milliseconds (within 5%).
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LegLatencies {
    pub primary: Option<Percentiles>,
    pub secondary: Option<Percentiles>,
}

/// A path that differed, with how many of the route's mismatches differed there.
#[derive(Clone, Debug, Serialize)]
pub struct PathShare {
    pub path: String,
    pub count: u64,
    /// count / mismatched of the route.
    pub share: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub count: u64,
}

/// One kept mismatch; `shadowdiff show <id> --db <database>` prints it in full.
#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub id: i64,
    pub database: String,
    pub run: i64,
    pub at: String,
    pub method: String,
    pub uri: String,
    pub primary_status: u16,
    pub secondary_status: u16,
    pub differences: Vec<DifferenceRow>,
    /// What `[[rewrite]]` changed in the secondary's copy of this request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrites: Vec<String>,
    /// Bodies and response headers as stored, for the HTML side-by-side view
    /// ([`super::diffview::DiffView::from_stored`] decodes them as the engine did).
    #[serde(skip)]
    pub primary_body: Vec<u8>,
    #[serde(skip)]
    pub primary_headers: Vec<(String, String)>,
    #[serde(skip)]
    pub secondary_body: Vec<u8>,
    #[serde(skip)]
    pub secondary_headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouteReport {
    pub route: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub latency: LegLatencies,
    pub top_differences: Vec<PathShare>,
    pub hidden: Vec<RuleCount>,
    pub examples: Vec<Example>,
}

/// Compared requests of one minute, over every route in the report.
#[derive(Clone, Debug, Serialize)]
pub struct TimelinePoint {
    pub minute: String,
    /// The minute's start in milliseconds since the epoch, for the chart's time axis.
    #[serde(skip)]
    pub at_ms: i64,
    pub matched: u64,
    pub mismatched: u64,
    pub mismatch_rate: f64,
}

/// One instance of a fleet (`serve --instance`): its runs and what its requests did, so a
/// replica that misbehaves stands out next to the others.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceReport {
    /// Empty for runs written before instances were recorded.
    pub instance: String,
    pub runs: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub database: String,
    pub id: i64,
    /// The instance that wrote the run (absent in stores from before instances).
    pub instance: Option<String>,
    pub mode: String,
    pub primary: String,
    pub secondary: String,
    pub config_digest: String,
    pub tool_version: String,
    /// `primary` or `secondary`: whose responses the clients got.
    pub answered_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub dropped: u64,
    /// Set when --max-db-size stopped keeping examples (counts continued).
    pub examples_stopped_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub routes: Vec<RouteReport>,
    pub timeline: Vec<TimelinePoint>,
    /// Per instance, busiest first.
    pub instances: Vec<InstanceReport>,
    pub runs: Vec<RunReport>,
    /// Configured rules that hid nothing in the covered runs: candidates for removal.
    pub unused_rules: Vec<String>,
    pub databases: Vec<String>,
    /// Things the reader should know about what the report did not see.
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateReport>,
    /// Rules `suggest` would propose, in short (text and HTML end with them).
    #[serde(skip)]
    pub suggestions: Option<crate::suggest::Summary>,
    /// When the covered runs started and ended (ms since the epoch; a run still going ends
    /// at its last counted minute): the chart's time axis is told in seconds from these,
    /// since the counts themselves are per minute.
    #[serde(skip)]
    pub span_ms: Option<(i64, i64)>,
    /// Per second, when the report covers less than [`SECONDS_UP_TO_MS`] and every route
    /// (a short run: a demo, a CI replay), for a chart in seconds; empty otherwise.
    #[serde(skip)]
    pub seconds: Vec<TimelinePoint>,
}

/// The flag that names a store as a report lists it: `--db PATH` for a file, `--store
/// URL` for a database (whose password the listing has masked).
pub fn store_flag(database: &str) -> &'static str {
    match database.contains("://") {
        true => "--store",
        false => "--db",
    }
}

/// RFC 3339 time of milliseconds since the epoch.
pub fn timestamp(ms: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[derive(Default)]
struct RouteAccumulator {
    counts: Counts,
    latency: BTreeMap<String, BTreeMap<i64, u64>>,
    paths: BTreeMap<String, u64>,
    hidden: BTreeMap<String, u64>,
    examples: Vec<Example>,
}

impl Report {
    /// Reads and merges every store into one report.
    pub fn build(readers: &[StoreReader], scope: &Scope) -> Result<Report, StoreError> {
        let wanted = |route: &str| scope.route.as_ref().is_none_or(|p| p.matches_key(route));
        let mut routes: BTreeMap<String, RouteAccumulator> = BTreeMap::new();
        let mut timeline: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut runs = Vec::new();
        let mut configured_rules = BTreeSet::new();
        let mut used_rules = BTreeSet::new();
        let mut notes = Vec::new();
        let mut dropped = 0;
        let mut lost: BTreeMap<String, u64> = BTreeMap::new();
        let mut instances: BTreeMap<String, (u64, Counts)> = BTreeMap::new();
        let mut span_ms: Option<(i64, i64)> = None;
        for reader in readers {
            for (instance, row) in reader.instance_counts(&scope.filter)? {
                if wanted(&row.route) {
                    instances.entry(instance).or_default().1.add(
                        row.outcome,
                        &row.reason,
                        row.count,
                    );
                }
            }
            for (reason, count) in reader.losses(&scope.filter)? {
                *lost.entry(reason).or_default() += count;
            }
            let database = reader.path().display().to_string();
            for row in reader.outcome_counts(&scope.filter)? {
                if wanted(&row.route) {
                    let route = routes.entry(row.route).or_default();
                    route.counts.add(row.outcome, &row.reason, row.count);
                }
            }
            for (minute, route, outcome, count) in reader.timeline(&scope.filter)? {
                if wanted(&route) {
                    let point = timeline.entry(minute).or_default();
                    if outcome == Some(OutcomeKind::Matched) {
                        point.0 += count;
                    } else {
                        point.1 += count;
                    }
                }
            }
            for (route, leg, bucket, count) in reader.latency_buckets(&scope.filter)? {
                if let Some(route) = routes.get_mut(&route) {
                    *route
                        .latency
                        .entry(leg)
                        .or_default()
                        .entry(bucket)
                        .or_default() += count;
                }
            }
            for (route, path, count) in reader.path_counts(&scope.filter)? {
                if let Some(route) = routes.get_mut(&route) {
                    *route.paths.entry(path).or_default() += count;
                }
            }
            for (route, state, reason, count) in reader.baseline_counts(&scope.filter)? {
                if let Some(route) = routes.get_mut(&route) {
                    route
                        .counts
                        .baseline
                        .get_or_insert_with(BaselineCounts::default)
                        .add(&state, &reason, count);
                }
            }
            for (route, rule, count) in reader.hidden_counts(&scope.filter)? {
                if count > 0 {
                    used_rules.insert(rule.clone());
                }
                if let Some(route) = routes.get_mut(&route) {
                    *route.hidden.entry(rule).or_default() += count;
                }
            }
            for (name, route) in routes.iter_mut() {
                if route.examples.len() >= scope.examples_per_route {
                    continue;
                }
                let room = scope.examples_per_route - route.examples.len();
                for row in reader.examples(name, &scope.filter, room)? {
                    route.examples.push(example(&database, row));
                }
            }
            for run in reader.runs(&scope.filter)? {
                let end = run.finished_ms.unwrap_or(i64::MIN);
                span_ms = Some(match span_ms {
                    None => (run.started_ms, end),
                    Some((start, last)) => (start.min(run.started_ms), last.max(end)),
                });
                configured_rules.extend(run.rules.iter().cloned());
                dropped += run.dropped;
                if let Some(ms) = run.examples_stopped_ms {
                    notes.push(format!(
                        "{database}: run {} reached --max-db-size at {}; later mismatches were counted but their examples not kept",
                        run.id,
                        timestamp(ms)
                    ));
                }
                if let Some(entry) = instances.get_mut(run.instance.as_deref().unwrap_or("")) {
                    entry.0 += 1;
                }
                runs.push(run_report(&database, run));
            }
        }
        let by_secondary: Vec<String> = runs
            .iter()
            .filter(|r| r.answered_by == "secondary")
            .map(|r| format!("{}#{}", r.database, r.id))
            .collect();
        let answered_by = match (by_secondary.len(), runs.len()) {
            (0, _) => "primary",
            (n, all) if n == all => "secondary",
            _ => "both",
        };
        if !by_secondary.is_empty() {
            notes.push(format!(
                "the secondary answered the clients (--answer-from secondary) in run(s) {}; the primary was the shadow there",
                by_secondary.join(", ")
            ));
        }
        if dropped > 0 {
            notes.push(format!(
                "{dropped} requests were dropped because the pipeline was full; they were not compared"
            ));
        }
        for (reason, count) in &lost {
            notes.push(format!(
                "{count} observations lost: {}; the store could not take them, so the counts above miss them",
                crate::store::LossReason::describe(reason)
            ));
        }
        let mut summary = Summary {
            dropped,
            lost,
            answered_by: answered_by.into(),
            ..Summary::default()
        };
        let routes: Vec<RouteReport> = routes
            .into_iter()
            .map(|(name, mut acc)| {
                acc.counts.finish();
                for (kind, count) in &acc.counts.errors_by_kind {
                    *summary
                        .counts
                        .errors_by_kind
                        .entry(kind.clone())
                        .or_default() += count;
                }
                for (reason, count) in &acc.counts.skipped_by_reason {
                    *summary
                        .counts
                        .skipped_by_reason
                        .entry(reason.clone())
                        .or_default() += count;
                }
                if let Some(baseline) = &acc.counts.baseline {
                    summary
                        .counts
                        .baseline
                        .get_or_insert_with(BaselineCounts::default)
                        .merge(baseline);
                }
                summary.counts.matched += acc.counts.matched;
                summary.counts.mismatched += acc.counts.mismatched;
                summary.counts.errors += acc.counts.errors;
                summary.counts.skipped += acc.counts.skipped;
                route_report(name, acc)
            })
            .collect();
        summary.counts.finish();
        let last_minute_end = timeline
            .keys()
            .next_back()
            .map(|m| m.saturating_add(1) * 60_000);
        let span_ms = span_ms.map(|(start, end)| match (end, last_minute_end) {
            (i64::MIN, Some(last)) => (start, last.max(start)),
            (i64::MIN, None) => (start, start),
            (end, _) => (start, end.max(start)),
        });
        let mut seconds: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let short = match (timeline.keys().next(), timeline.keys().next_back()) {
            (Some(first), Some(last)) => (last - first + 1) * 60_000 <= SECONDS_UP_TO_MS,
            _ => false,
        };
        if short && scope.route.is_none() {
            for reader in readers {
                for (second, matched, mismatched) in reader.seconds(&scope.filter)? {
                    let point = seconds.entry(second).or_default();
                    point.0 += matched;
                    point.1 += mismatched;
                }
            }
        }
        let seconds = seconds
            .into_iter()
            .map(|(second, (matched, mismatched))| TimelinePoint {
                minute: timestamp(second.div_euclid(60) * 60_000),
                at_ms: second.saturating_mul(1000),
                matched,
                mismatched,
                mismatch_rate: ratio(mismatched, matched + mismatched),
            })
            .collect();
        let timeline = timeline
            .into_iter()
            .map(|(minute, (matched, mismatched))| TimelinePoint {
                minute: timestamp(minute * 60_000),
                at_ms: minute.saturating_mul(60_000),
                matched,
                mismatched,
                mismatch_rate: ratio(mismatched, matched + mismatched),
            })
            .collect();
        let mut instances: Vec<InstanceReport> = instances
            .into_iter()
            .map(|(instance, (runs, mut counts))| {
                counts.finish();
                InstanceReport {
                    instance,
                    runs,
                    counts,
                }
            })
            .collect();
        instances.sort_by(|a, b| {
            b.counts
                .requests
                .cmp(&a.counts.requests)
                .then_with(|| a.instance.cmp(&b.instance))
        });
        Ok(Report {
            summary,
            routes,
            timeline,
            instances,
            runs,
            unused_rules: configured_rules.difference(&used_rules).cloned().collect(),
            databases: readers
                .iter()
                .map(|r| r.path().display().to_string())
                .collect(),
            notes,
            gate: None,
            suggestions: None,
            span_ms,
            seconds,
        })
    }
}

fn route_report(route: String, acc: RouteAccumulator) -> RouteReport {
    let percentiles = |leg: &str| {
        acc.latency.get(leg).map(|buckets| {
            let buckets: Vec<(i64, u64)> = buckets.iter().map(|(b, c)| (*b, *c)).collect();
            let pick = |q| latency::quantile(&buckets, q).unwrap_or(0.0);
            Percentiles {
                p50_ms: round(pick(0.50)),
                p95_ms: round(pick(0.95)),
                p99_ms: round(pick(0.99)),
                count: buckets.iter().map(|(_, c)| c).sum(),
            }
        })
    };
    let mut paths: Vec<(String, u64)> = acc.paths.into_iter().collect();
    paths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mismatched = acc.counts.mismatched;
    RouteReport {
        latency: LegLatencies {
            primary: percentiles("primary"),
            secondary: percentiles("secondary"),
        },
        top_differences: paths
            .into_iter()
            .take(TOP_PATHS)
            .map(|(path, count)| PathShare {
                path,
                count,
                share: ratio(count, mismatched),
            })
            .collect(),
        hidden: acc
            .hidden
            .into_iter()
            .map(|(rule, count)| RuleCount { rule, count })
            .collect(),
        examples: acc.examples,
        counts: acc.counts,
        route,
    }
}

/// Milliseconds to two decimals: the buckets are only 5% precise anyway.
fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn example(database: &str, row: MismatchRow) -> Example {
    Example {
        id: row.id,
        database: database.to_string(),
        run: row.run_id,
        at: timestamp(row.at_ms),
        method: row.method,
        uri: row.uri,
        primary_status: row.primary_status,
        secondary_status: row.secondary_status,
        differences: row.differences,
        rewrites: row.rewrites,
        primary_body: row.primary_body.unwrap_or_default(),
        primary_headers: row.primary_headers.unwrap_or_default(),
        secondary_body: row.secondary_body.unwrap_or_default(),
        secondary_headers: row.secondary_headers.unwrap_or_default(),
    }
}

fn run_report(database: &str, run: RunRow) -> RunReport {
    RunReport {
        database: database.to_string(),
        id: run.id,
        instance: run.instance,
        mode: run.mode,
        primary: run.primary,
        secondary: run.secondary,
        config_digest: run.config_digest,
        tool_version: run.tool_version,
        answered_by: run.answered_by,
        started_at: timestamp(run.started_ms),
        finished_at: run.finished_ms.map(timestamp),
        dropped: run.dropped,
        examples_stopped_at: run.examples_stopped_ms.map(timestamp),
    }
}

/// The gate's verdict, part of the report (`gate` in JSON) once thresholds were given;
/// [`super::gate::evaluate`] makes it.
/// One broken threshold.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GateFailure {
    /// The failing route; `None` for a failure of the whole report (too few comparisons).
    pub route: Option<String>,
    /// The flag whose threshold was broken.
    pub threshold: String,
    pub limit: f64,
    pub actual: f64,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct GateReport {
    pub passed: bool,
    pub failures: Vec<GateFailure>,
}
