//! The memory budget of shadowing: one byte count for everything held for shadows at once.
//!
//! A shadow holds the client's request body, the primary's captured response and the
//! secondary's response until its exchange has been compared. Without a common bound,
//! that is max-inflight x max-body x 3 in the worst case (a stalled secondary and large
//! bodies): far more than the machine has. Every shadow takes what it buffers from one
//! [`MemoryBudget`] through its [`Reservation`] *before* it keeps the bytes, and gives it all
//! back when the reservation goes (the exchange is compared, or dropped). Taking never waits:
//! bytes that do not fit are not kept, and the shadow is skipped as `overload`; the client's
//! request and response stream on untouched.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The documented default of `--max-shadow-memory`.
pub const DEFAULT_MAX_SHADOW_MEMORY: usize = 256 * 1024 * 1024;

/// Bytes that all shadows together may hold.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// No bound: what a proxy built without a budget (and a replay) uses.
    pub fn unlimited() -> Arc<MemoryBudget> {
        MemoryBudget::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held by shadows right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes still free.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    /// Takes `bytes` if they fit, all or nothing.
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// What one shadow holds of the budget. Clones share it (the request tee, the response tee
/// and the shadow task each hold one); it is all given back when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Reservation(Arc<Held>);

#[derive(Debug)]
struct Held {
    budget: Arc<MemoryBudget>,
    bytes: AtomicUsize,
    /// Set once any part of this shadow did not fit: the shadow is skipped as `overload`.
    refused: AtomicBool,
}

impl Reservation {
    pub fn new(budget: &Arc<MemoryBudget>) -> Reservation {
        Reservation(Arc::new(Held {
            budget: budget.clone(),
            bytes: AtomicUsize::new(0),
            refused: AtomicBool::new(false),
        }))
    }

    /// Takes `bytes` more before they are kept; `false` (nothing taken, and the shadow
    /// marked refused) when they do not fit.
    pub fn try_grow(&self, bytes: usize) -> bool {
        if self.0.budget.try_take(bytes) {
            self.0.bytes.fetch_add(bytes, Ordering::AcqRel);
            true
        } else {
            self.0.refused.store(true, Ordering::Release);
            false
        }
    }

    /// Gives back `bytes` taken earlier whose copy was let go (a body over max-body).
    pub fn shrink(&self, bytes: usize) {
        let held = self
            .0
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(bytes))
            })
            .unwrap_or(0);
        self.0.budget.give_back(held.min(bytes));
    }

    /// Whether any part of this shadow did not fit in the budget.
    pub fn refused(&self) -> bool {
        self.0.refused.load(Ordering::Acquire)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.0.bytes.load(Ordering::Acquire)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give_back(*self.bytes.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_take_all_or_nothing_and_give_back_on_drop() {
        let budget = MemoryBudget::new(100);
        let first = Reservation::new(&budget);
        assert!(first.try_grow(60));
        let second = Reservation::new(&budget);
        assert!(!second.try_grow(41));
        assert!(second.refused());
        assert!(!first.refused());
        assert!(second.try_grow(40));
        assert_eq!(budget.available(), 0);
        first.shrink(10);
        assert_eq!((first.bytes(), budget.used()), (50, 90));
        let clone = first.clone();
        drop(first);
        assert_eq!(budget.used(), 90);
        drop(clone);
        drop(second);
        assert_eq!(budget.used(), 0);
    }
}
