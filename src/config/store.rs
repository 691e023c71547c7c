//! Settings of the store: where it is, which instance writes, and how much of each mismatch
//! it keeps.

use super::layer::Merge;
use super::value::{quoted, Kind, COUNT32, PATH, SIZE};
use super::ConfigError;
use crate::store::Location;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// `store`: `sqlite:PATH`, a bare path, or a PostgreSQL URL; spelled without its password.
pub const LOCATION: Kind<Location> = Kind {
    parse: |text| Location::parse(text).map_err(|e| e.to_string()),
    spell: |location| quoted(&location.shown()),
};

/// `instance`: a name for reports, so one line of text.
pub const INSTANCE: Kind<String> = Kind {
    parse: |text| {
        let name = text.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err("an instance name is 1 to 200 printable characters".into());
        }
        Ok(name.to_string())
    },
    spell: |name| quoted(name),
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: Location,
    /// The name this process's runs carry (`runs.instance`): the host name by default.
    pub instance: String,
    /// Mismatches stored in full per (route, set of differing paths).
    pub examples_per_signature: u32,
    /// Past this database size, examples stop being stored; counts go on.
    pub max_db_size: Option<u64>,
    /// Records held while the store's database is unreachable.
    pub backlog: u32,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            location: Location::Sqlite("shadowdiff.db".into()),
            instance: crate::store::default_instance(),
            examples_per_signature: 20,
            max_db_size: None,
            backlog: 10_000,
        }
    }
}

impl StoreConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<StoreConfig, ConfigError> {
        let d = StoreConfig::default();
        // `db = PATH` is the short form of `store = "sqlite:PATH"`: one setting, two
        // spellings. The flags and variables win over the file; both spellings in one
        // layer is a mistake, named.
        let db = m.optional("db", &PATH)?.map(Location::Sqlite);
        let store = m.optional("store", &LOCATION)?;
        m.hide("db");
        let location = match (store, db) {
            (Some(store), Some(db)) => match (m.overridden("store"), m.overridden("db")) {
                (true, false) => store,
                (false, true) => db,
                _ => {
                    return Err(m.invalid(
                        "store",
                        "give --store or --db, not both (--db PATH means --store sqlite:PATH)"
                            .into(),
                    ))
                }
            },
            (Some(store), None) => store,
            (None, Some(db)) => db,
            (None, None) => d.location,
        };
        m.resolve("store", (LOCATION.spell)(&location));
        Ok(StoreConfig {
            location,
            instance: m.or("instance", &INSTANCE, d.instance)?,
            examples_per_signature: m.or(
                "examples-per-signature",
                &COUNT32,
                d.examples_per_signature,
            )?,
            max_db_size: m.optional("max-db-size", &SIZE)?,
            backlog: m.or("store-backlog", &COUNT32, d.backlog)?,
        })
    }

    /// What the store writer keeps; `dropped` is the pipeline's drop counter.
    pub fn options(&self, dropped: Arc<AtomicU64>) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            examples_per_signature: self.examples_per_signature,
            max_db_size: self.max_db_size,
            backlog_records: self.backlog as usize,
            dropped,
            ..crate::store::StoreOptions::default()
        }
    }
}
