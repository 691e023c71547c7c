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

/// Thresholds, validated.
#[derive(Clone, Debug, Default)]
pub struct Thresholds {
    pub max_mismatch_rate: Option<f64>,
    pub route_max: Vec<RouteLimit>,
    pub max_error_rate: Option<f64>,
    pub min_compared: Option<u64>,
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
        })
    }

    pub fn is_empty(&self) -> bool {
        self.max_mismatch_rate.is_none()
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
