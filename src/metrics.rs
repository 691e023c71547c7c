//! The process's Prometheus metrics, in a registry of our own (not the crate's global one),
//! so that two proxies in one test process, or an embedding program, never mix counts.
//!
//! Per-request counting happens on the compare thread from the judged [`Record`], never on
//! the client's path: the hot path only touches atomics it already had (permits, the drop
//! counter), and those are read into gauges and counters when `/metrics` is scraped.
//! The route label is bounded: the route key is already templated (`GET /users/{id}`), and
//! past `max_route_labels` distinct routes the rest are counted as [`OVERFLOW_ROUTE`].

use crate::exchange::SkipReason;
use crate::store::{Outcome, OutcomeKind, Record};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// The route label of every route past the configured number of distinct ones.
pub const OVERFLOW_ROUTE: &str = "other";

/// Latency buckets from 1 ms to 30 s: upstreams of web services live in this range.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Values owned elsewhere (atomics on the hot path, the store's queue), read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    pub inflight_shadows: u64,
    /// Bytes held for shadows under `--max-shadow-memory`.
    pub shadow_memory_bytes: u64,
    pub store_queue_depth: u64,
    pub store_dropped: u64,
    pub store_write_errors: u64,
    /// Observations the store writer gave up on, per [`crate::store::LossReason::ALL`].
    pub store_lost: [u64; 3],
    /// Whether the store's database is reachable (always, for an SQLite file).
    pub store_connected: bool,
    pub breaker_open: bool,
    /// The file's `sample` and the runtime override of it (`/shadow/sample`), if any.
    pub sample_file: f64,
    pub sample_override: Option<f64>,
    pub paused: bool,
    pub admin_unauthorized: u64,
}

/// Counters of one route label value, resolved once so counting is a plain atomic add.
struct RouteCounters {
    outcomes: [IntCounter; 4],
    differences: IntCounter,
}

/// Every metric shadowdiff exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    differences: IntCounterVec,
    primary_duration: Histogram,
    secondary_duration: Histogram,
    skipped: Vec<(SkipReason, IntCounter)>,
    inflight_shadows: IntGauge,
    shadow_memory_bytes: IntGauge,
    store_queue_depth: IntGauge,
    store_dropped: IntCounter,
    store_write_errors: IntCounter,
    store_lost: Vec<IntCounter>,
    store_connected: IntGauge,
    breaker_open: IntGauge,
    sample_rate: prometheus::GaugeVec,
    paused: IntGauge,
    admin_unauthorized: IntCounter,
    reloads: IntCounterVec,
    /// Comparisons by how the baseline served them: `used`, `unusable`.
    baseline: [IntCounter; 2],
    max_route_labels: usize,
    connections: ConnectionMetrics,
    /// Touched by the compare thread only (and scrapes never), so it is never contended.
    routes: Mutex<HashMap<String, RouteCounters>>,
    /// Serializes scrapes, which turn externally owned totals into counter increments.
    scrape: Mutex<()>,
}

impl Metrics {
    pub fn new(max_route_labels: usize) -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "shadowdiff_requests_total",
                "Requests seen by the proxy, by route and outcome of the shadow.",
            ),
            &["route", "outcome"],
        )
        .expect("valid metric");
        let differences = IntCounterVec::new(
            Opts::new(
                "shadowdiff_differences_total",
                "Differences found between primary and secondary responses, by route.",
            ),
            &["route"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "shadowdiff_upstream_duration_seconds",
                "Time from sending a shadowed request to the last body byte, by upstream.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["leg"],
        )
        .expect("valid metric");
        let skipped_vec = IntCounterVec::new(
            Opts::new(
                "shadowdiff_shadow_skipped_total",
                "Requests not shadowed, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let shadow_memory_bytes = IntGauge::new(
            "shadowdiff_shadow_memory_bytes",
            "Bytes held for shadows (bodies, captured responses, queued exchanges) under --max-shadow-memory.",
        )
        .expect("valid metric");
        let inflight_shadows = IntGauge::new(
            "shadowdiff_inflight_shadows",
            "Shadow requests in flight to the secondary.",
        )
        .expect("valid metric");
        let store_queue_depth = IntGauge::new(
            "shadowdiff_store_queue_depth",
            "Records waiting for the store writer.",
        )
        .expect("valid metric");
        let store_dropped = IntCounter::new(
            "shadowdiff_store_dropped_total",
            "Observations dropped because the compare and store queue was full.",
        )
        .expect("valid metric");
        let store_write_errors = IntCounter::new(
            "shadowdiff_store_write_errors_total",
            "Store batches that could not be written.",
        )
        .expect("valid metric");
        let store_lost_vec = IntCounterVec::new(
            Opts::new(
                "shadowdiff_store_lost_total",
                "Observations lost after the store writer stopped retrying, by reason (disk_full, write_error, store_unavailable).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let store_connected = IntGauge::new(
            "shadowdiff_store_connected",
            "1 while the store writer's database is reachable (always 1 for an SQLite file).",
        )
        .expect("valid metric");
        let sample_rate = prometheus::GaugeVec::new(
            Opts::new(
                "shadowdiff_shadow_sample_rate",
                "Share of requests shadowed: the file's `sample` (source=file) and the runtime override from /shadow/sample (source=override; -1 when none).",
            ),
            &["source"],
        )
        .expect("valid metric");
        let paused = IntGauge::new(
            "shadowdiff_shadow_paused",
            "1 while shadowing is paused through /shadow/pause.",
        )
        .expect("valid metric");
        let admin_unauthorized = IntCounter::new(
            "shadowdiff_admin_unauthorized_total",
            "Requests to the admin listener's /shadow endpoints refused for a missing or wrong bearer token.",
        )
        .expect("valid metric");
        let breaker_open = IntGauge::new(
            "shadowdiff_breaker_open",
            "1 while the circuit breaker on the secondary is open (shadowing paused).",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "shadowdiff_config_reloads_total",
                "SIGHUP reloads of compare rules and sampling, by result (applied, rejected).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let baseline_vec = IntCounterVec::new(
            Opts::new(
                "shadowdiff_baseline_comparisons_total",
                "Comparisons with a baseline, by whether its answer told the noise (used) or not (unusable).",
            ),
            &["state"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(baseline_vec.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(requests.clone()),
            Box::new(differences.clone()),
            Box::new(durations.clone()),
            Box::new(skipped_vec.clone()),
            Box::new(inflight_shadows.clone()),
            Box::new(shadow_memory_bytes.clone()),
            Box::new(store_queue_depth.clone()),
            Box::new(store_dropped.clone()),
            Box::new(store_write_errors.clone()),
            Box::new(store_lost_vec.clone()),
            Box::new(store_connected.clone()),
            Box::new(sample_rate.clone()),
            Box::new(paused.clone()),
            Box::new(admin_unauthorized.clone()),
            Box::new(breaker_open.clone()),
            Box::new(reloads.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // Every series that can exist is created now, so a scrape shows zeros rather than
        // gaps and `rate()` has a starting point.
        let skipped = SkipReason::ALL
            .into_iter()
            .map(|reason| (reason, skipped_vec.with_label_values(&[reason.as_str()])))
            .collect();
        for result in ["applied", "rejected"] {
            reloads.with_label_values(&[result]);
        }
        let connections = ConnectionMetrics::register(&registry);
        let store_lost = crate::store::LossReason::ALL
            .into_iter()
            .map(|reason| store_lost_vec.with_label_values(&[reason.as_str()]))
            .collect();
        let baseline = ["used", "unusable"].map(|state| baseline_vec.with_label_values(&[state]));
        Metrics {
            baseline,
            connections,
            primary_duration: durations.with_label_values(&["primary"]),
            secondary_duration: durations.with_label_values(&["secondary"]),
            registry,
            requests,
            differences,
            skipped,
            inflight_shadows,
            shadow_memory_bytes,
            store_queue_depth,
            store_dropped,
            store_write_errors,
            store_lost,
            store_connected,
            breaker_open,
            sample_rate,
            paused,
            admin_unauthorized,
            reloads,
            max_route_labels,
            routes: Mutex::new(HashMap::new()),
            scrape: Mutex::new(()),
        }
    }

    /// Counts one judged request. Called by the compare thread.
    pub fn observe(&self, record: &Record) {
        if let Outcome::Skipped(reason) = record.outcome {
            if let Some((_, counter)) = self.skipped.iter().find(|(r, _)| *r == reason) {
                counter.inc_by(record.count);
            }
        }
        if let Some(used) = record.baseline {
            let state = usize::from(!matches!(used, crate::store::BaselineUse::Used));
            self.baseline[state].inc_by(record.count);
        }
        let outcome = record.outcome.kind().index();
        let differences = record
            .mismatch
            .as_ref()
            .map_or(0, |m| m.differences.len() as u64);
        {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            // One lookup for a route already seen, the case of nearly every request.
            if let Some(counters) = routes.get(record.route.as_str()) {
                counters.outcomes[outcome].inc_by(record.count);
                counters.differences.inc_by(differences);
            } else {
                let label = if routes.len() < self.max_route_labels {
                    record.route.as_str()
                } else {
                    OVERFLOW_ROUTE
                };
                if !routes.contains_key(label) {
                    let counters = self.route_counters(label);
                    routes.insert(label.to_string(), counters);
                }
                let counters = &routes[label];
                counters.outcomes[outcome].inc_by(record.count);
                counters.differences.inc_by(differences);
            }
        }
        if !matches!(record.outcome, Outcome::Skipped(_)) {
            if let Some(latency) = record.primary_latency {
                self.primary_duration.observe(latency.as_secs_f64());
            }
            if let Some(latency) = record.secondary_latency {
                self.secondary_duration.observe(latency.as_secs_f64());
            }
        }
    }

    fn route_counters(&self, route: &str) -> RouteCounters {
        RouteCounters {
            outcomes: OutcomeKind::ALL
                .map(|outcome| self.requests.with_label_values(&[route, outcome.as_str()])),
            differences: self.differences.with_label_values(&[route]),
        }
    }

    /// The listener's counters, which it updates itself.
    pub fn connections(&self) -> &ConnectionMetrics {
        &self.connections
    }

    /// Counts a SIGHUP reload, applied or rejected.
    pub fn count_reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.with_label_values(&[result]).inc();
    }

    /// Reloads counted so far: (applied, rejected).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads.with_label_values(&["applied"]).get(),
            self.reloads.with_label_values(&["rejected"]).get(),
        )
    }

    /// The text exposition format, with values owned elsewhere brought up to date first.
    pub fn render(&self, now: Snapshot) -> String {
        {
            let _one_scrape_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
            self.inflight_shadows
                .set(i64::try_from(now.inflight_shadows).unwrap_or(i64::MAX));
            self.shadow_memory_bytes
                .set(i64::try_from(now.shadow_memory_bytes).unwrap_or(i64::MAX));
            self.store_queue_depth
                .set(i64::try_from(now.store_queue_depth).unwrap_or(i64::MAX));
            self.breaker_open.set(i64::from(now.breaker_open));
            self.store_connected.set(i64::from(now.store_connected));
            self.sample_rate
                .with_label_values(&["file"])
                .set(now.sample_file);
            self.sample_rate
                .with_label_values(&["override"])
                .set(now.sample_override.unwrap_or(-1.0));
            self.paused.set(i64::from(now.paused));
            catch_up(&self.admin_unauthorized, now.admin_unauthorized);
            catch_up(&self.store_dropped, now.store_dropped);
            catch_up(&self.store_write_errors, now.store_write_errors);
            for (counter, total) in self.store_lost.iter().zip(now.store_lost) {
                catch_up(counter, total);
            }
        }
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("text encoding of gathered metrics does not fail");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

/// The client listener's own counts. Unlike per-request outcomes these are counted where
/// they happen (one atomic add per connection, never per request): a connection closed for
/// a slow head never reaches the compare thread.
#[derive(Clone)]
pub struct ConnectionMetrics {
    /// Client connections open now.
    pub open: IntGauge,
    /// Times accepting paused because `--max-connections` were open.
    pub limit_waits: IntCounter,
    /// Connections closed because the request head (or TLS handshake, or HTTP/2 preface)
    /// did not arrive within `--header-read-timeout`.
    pub header_timeouts: IntCounter,
}

impl ConnectionMetrics {
    fn register(registry: &Registry) -> ConnectionMetrics {
        let metrics = ConnectionMetrics {
            open: IntGauge::new(
                "shadowdiff_client_connections",
                "Client connections open now.",
            )
            .expect("valid metric"),
            limit_waits: IntCounter::new(
                "shadowdiff_client_connection_limit_waits_total",
                "Times accepting paused because --max-connections client connections were open.",
            )
            .expect("valid metric"),
            header_timeouts: IntCounter::new(
                "shadowdiff_client_header_timeouts_total",
                "Client connections closed because no complete request head arrived within --header-read-timeout.",
            )
            .expect("valid metric"),
        };
        for collector in [
            Box::new(metrics.open.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.limit_waits.clone()),
            Box::new(metrics.header_timeouts.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }
}

/// Counters whose source of truth is an atomic elsewhere advance to its value.
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn record(route: &str, outcome: Outcome) -> Record {
        Record::new(SystemTime::now(), route.into(), outcome)
    }

    #[test]
    fn routes_past_the_limit_share_one_label() {
        let metrics = Metrics::new(2);
        for route in ["GET /a", "GET /b", "GET /c", "GET /d", "GET /a"] {
            metrics.observe(&record(route, Outcome::Matched));
        }
        let text = metrics.render(Snapshot::default());
        assert!(text.contains(r#"shadowdiff_requests_total{outcome="matched",route="GET /a"} 2"#));
        assert!(text.contains(r#"shadowdiff_requests_total{outcome="matched",route="other"} 2"#));
        assert!(!text.contains("GET /c"), "{text}");
    }

    #[test]
    fn external_totals_only_move_forward() {
        let metrics = Metrics::new(10);
        let mut now = Snapshot {
            store_dropped: 5,
            ..Snapshot::default()
        };
        assert!(metrics
            .render(now)
            .contains("shadowdiff_store_dropped_total 5"));
        now.store_dropped = 7;
        assert!(metrics
            .render(now)
            .contains("shadowdiff_store_dropped_total 7"));
    }
}
