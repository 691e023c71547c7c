//! Settings of the baseline leg: a second instance of the primary's version (or the
//! primary itself, `self`), whose differences from the primary are noise, and how that
//! noise is remembered per route.

use super::layer::Merge;
use super::leg::LegConfig;
use super::value::{Kind, COUNT, RATE};
use super::ConfigError;

/// Where the baseline's copies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineTarget {
    /// Another instance running the primary's version: it gets the same requests as the
    /// secondary, under the same admission, timeout and connect settings.
    Instance,
    /// The primary itself (`--baseline self`), for teams that cannot run a second
    /// instance: safe-method requests only, through a pool and an in-flight cap of their
    /// own, never the clients' connections.
    Primary { max_inflight: usize },
}

/// When the baseline's differences from the primary are noise beyond the request they
/// were seen on (Diffy's absolute and relative thresholds, per route).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseConfig {
    /// Comparisons per route the memory spans.
    pub window: usize,
    /// Least share of a route's comparisons in which primary and baseline differed at a
    /// path for it to be noise on the route.
    pub threshold: f64,
    /// Largest relative gap, |s - b| / ((s + b) / 2), between the primary-vs-secondary
    /// and the primary-vs-baseline rates at that path for the path to be noise.
    pub relative: f64,
}

impl Default for NoiseConfig {
    fn default() -> NoiseConfig {
        NoiseConfig {
            window: 200,
            threshold: 0.01,
            relative: 0.2,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BaselineConfig {
    /// The leg's URL and connect settings (the primary's for `self`), with the
    /// secondary's timeout and Host rule.
    pub leg: LegConfig,
    pub target: BaselineTarget,
    pub noise: NoiseConfig,
}

/// A baseline URL, or `self`.
const BASELINE: Kind<Option<url::Url>> = Kind {
    parse: |text| match text.trim() {
        "self" => Ok(None),
        url => super::value::parse_upstream(url).map(Some),
    },
    spell: |target| match target {
        None => super::value::quoted("self"),
        Some(url) => (super::value::UPSTREAM.spell)(url),
    },
};

/// `--baseline self`'s copies in flight at once: enough to keep a sampled share of the
/// reads, few enough that the primary never sees more than that many extra requests.
const SELF_MAX_INFLIGHT: usize = 32;

impl BaselineConfig {
    /// `None` when no baseline is configured; the noise settings then mean nothing and
    /// are left out of what `config check` prints. `secondary` lends its timeout,
    /// connect settings and Host rule to a baseline instance; `self` keeps the primary's
    /// URL and connect settings.
    pub(super) fn merge(
        m: &mut Merge<'_>,
        primary: &LegConfig,
        secondary: &LegConfig,
    ) -> Result<Option<BaselineConfig>, ConfigError> {
        let target = m.optional("baseline", &BASELINE)?;
        let d = NoiseConfig::default();
        let window = m.or("noise-window", &COUNT, d.window)?;
        if window == 0 {
            return Err(m.invalid("noise-window", "must be at least 1".into()));
        }
        let noise = NoiseConfig {
            window,
            threshold: m.or("noise-threshold", &RATE, d.threshold)?,
            relative: m.or("noise-relative", &RATE, d.relative)?,
        };
        let max_inflight = m.or("baseline-max-inflight", &COUNT, SELF_MAX_INFLIGHT)?;
        if max_inflight == 0 {
            return Err(m.invalid("baseline-max-inflight", "must be at least 1".into()));
        }
        let Some(target) = target else {
            for key in [
                "noise-window",
                "noise-threshold",
                "noise-relative",
                "baseline-max-inflight",
            ] {
                m.hide(key);
            }
            return Ok(None);
        };
        let (leg, target) = match target {
            None => (
                LegConfig {
                    url: primary.url.clone(),
                    connect: primary.connect.clone(),
                    ..secondary.clone()
                },
                BaselineTarget::Primary { max_inflight },
            ),
            Some(url) => {
                m.hide("baseline-max-inflight");
                (
                    LegConfig {
                        url,
                        ..secondary.clone()
                    },
                    BaselineTarget::Instance,
                )
            }
        };
        Ok(Some(BaselineConfig { leg, target, noise }))
    }
}
