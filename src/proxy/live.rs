//! What a SIGHUP may change while the proxy runs: the compare rules and the sampling.
//!
//! Both sit behind an [`ArcSwap`]: the compare thread loads the rules once per observation
//! and admission loads the sampling once per request, without a lock; a reload swaps in a
//! complete new value, so nobody ever sees half of an old config and half of a new one.

use super::admission::Sampling;
use crate::compare::{Comparator, RulesError};
use crate::config::{ConfigError, ServeConfig};
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// A reload that was refused; the running rules and sampling stay as they were.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(RulesError),
}

/// The reloadable settings and the metrics that count reloads. Cheap to clone; take it
/// with [`super::Prepared::live`] before [`super::serve`] consumes the rest.
#[derive(Clone)]
pub struct Live {
    rules: Arc<ArcSwap<Comparator>>,
    sampling: Arc<ArcSwap<Sampling>>,
    metrics: Arc<Metrics>,
    /// The digest of the configuration last applied, for /status.
    digest: Arc<ArcSwap<String>>,
}

impl Live {
    pub(crate) fn new(config: &ServeConfig, comparator: Arc<Comparator>) -> Live {
        Live {
            rules: Arc::new(ArcSwap::new(comparator)),
            sampling: Arc::new(ArcSwap::from_pointee(Sampling::of(&config.shadow))),
            metrics: Arc::new(Metrics::new(config.admin.max_route_labels)),
            digest: Arc::new(ArcSwap::from_pointee(config.digest.clone())),
        }
    }

    /// Applies the rules and sampling of `config` (read again from its file); anything else
    /// that changed needs a restart and is left as it is. A config whose rules do not
    /// compile changes nothing. Either way the attempt is counted in the metrics.
    pub fn reload(&self, config: &ServeConfig) -> Result<(), ReloadError> {
        let comparator = match Comparator::new(&config.rules) {
            Ok(comparator) => comparator,
            Err(error) => {
                self.metrics.count_reload(false);
                return Err(ReloadError::Rules(error));
            }
        };
        self.rules.store(Arc::new(comparator));
        self.sampling.store(Arc::new(Sampling::of(&config.shadow)));
        self.digest.store(Arc::new(config.digest.clone()));
        // Counted once in effect: whoever sees the count then gets the new rules.
        self.metrics.count_reload(true);
        Ok(())
    }

    /// Counts a reload that failed before its rules could be compiled (unreadable file).
    pub fn count_rejected(&self) {
        self.metrics.count_reload(false);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The digest of the configuration in effect (the last one applied).
    pub fn digest(&self) -> String {
        self.digest.load().as_ref().clone()
    }

    /// The cell [`Live::digest`] reads, for the admin endpoint.
    pub(crate) fn digest_cell(&self) -> Arc<ArcSwap<String>> {
        self.digest.clone()
    }

    pub(crate) fn rules(&self) -> Arc<ArcSwap<Comparator>> {
        self.rules.clone()
    }

    pub(crate) fn sampling(&self) -> Arc<ArcSwap<Sampling>> {
        self.sampling.clone()
    }
}
