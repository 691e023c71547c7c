//! Settings of `serve --record`: where shadowed requests are written for a later replay.

use super::layer::Merge;
use super::value::{PATH, SIZE, SWITCH};
use super::ConfigError;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordConfig {
    pub path: PathBuf,
    /// The file rotates when it would grow past this size.
    pub max_size: u64,
    /// Secrets are kept instead of redacted.
    pub keep_secrets: bool,
    /// `--record-responses`: each line also holds the primary's response, redacted like
    /// the request, for `replay --against-recorded`.
    pub responses: bool,
}

/// 100 MiB: a day of moderate traffic per file before it rotates.
const DEFAULT_MAX_SIZE: u64 = 100 * 1024 * 1024;

impl RecordConfig {
    /// `None` when nothing is recorded; the size and secrets settings then mean nothing and
    /// are left out of what `config check` prints.
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<Option<RecordConfig>, ConfigError> {
        let path = m.optional("record", &PATH)?;
        let max_size = m.or("record-max-size", &SIZE, DEFAULT_MAX_SIZE)?;
        let keep_secrets = m.or("record-secrets", &SWITCH, false)?;
        let responses = m.or("record-responses", &SWITCH, false)?;
        let Some(path) = path else {
            m.hide("record-max-size");
            m.hide("record-secrets");
            m.hide("record-responses");
            return Ok(None);
        };
        Ok(Some(RecordConfig {
            path,
            max_size,
            keep_secrets,
            responses,
        }))
    }
}
