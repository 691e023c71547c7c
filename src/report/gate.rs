//! The pass/fail verdict CI acts on: thresholds checked against a report, per route, with
//! every failure naming the route and the threshold it broke.
//!
//! A rate exactly at its threshold passes: `--max-mismatch-rate 0.01` reads as "at most 1%".
//!
//! The error rate counts errors of a leg only. A request that was skipped, with whatever
//! reason, is not in it: a client that stopped reading (`client_aborted`) or a shadow left
//! out for the memory budget (`overload`) says nothing about either upstream.

use super::model::{GateFailure, GateReport, Report};

/// A threshold flag that makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct ThresholdError {
    pub flag: &'static str,
    pub reason: String,
}

use crate::config::parse_rate;

/// A per-route override: `PATTERN=RATE`, where PATTERN is a route pattern
/// ([`crate::route::RoutePattern`]) over route keys.
#[derive(Clone, Debug)]
pub struct RouteLimit {
    pub pattern: crate::route::RoutePattern,
    pub rate: f64,
}

/// A latency percentile a ratio limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantile {
    P50,
    P95,
    P99,
}

impl Quantile {
    fn parse(text: &str) -> Result<Quantile, String> {
        match text.trim() {
            "p50" => Ok(Quantile::P50),
            "p95" => Ok(Quantile::P95),
            "p99" => Ok(Quantile::P99),
            other => Err(format!("{other:?} is not p50, p95 or p99")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Quantile::P50 => "p50",
            Quantile::P95 => "p95",
            Quantile::P99 => "p99",
        }
    }

    fn of(self, p: &super::model::Percentiles) -> f64 {
        match self {
            Quantile::P50 => p.p50_ms,
            Quantile::P95 => p.p95_ms,
            Quantile::P99 => p.p99_ms,
        }
    }
}

/// How much slower than the primary the secondary may be at a percentile.
#[derive(Clone, Debug)]
pub struct LatencyLimit {
    /// `None` for `--max-latency-ratio`; the route pattern of `--route-max-latency-ratio`.
    pub pattern: Option<crate::route::RoutePattern>,
    pub quantile: Quantile,
    pub ratio: f64,
}

/// Thresholds, validated.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    pub max_mismatch_rate: Option<f64>,
    pub route_max: Vec<RouteLimit>,
    pub max_error_rate: Option<f64>,
    pub min_compared: Option<u64>,
    /// `--max-latency-ratio` then `--route-max-latency-ratio`, as given.
    pub latency: Vec<LatencyLimit>,
}

/// `QUANTILE=RATIO` (`p99=1.5`) or, with `:` as the separator, `p99:2`.
fn quantile_ratio(text: &str, separator: char) -> Result<(Quantile, f64), String> {
    let (quantile, ratio) = text.split_once(separator).ok_or_else(|| {
        format!("{text:?} is not p50{separator}RATIO, p95{separator}RATIO or p99{separator}RATIO")
    })?;
    let quantile = Quantile::parse(quantile)?;
    let ratio: f64 = ratio
        .trim()
        .parse()
        .map_err(|_| format!("{ratio:?} is not a number"))?;
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(format!("{ratio} is not a ratio above 0"));
    }
    Ok((quantile, ratio))
}

impl Thresholds {
    /// `--max-latency-ratio p99=1.5` and `--route-max-latency-ratio 'GET /search/*=p99:2'`.
    pub fn with_latency(
        mut self,
        global: &[String],
        per_route: &[String],
    ) -> Result<Thresholds, ThresholdError> {
        for spec in global {
            let (quantile, ratio) = quantile_ratio(spec, '=').map_err(|reason| ThresholdError {
                flag: "--max-latency-ratio",
                reason,
            })?;
            self.latency.push(LatencyLimit {
                pattern: None,
                quantile,
                ratio,
            });
        }
        for spec in per_route {
            let error = |reason: String| ThresholdError {
                flag: "--route-max-latency-ratio",
                reason,
            };
            let (pattern, limit) = spec
                .rsplit_once('=')
                .ok_or_else(|| error(format!("{spec:?} is not PATTERN=p99:RATIO")))?;
            let pattern = crate::route::RoutePattern::parse(pattern)
                .map_err(|e| error(format!("{pattern:?}: {e}")))?;
            let (quantile, ratio) = quantile_ratio(limit, ':').map_err(error)?;
            self.latency.push(LatencyLimit {
                pattern: Some(pattern),
                quantile,
                ratio,
            });
        }
        Ok(self)
    }

    /// The latency limits of a route: the first matching `--route-max-latency-ratio`
    /// replaces the global limit of its percentile; the other global ones still apply.
    fn latency_limits(&self, route: &str) -> Vec<(&'static str, Quantile, f64)> {
        let own = self
            .latency
            .iter()
            .find(|l| l.pattern.as_ref().is_some_and(|p| p.matches_key(route)));
        let mut limits: Vec<(&'static str, Quantile, f64)> = self
            .latency
            .iter()
            .filter(|l| l.pattern.is_none())
            .filter(|l| own.is_none_or(|o| o.quantile != l.quantile))
            .map(|l| ("--max-latency-ratio", l.quantile, l.ratio))
            .collect();
        if let Some(own) = own {
            limits.push(("--route-max-latency-ratio", own.quantile, own.ratio));
        }
        limits
    }
}

impl Thresholds {
    /// The thresholds from their flags' texts: rates as fractions or percentages,
    /// `--route-max` as `PATTERN=RATE`.
    pub fn parse(
        max_mismatch_rate: Option<&str>,
        route_max: &[String],
        max_error_rate: Option<&str>,
        min_compared: Option<u64>,
    ) -> Result<Thresholds, ThresholdError> {
        let rate = |flag: &'static str, value: Option<&str>| {
            value
                .map(parse_rate)
                .transpose()
                .map_err(|reason| ThresholdError { flag, reason })
        };
        let specs = route_max;
        let mut route_max = Vec::new();
        for spec in specs {
            let error = |reason: String| ThresholdError {
                flag: "--route-max",
                reason,
            };
            let (pattern, value) = spec
                .rsplit_once('=')
                .ok_or_else(|| error(format!("{spec:?} is not PATTERN=RATE")))?;
            let pattern = crate::route::RoutePattern::parse(pattern)
                .map_err(|e| error(format!("{pattern:?}: {e}")))?;
            route_max.push(RouteLimit {
                pattern,
                rate: parse_rate(value).map_err(error)?,
            });
        }
        Ok(Thresholds {
            max_mismatch_rate: rate("--max-mismatch-rate", max_mismatch_rate)?,
            route_max,
            max_error_rate: rate("--max-error-rate", max_error_rate)?,
            min_compared,
            latency: Vec::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.latency.is_empty()
            && self.max_mismatch_rate.is_none()
            && self.route_max.is_empty()
            && self.max_error_rate.is_none()
            && self.min_compared.is_none()
    }

    /// The mismatch-rate limit of a route: its first matching `--route-max`, else the
    /// global one.
    pub fn mismatch_limit(&self, route: &str) -> Option<f64> {
        self.route_max
            .iter()
            .find(|limit| limit.pattern.matches_key(route))
            .map(|limit| limit.rate)
            .or(self.max_mismatch_rate)
    }
}

fn percent(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// Checks every threshold against the report.
pub fn evaluate(report: &Report, thresholds: &Thresholds) -> GateReport {
    let mut failures = Vec::new();
    if let Some(min) = thresholds.min_compared {
        let compared = report.summary.counts.compared();
        if compared < min {
            failures.push(GateFailure {
                route: None,
                threshold: "--min-compared".into(),
                limit: min as f64,
                actual: compared as f64,
                message: format!(
                    "only {compared} requests were compared, fewer than --min-compared {min}: not enough evidence"
                ),
            });
        }
    }
    for route in &report.routes {
        if let Some(limit) = thresholds.mismatch_limit(&route.route) {
            let actual = route.counts.mismatch_rate;
            if actual > limit {
                let flag = if thresholds
                    .route_max
                    .iter()
                    .any(|l| l.pattern.matches_key(&route.route))
                {
                    "--route-max"
                } else {
                    "--max-mismatch-rate"
                };
                failures.push(GateFailure {
                    route: Some(route.route.clone()),
                    threshold: flag.into(),
                    limit,
                    actual,
                    message: format!(
                        "{}: mismatch rate {} ({} of {}) is above {flag} {}",
                        route.route,
                        percent(actual),
                        route.counts.mismatched,
                        route.counts.compared(),
                        percent(limit)
                    ),
                });
            }
        }
        if let (Some(primary), Some(secondary)) = (&route.latency.primary, &route.latency.secondary)
        {
            for (flag, quantile, ratio) in thresholds.latency_limits(&route.route) {
                let (p, s) = (quantile.of(primary), quantile.of(secondary));
                // A primary at 0 ms (under the histogram's first bucket) gives no ratio.
                if p <= 0.0 {
                    continue;
                }
                let actual = s / p;
                if actual > ratio {
                    failures.push(GateFailure {
                        route: Some(route.route.clone()),
                        threshold: flag.into(),
                        limit: ratio,
                        actual,
                        message: format!(
                            "{}: the secondary's {q} {s:.1} ms is {actual:.2}x the primary's {p:.1} ms, above {flag} {q}={ratio}",
                            route.route,
                            q = quantile.as_str(),
                        ),
                    });
                }
            }
        }
        if let Some(limit) = thresholds.max_error_rate {
            let actual = route.counts.error_rate;
            if actual > limit {
                failures.push(GateFailure {
                    route: Some(route.route.clone()),
                    threshold: "--max-error-rate".into(),
                    limit,
                    actual,
                    message: format!(
                        "{}: error rate {} ({} of {}) is above --max-error-rate {}",
                        route.route,
                        percent(actual),
                        route.counts.errors,
                        route.counts.compared() + route.counts.errors,
                        percent(limit)
                    ),
                });
            }
        }
    }
    GateReport {
        passed: failures.is_empty(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_accept_fractions_and_percentages() {
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert_eq!(parse_rate("5%"), Ok(0.05));
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("lots").is_err());
    }
}
