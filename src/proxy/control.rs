//! Changes to the shadow made at runtime through the admin listener (`/shadow/*`,
//! `shadowdiff ctl`): pausing, and sampling overrides that win over the file until they
//! are dropped or the process restarts. A SIGHUP reload swaps the file's settings, not
//! these, so an override survives it.
//!
//! Precedence for a request's share: a runtime override of its route, else the runtime
//! global override, else the file's `[[route]]` sample, else the file's `sample`. An
//! operator who turns the whole shadow down in an incident means the whole shadow.

use crate::route::RoutePattern;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// What the admin endpoints have changed; swapped whole, read without a lock.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    pub paused: bool,
    pub rate: Option<f64>,
    /// Per-route overrides as given (the pattern's text) and parsed, newest last.
    pub routes: Vec<(String, RoutePattern, f64)>,
}

impl Runtime {
    /// The override that applies to a request, if any.
    pub fn rate_for(&self, method: &http::Method, path: &str) -> Option<f64> {
        self.routes
            .iter()
            .rev()
            .find(|(_, pattern, _)| pattern.matches(method, path))
            .map(|(_, _, rate)| *rate)
            .or(self.rate)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "paused": self.paused,
            "rate": self.rate,
            "routes": self.routes.iter().map(|(text, _, rate)| serde_json::json!({
                "route": text,
                "rate": rate,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The shared cell: the admission reads it, the admin listener swaps it.
pub type RuntimeCell = Arc<ArcSwap<Runtime>>;

/// A change asked for through the admin listener.
#[derive(Debug)]
pub enum Change {
    Pause,
    Resume,
    Sample { route: Option<String>, rate: f64 },
    DropSamples,
}

/// Applies `change`, or says what is wrong with it.
pub fn apply(cell: &RuntimeCell, change: Change) -> Result<Runtime, String> {
    let mut next = Runtime::clone(&cell.load());
    match change {
        Change::Pause => next.paused = true,
        Change::Resume => next.paused = false,
        Change::DropSamples => {
            next.rate = None;
            next.routes.clear();
        }
        Change::Sample { route, rate } => {
            if !(0.0..=1.0).contains(&rate) || rate.is_nan() {
                return Err(format!("rate {rate} is not between 0 and 1"));
            }
            match route {
                None => next.rate = Some(rate),
                Some(text) => {
                    let pattern =
                        RoutePattern::parse(&text).map_err(|r| format!("route {text:?}: {r}"))?;
                    next.routes.retain(|(t, _, _)| *t != text);
                    next.routes.push((text, pattern, rate));
                }
            }
        }
    }
    cell.store(Arc::new(next.clone()));
    Ok(next)
}
