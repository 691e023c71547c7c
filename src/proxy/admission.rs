//! Which requests get a shadow, and why the others do not.
//!
//! Every refusal carries a [`SkipReason`], so that nothing is left out of a report silently.
//! The checks are cheap and never wait: the in-flight limit is a non-blocking permit, and
//! the memory budget is checked and reserved from without waiting ([`crate::budget`]).

use super::breaker::{Breaker, Ticket};
use crate::budget::{MemoryBudget, Reservation};
use crate::config::{SampleKey, ShadowConfig};
use crate::exchange::{is_write, SkipReason};
use arc_swap::ArcSwap;
use http::header;
use http::request::Parts;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The sampling settings: swapped as a whole on reload, read without a lock per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    pub rate: f64,
    pub by: Option<SampleKey>,
    /// Which routes, and per route the rate and writes: reloaded with the rate.
    pub select: crate::config::Selection,
}

impl Sampling {
    pub fn of(config: &ShadowConfig) -> Sampling {
        Sampling {
            rate: config.sample,
            by: config.sample_by.clone(),
            select: config.select.clone(),
        }
    }
}

/// A shadow allowed out: the in-flight permit, what its result means to the breaker, and
/// its share of the memory budget: the declared request body so far; the tees and the
/// secondary's read take more through it as they buffer.
#[derive(Debug)]
pub struct Admitted {
    pub permit: OwnedSemaphorePermit,
    pub ticket: Ticket,
    pub memory: Reservation,
}

/// The admission rules of one running proxy. A clone shares every limit and counter (the
/// serve workers each hold one).
#[derive(Clone)]
pub struct Admission {
    sampling: Arc<ArcSwap<Sampling>>,
    runtime: super::control::RuntimeCell,
    breaker: Option<Arc<Breaker>>,
    shadow_writes: bool,
    /// The shadow marker: a request already carrying it is a loop.
    marker: http::HeaderName,
    max_body: usize,
    inflight: Arc<Semaphore>,
    inflight_capacity: usize,
    memory: Arc<MemoryBudget>,
}

impl Admission {
    /// The admission rules `config` sets, with a memory budget of its
    /// `max_shadow_memory`, and no breaker until [`Admission::with_breaker`].
    pub fn new(config: &ShadowConfig) -> Admission {
        Admission {
            sampling: Arc::new(ArcSwap::from_pointee(Sampling::of(config))),
            runtime: Default::default(),
            breaker: None,
            shadow_writes: config.shadow_writes,
            marker: config.marker.clone(),
            max_body: config.max_body,
            inflight: Arc::new(Semaphore::new(config.max_inflight)),
            inflight_capacity: config.max_inflight,
            memory: MemoryBudget::new(config.max_shadow_memory),
        }
    }

    /// The budget shadows buffer from.
    pub fn memory(&self) -> &Arc<MemoryBudget> {
        &self.memory
    }

    /// Refuses shadows while `breaker` is open.
    pub fn with_breaker(mut self, breaker: Arc<Breaker>) -> Admission {
        self.breaker = Some(breaker);
        self
    }

    /// Reads runtime changes (pause, sampling overrides) from `cell`, which the admin
    /// listener swaps.
    pub fn with_runtime(mut self, cell: super::control::RuntimeCell) -> Admission {
        self.runtime = cell;
        self
    }

    /// Reads sampling from `cell`, which a reload swaps.
    pub fn with_sampling(mut self, cell: Arc<ArcSwap<Sampling>>) -> Admission {
        self.sampling = cell;
        self
    }

    /// A permit to shadow this request, or the reason not to. The permit is held by the
    /// shadow task until its exchange is handed to the pipeline.
    pub fn admit(&self, parts: &Parts) -> Result<Admitted, SkipReason> {
        if parts.headers.contains_key(&self.marker) {
            return Err(SkipReason::Loop);
        }
        let runtime = self.runtime.load();
        if runtime.paused {
            return Err(SkipReason::Paused);
        }
        let sampling = self.sampling.load();
        let (method, path) = (&parts.method, parts.uri.path());
        let select = &sampling.select;
        if select.excludes(method, path) {
            return Err(SkipReason::Excluded);
        }
        let route = select.route_for(method, path);
        let writes = route
            .and_then(|r| r.shadow_writes)
            .unwrap_or(self.shadow_writes);
        if !writes && is_write(&parts.method, &parts.headers) {
            return Err(SkipReason::MethodNotShadowed);
        }
        let rate = runtime
            .rate_for(method, path)
            .or_else(|| route.and_then(|r| r.sample))
            .unwrap_or(sampling.rate);
        if !sampled(rate, sampling.by.as_ref(), parts) {
            return Err(SkipReason::SampledOut);
        }
        let declared = declared_length(parts);
        if declared.is_some_and(|len| len > self.max_body as u64) {
            return Err(SkipReason::BodyTooLarge);
        }
        // The declared body is reserved now, before any of it is read: requests arriving
        // together cannot all start buffering into the same free bytes. A body of unknown
        // length starts only while something is free, and takes as it comes.
        let memory = Reservation::new(&self.memory);
        let reserved = declared.and_then(|len| usize::try_from(len).ok());
        if self.memory.available() == 0 || !memory.try_grow(reserved.unwrap_or(0)) {
            return Err(SkipReason::Overload);
        }
        // The permit first: a probe admitted by the breaker must really go out.
        let permit = self
            .inflight
            .clone()
            .try_acquire_owned()
            .map_err(|_| SkipReason::Overload)?;
        let ticket = match &self.breaker {
            None => Ticket::Closed,
            Some(breaker) => breaker.admit().ok_or(SkipReason::BreakerOpen)?,
        };
        Ok(Admitted {
            permit,
            ticket,
            memory,
        })
    }

    /// Shadows in flight: the permits taken.
    pub fn inflight(&self) -> usize {
        self.inflight_capacity - self.inflight.available_permits()
    }

    /// Waits until every shadow in flight has finished, up to `timeout`.
    pub async fn drained(&self, timeout: std::time::Duration) -> bool {
        let all = u32::try_from(self.inflight_capacity).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.inflight.acquire_many(all))
            .await
            .is_ok()
    }
}

/// Whether a request falls in the shadowed share `rate`, at random or by its key.
fn sampled(rate: f64, by: Option<&SampleKey>, parts: &Parts) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let unit = match by {
        None => fastrand::f64(),
        Some(key) => unit_hash(sample_key_value(key, parts).as_bytes()),
    };
    unit < rate
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The value the sampling decision hashes. A missing header or parameter hashes as empty,
/// so key-less requests are also decided consistently (all in or all out) rather than at
/// random: with writes shadowed, consistency matters more than coverage.
fn sample_key_value(key: &SampleKey, parts: &Parts) -> String {
    match key {
        SampleKey::Path => parts.uri.path().to_string(),
        SampleKey::Header(name) => parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        SampleKey::Query(name) => parts
            .uri
            .query()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_default(),
    }
}

/// Maps a key to [0, 1) with a stable hash, so the decision is the same in every process
/// and every version.
fn unit_hash(bytes: &[u8]) -> f64 {
    let hash = xxhash_rust::xxh3::xxh3_64(bytes);
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn shadow(
        sample: f64,
        sample_by: Option<SampleKey>,
        shadow_writes: bool,
        max_body: usize,
        max_inflight: usize,
    ) -> ShadowConfig {
        ShadowConfig {
            sample,
            sample_by,
            shadow_writes,
            max_body,
            max_inflight,
            ..ShadowConfig::default()
        }
    }

    #[test]
    fn refusals_carry_their_reason() {
        let a = Admission::new(&shadow(1.0, None, false, 10, 1));
        let loop_guard = parts(Method::GET, "/", &[("x-shadowdiff", "shadow")]);
        assert_eq!(a.admit(&loop_guard).unwrap_err(), SkipReason::Loop);
        let post = parts(Method::POST, "/", &[]);
        assert_eq!(a.admit(&post).unwrap_err(), SkipReason::MethodNotShadowed);
        let overridden = parts(Method::GET, "/", &[("x-http-method-override", "DELETE")]);
        assert_eq!(
            a.admit(&overridden).unwrap_err(),
            SkipReason::MethodNotShadowed
        );
        let big = parts(Method::GET, "/", &[("content-length", "11")]);
        assert_eq!(a.admit(&big).unwrap_err(), SkipReason::BodyTooLarge);
        let held = a.admit(&parts(Method::GET, "/", &[])).unwrap();
        assert_eq!(
            a.admit(&parts(Method::GET, "/", &[])).unwrap_err(),
            SkipReason::Overload
        );
        assert_eq!(a.inflight(), 1);
        drop(held);
        assert!(a.admit(&parts(Method::GET, "/", &[])).is_ok());
    }

    #[test]
    fn a_full_memory_budget_refuses_as_overload() {
        let a = Admission::new(&ShadowConfig {
            max_shadow_memory: 100,
            ..shadow(1.0, None, true, 1000, 10)
        });
        let budget = a.memory().clone();
        let declared = |len: &str| parts(Method::POST, "/", &[("content-length", len)]);
        let held = a.admit(&declared("60")).unwrap();
        assert_eq!(held.memory.bytes(), 60);
        assert_eq!(a.admit(&declared("41")).unwrap_err(), SkipReason::Overload);
        let more = a.admit(&declared("40")).unwrap();
        assert_eq!(budget.available(), 0);
        assert_eq!(a.admit(&declared("0")).unwrap_err(), SkipReason::Overload);
        drop((held, more));
        assert_eq!(budget.used(), 0);
        assert!(a.admit(&declared("100")).is_ok());
    }

    #[test]
    fn keyed_sampling_is_stable_and_near_the_rate() {
        let key = SampleKey::Query("user".into());
        let mut admitted = 0;
        for user in 0..2000 {
            let uri = format!("/x?user={user}");
            let first = sampled(0.3, Some(&key), &parts(Method::GET, &uri, &[]));
            for _ in 0..3 {
                assert_eq!(
                    sampled(0.3, Some(&key), &parts(Method::GET, &uri, &[])),
                    first
                );
            }
            admitted += usize::from(first);
        }
        assert!((450..750).contains(&admitted), "{admitted}");
    }
}
