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
        Ok(ShadowConfig {
            marker,
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
