//! Settings of the shadow: which requests get one (sampling, writes), what one may hold
//! (body size, requests in flight, memory) and when shadowing pauses (the breaker).

use super::layer::Merge;
use super::value::{SampleKey, COUNT, COUNT32, DURATION, RATE, SAMPLE_KEY, SIZE, SWITCH};
use super::ConfigError;
use std::time::Duration;

/// More shadows in flight than this would not fit the permit counter, and no secondary
/// wants them anyway.
pub const MAX_INFLIGHT_LIMIT: usize = 1_000_000;

/// The longest the breaker pauses shadowing before probing again.
pub const BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq)]
pub struct ShadowConfig {
    /// Share of requests shadowed, 0 to 1.
    pub sample: f64,
    pub sample_by: Option<SampleKey>,
    /// Unsafe methods are shadowed too.
    pub shadow_writes: bool,
    /// Largest body (request, either response) shadowed and compared.
    pub max_body: usize,
    pub max_inflight: usize,
    /// Bytes all shadows together may buffer (request bodies, both responses, exchanges
    /// waiting for comparison); beyond it requests are skipped as `overload`.
    pub max_shadow_memory: usize,
    pub breaker: BreakerConfig,
    /// The header shadow, baseline and replay requests carry (`x-shadowdiff` by default),
    /// which a secondary can key side-effect suppression on, and which marks a request
    /// arriving with it as a loop.
    pub marker: http::HeaderName,
    /// Which routes are shadowed, and per route the share and whether writes go too.
    pub select: Selection,
}

/// `[shadow] include`/`exclude` and the `sample`/`shadow-writes` of `[[route]]` tables.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub include: Vec<crate::route::RoutePattern>,
    pub exclude: Vec<crate::route::RoutePattern>,
    /// Routes with a setting of their own, in file order: the first that matches decides.
    pub routes: Vec<RouteShadow>,
    /// The whole selection as written, for equality and `config check`.
    canonical: String,
    /// `[shadow]` as written, for `config check`.
    section: crate::config::layer::ShadowSection,
}

#[derive(Clone, Debug)]
pub struct RouteShadow {
    pub pattern: crate::route::RoutePattern,
    pub sample: Option<f64>,
    pub shadow_writes: Option<bool>,
}

impl PartialEq for Selection {
    fn eq(&self, other: &Selection) -> bool {
        self.canonical == other.canonical
    }
}

impl Selection {
    /// `[shadow]` as a config file spells it, for `config check`; `None` without lists.
    /// The routes' own `sample` and `shadow-writes` stay in their `[[route]]` tables.
    pub fn toml_section(&self) -> Option<String> {
        let s = &self.section;
        if s.include.is_empty() && s.exclude.is_empty() {
            return None;
        }
        let list = |items: &[String]| {
            toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect()).to_string()
        };
        Some(format!(
            "[shadow]\ninclude = {}\nexclude = {}",
            list(&s.include),
            list(&s.exclude)
        ))
    }

    /// Whether `[shadow]` keeps this request from the secondary: `exclude` names it
    /// (exclude wins), or an `include` list does not.
    pub fn excludes(&self, method: &http::Method, path: &str) -> bool {
        self.exclude.iter().any(|p| p.matches(method, path))
            || (!self.include.is_empty() && !self.include.iter().any(|p| p.matches(method, path)))
    }

    /// The first `[[route]]` with a shadow setting of its own that matches.
    pub fn route_for(&self, method: &http::Method, path: &str) -> Option<&RouteShadow> {
        self.routes.iter().find(|r| r.pattern.matches(method, path))
    }

    /// Whether a write may be sent: the matching route's `shadow-writes`, else `global`.
    pub fn writes_for(&self, method: &http::Method, path: &str, global: bool) -> bool {
        self.route_for(method, path)
            .and_then(|r| r.shadow_writes)
            .unwrap_or(global)
    }

    fn read(m: &mut Merge<'_>) -> Result<Selection, ConfigError> {
        let file = m.file();
        let bad = |what: String, reason: String| ConfigError::Invalid {
            field: what,
            reason,
        };
        let patterns = |key: &str, list: &[String]| {
            list.iter()
                .map(|text| {
                    crate::route::RoutePattern::parse(text).map_err(|reason| {
                        bad(format!("[shadow] {key}"), format!("{text:?}: {reason}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let include = patterns("include", &file.shadow.include)?;
        let exclude = patterns("exclude", &file.shadow.exclude)?;
        let mut routes = Vec::new();
        let mut canonical = format!(
            "include={:?} exclude={:?}",
            file.shadow.include, file.shadow.exclude
        );
        for route in &file.route {
            if route.sample.is_none() && route.shadow_writes.is_none() {
                continue;
            }
            let text = route.pattern.get_ref();
            let field = || format!("[[route]] {text:?}");
            let pattern = crate::route::RoutePattern::parse(text).map_err(|r| bad(field(), r))?;
            let sample = match &route.sample {
                None => None,
                Some(value) => {
                    let spelled = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::Integer(n) => n.to_string(),
                        other => other.to_string(),
                    };
                    Some(
                        (RATE.parse)(&spelled)
                            .map_err(|r| bad(format!("{} sample", field()), r))?,
                    )
                }
            };
            canonical.push_str(&format!(
                " route={text:?} sample={sample:?} writes={:?}",
                route.shadow_writes
            ));
            routes.push(RouteShadow {
                pattern,
                sample,
                shadow_writes: route.shadow_writes,
            });
        }
        if !include.is_empty() || !exclude.is_empty() || !routes.is_empty() {
            m.resolve("shadow-selection", super::value::quoted(&canonical));
        }
        Ok(Selection {
            include,
            exclude,
            routes,
            canonical,
            section: file.shadow.clone(),
        })
    }
}

/// When consecutive secondary failures pause shadowing, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 never opens it.
    pub threshold: u32,
    /// The first pause; it doubles up to [`BREAKER_MAX_COOLDOWN`].
    pub cooldown: Duration,
}

impl Default for ShadowConfig {
    fn default() -> ShadowConfig {
        ShadowConfig {
            sample: 1.0,
            sample_by: None,
            shadow_writes: false,
            max_body: 1024 * 1024,
            max_inflight: 1024,
            max_shadow_memory: crate::budget::DEFAULT_MAX_SHADOW_MEMORY,
            breaker: BreakerConfig {
                threshold: 20,
                cooldown: Duration::from_secs(10),
            },
            marker: crate::upstream::SHADOW_HEADER,
            select: Selection::default(),
        }
    }
}

impl ShadowConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<ShadowConfig, ConfigError> {
        let d = ShadowConfig::default();
        let sample = m.or("sample", &RATE, d.sample)?;
        let sample_by = m.optional("sample-by", &SAMPLE_KEY)?;
        let shadow_writes = m.or("shadow-writes", &SWITCH, d.shadow_writes)?;
        let max_body = machine_size(m, "max-body", d.max_body)?;
        let max_inflight = m.or("max-inflight", &COUNT, d.max_inflight)?;
        if max_inflight > MAX_INFLIGHT_LIMIT {
            return Err(m.invalid(
                "max-inflight",
                format!("{max_inflight} is more than {MAX_INFLIGHT_LIMIT}"),
            ));
        }
        let max_shadow_memory = machine_size(m, "max-shadow-memory", d.max_shadow_memory)?;
        let threshold = m.or("breaker-threshold", &COUNT32, d.breaker.threshold)?;
        let cooldown = m.or("breaker-cooldown", &DURATION, d.breaker.cooldown)?;
        if cooldown.is_zero() || cooldown > BREAKER_MAX_COOLDOWN {
            return Err(m.invalid(
                "breaker-cooldown",
                format!(
                    "{} is not between 1ms and 5m",
                    humantime::format_duration(cooldown)
                ),
            ));
        }
        let marker = m.or("shadow-marker", &MARKER, d.marker)?;
        let select = Selection::read(m)?;
        Ok(ShadowConfig {
            marker,
            select,
            sample,
            sample_by,
            shadow_writes,
            max_body,
            max_inflight,
            max_shadow_memory,
            breaker: BreakerConfig {
                threshold,
                cooldown,
            },
        })
    }
}

/// `shadow-marker`: a header name the proxy may add to a request without changing what it
/// means, so not one HTTP gives a meaning of its own (RFC 9110 section 7.6.1's hop-by-hop
/// fields, Host, the framing fields).
const MARKER: super::value::Kind<http::HeaderName> = super::value::Kind {
    parse: |text| {
        let name = http::HeaderName::from_bytes(text.trim().as_bytes())
            .map_err(|_| format!("{text:?} is not a header name"))?;
        const RESERVED: [&str; 13] = [
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
            "content-type",
            "content-encoding",
            "authorization",
            "cookie",
        ];
        if RESERVED.contains(&name.as_str()) {
            return Err(format!(
                "`{name}` already means something to HTTP; pick a name of your own, e.g. x-shadow"
            ));
        }
        Ok(name)
    },
    spell: |name| super::value::quoted(name.as_str()),
};

/// A size that must fit this machine's address space.
fn machine_size(
    m: &mut Merge<'_>,
    key: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    let bytes = m.or(key, &SIZE, default as u64)?;
    usize::try_from(bytes).map_err(|_| m.invalid(key, "too large for this machine".into()))
}
