//! Settings of the store: which file, and how much of each mismatch it keeps.

use super::layer::Merge;
use super::value::{COUNT32, PATH, SIZE};
use super::ConfigError;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub db: PathBuf,
    /// Mismatches stored in full per (route, set of differing paths).
    pub examples_per_signature: u32,
    /// Past this database size, examples stop being stored; counts go on.
    pub max_db_size: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            db: PathBuf::from("shadowdiff.db"),
            examples_per_signature: 20,
            max_db_size: None,
        }
    }
}

impl StoreConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<StoreConfig, ConfigError> {
        let d = StoreConfig::default();
        Ok(StoreConfig {
            db: m.or("db", &PATH, d.db)?,
            examples_per_signature: m.or(
                "examples-per-signature",
                &COUNT32,
                d.examples_per_signature,
            )?,
            max_db_size: m.optional("max-db-size", &SIZE)?,
        })
    }

    /// What the store writer keeps; `dropped` is the pipeline's drop counter.
    pub fn options(&self, dropped: Arc<AtomicU64>) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            examples_per_signature: self.examples_per_signature,
            max_db_size: self.max_db_size,
            dropped,
            ..crate::store::StoreOptions::default()
        }
    }
}
