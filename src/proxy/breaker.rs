//! The circuit breaker on the secondary: a secondary that keeps failing gets a rest instead
//! of a copy of every production request, and shadowdiff stops spending permits on it.
//!
//! Atomics only: the admission check runs on the client's path and must never wait.
//! After `threshold` consecutive failures the breaker opens for a cool-down; then exactly
//! one request is let through as a probe. The probe's success closes the breaker; its
//! failure reopens it for twice the previous cool-down, up to [`BREAKER_MAX_COOLDOWN`].

use crate::config::{BreakerConfig, BREAKER_MAX_COOLDOWN};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What admission handed a shadow: its result either counts toward the failure streak, or
/// (for the probe) decides whether the breaker closes. Results of shadows admitted before
/// the breaker opened do not count while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticket {
    Closed,
    Probe,
}

/// The breaker's state, shared by admission and every shadow task.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    base_cooldown: Duration,
    epoch: Instant,
    consecutive_failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 while closed.
    open_until_ms: AtomicU64,
    /// The current cool-down in milliseconds: doubled on every failed probe.
    cooldown_ms: AtomicU64,
    /// A probe is out; nobody else passes until it returns.
    probing: AtomicBool,
}

impl Breaker {
    /// The breaker `config` asks for; none when its threshold is 0.
    pub fn from_config(config: &BreakerConfig) -> Option<Breaker> {
        (config.threshold > 0).then(|| Breaker::new(config.threshold, config.cooldown))
    }

    /// `threshold` 0 disables the breaker: it never opens.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold,
            base_cooldown: cooldown,
            epoch: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            cooldown_ms: AtomicU64::new(millis(cooldown)),
            probing: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Whether a shadow may go out now, and with which ticket.
    pub fn admit(&self) -> Option<Ticket> {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        if open_until == 0 {
            return Some(Ticket::Closed);
        }
        if self.now_ms() < open_until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Ticket::Probe)
    }

    /// A probe that was admitted but never sent (no permit, for one) gives its turn back.
    pub fn release(&self, ticket: Ticket) {
        if ticket == Ticket::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    /// Records the result of a shadow sent with `ticket`.
    pub fn record(&self, ticket: Ticket, failed: bool) {
        match ticket {
            Ticket::Probe if failed => {
                let doubled = self
                    .cooldown_ms
                    .load(Ordering::Acquire)
                    .saturating_mul(2)
                    .min(millis(BREAKER_MAX_COOLDOWN));
                self.cooldown_ms.store(doubled, Ordering::Release);
                self.open_until_ms
                    .store(self.now_ms() + doubled.max(1), Ordering::Release);
                self.probing.store(false, Ordering::Release);
                tracing::warn!(
                    cooldown = %humantime::format_duration(Duration::from_millis(doubled)),
                    "breaker: the probe to the secondary failed; shadowing stays paused"
                );
            }
            Ticket::Probe => {
                self.consecutive_failures.store(0, Ordering::Release);
                self.cooldown_ms
                    .store(millis(self.base_cooldown), Ordering::Release);
                self.open_until_ms.store(0, Ordering::Release);
                self.probing.store(false, Ordering::Release);
                tracing::info!("breaker: the secondary answered the probe; shadowing resumes");
            }
            Ticket::Closed if self.open_until_ms.load(Ordering::Acquire) != 0 => {}
            Ticket::Closed if !failed => self.consecutive_failures.store(0, Ordering::Release),
            Ticket::Closed => {
                let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
                if self.threshold > 0 && failures == self.threshold {
                    let cooldown = self.cooldown_ms.load(Ordering::Acquire).max(1);
                    self.open_until_ms
                        .store(self.now_ms() + cooldown, Ordering::Release);
                    tracing::warn!(
                        failures,
                        cooldown = %humantime::format_duration(Duration::from_millis(cooldown)),
                        "breaker: the secondary keeps failing; shadowing paused"
                    );
                }
            }
        }
    }

    /// Open (or probing): shadowing is paused.
    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }

    /// `closed`, `open` or `probing`, for /status.
    pub fn state(&self) -> &'static str {
        if !self.is_open() {
            "closed"
        } else if self.probing.load(Ordering::Acquire) {
            "probing"
        } else {
            "open"
        }
    }

    /// Consecutive failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Acquire)
    }

    /// The pause the breaker would take (or is taking) now.
    pub fn cooldown(&self) -> Duration {
        Duration::from_millis(self.cooldown_ms.load(Ordering::Acquire))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_lets_one_probe_through() {
        // A cool-down of 1 ms has passed by the time of the next check.
        let breaker = Breaker::new(3, Duration::from_millis(1));
        for _ in 0..2 {
            breaker.record(Ticket::Closed, true);
        }
        breaker.record(Ticket::Closed, false);
        assert!(!breaker.is_open(), "a success resets the streak");
        for _ in 0..3 {
            breaker.record(Ticket::Closed, true);
        }
        assert!(breaker.is_open());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(breaker.admit(), Some(Ticket::Probe));
        assert_eq!(breaker.admit(), None, "only one probe at a time");
        breaker.record(Ticket::Closed, false);
        assert!(breaker.is_open(), "late results do not close it");
        breaker.record(Ticket::Probe, true);
        assert_eq!(breaker.cooldown(), Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(breaker.admit(), Some(Ticket::Probe));
        breaker.record(Ticket::Probe, false);
        assert!(!breaker.is_open());
        assert_eq!(breaker.cooldown(), Duration::from_millis(1));
        assert_eq!(breaker.admit(), Some(Ticket::Closed));
    }

    #[test]
    fn cooldown_doubles_up_to_the_cap() {
        let breaker = Breaker::new(1, Duration::from_secs(200));
        breaker.record(Ticket::Closed, true);
        breaker.record(Ticket::Probe, true);
        assert_eq!(breaker.cooldown(), BREAKER_MAX_COOLDOWN);
        assert_eq!(breaker.admit(), None);
    }

    #[test]
    fn threshold_zero_never_opens() {
        let breaker = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            breaker.record(Ticket::Closed, true);
        }
        assert!(!breaker.is_open());
    }
}
