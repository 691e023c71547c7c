//! Settings for `serve` (and the serve settings `replay` and `demo` share), per component:
//! the listener, each upstream leg, the shadow's admission, the store, the admin listener
//! and the recorder, each built and validated once here and handed whole to the component
//! that uses it (linkerd2-proxy's per-component `Config`).
//!
//! - [`layer`]: the one merge path: flags and `SHADOWDIFF_*` variables ([`Overrides`])
//!   over the TOML file ([`FileConfig`]) over each component's defaults.
//! - [`value`]: the grammar of each kind of value (durations, sizes, rates, URLs...).
//! - [`listener`], [`leg`], [`shadow`], [`store`], [`admin`], [`record`]: one component's
//!   settings each, with its keys and defaults.
//!
//! Adding a setting: its flag (the binary's `cli`), its field and key in its component's
//! settings here, and the code that uses it. `config check`, the digest stored with each
//! run and the restart diff of a reload follow from the merge.

mod admin;
mod baseline;
mod layer;
mod leg;
mod listener;
mod record;
mod shadow;
mod store;
pub mod value;

pub use admin::{AdminConfig, AdminToken};
pub use baseline::{BaselineConfig, BaselineTarget, NoiseConfig};
pub use layer::{FileConfig, Merge, Overrides};
pub use leg::LegConfig;
pub use listener::{ListenerConfig, TlsFiles};
pub use record::RecordConfig;
pub use shadow::{
    BreakerConfig, RouteShadow, Selection, ShadowConfig, BREAKER_MAX_COOLDOWN, MAX_INFLIGHT_LIMIT,
};
pub use store::StoreConfig;
pub use value::{
    parse_duration, parse_rate, parse_sample_key, parse_size, parse_upstream, SampleKey,
};

use crate::compare::RulesConfig;
use crate::redact::RedactRules;
use leg::Side;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The I/O error is part of the message, not a source: `{:#}` would print it twice.
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The TOML parser's message already names the line, column and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// Validated settings of `serve`, one part per component.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listener: ListenerConfig,
    pub primary: LegConfig,
    pub secondary: LegConfig,
    /// `--answer-from`: the leg whose responses the clients get; the other is the shadow.
    /// Each leg keeps its own settings whichever role it has; rewrites stay the
    /// secondary's, sampling, budgets and the breaker go with the shadow role.
    pub answer_from: crate::exchange::Leg,
    /// The baseline leg, if any (`--baseline`).
    pub baseline: Option<BaselineConfig>,
    pub shadow: ShadowConfig,
    pub store: StoreConfig,
    pub admin: AdminConfig,
    /// Where shadowed requests are recorded as JSON Lines, if anywhere.
    pub record: Option<RecordConfig>,
    pub rules: RulesConfig,
    /// `[[rewrite]]`: applied to the secondary's copy of each request, never the primary's
    /// nor the baseline's.
    pub rewrites: crate::rewrite::Rewrites,
    /// What is secret: replaced before anything is stored or recorded (`[redact]`).
    pub redact: Arc<RedactRules>,
    /// SHA-256 of the effective settings, stored with each run.
    pub digest: String,
    /// Each setting as loaded, spelled as a config file would spell it.
    resolved: Vec<(&'static str, String)>,
}

/// Resolved keys that stand for a section of the file (`[shadow]` lists and the routes'
/// shadow settings, `[[rewrite]]`), not settings of their own.
const SECTION_KEYS: [&str; 2] = ["shadow-selection", "rewrite"];

/// Settings a reload applies; every other change waits for a restart.
const RELOADABLE: [&str; 3] = ["sample", "sample-by", "shadow-selection"];

impl ServeConfig {
    /// A configuration with defaults for everything but the two upstreams; for tests and
    /// embedding. Embedding opens no admin port unless asked.
    pub fn new(primary: &str, secondary: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::load(
            &Overrides::new()
                .with("primary", primary)
                .with("secondary", secondary)
                .with("admin", "off"),
        )
    }

    /// Merges the flags over the config file (if `overrides.config_file` names one) over
    /// the defaults, and validates the result.
    pub fn load(overrides: &Overrides) -> Result<ServeConfig, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let (config, unset) = ServeConfig::merge(overrides, file)?;
        match unset.first() {
            Some(key) => Err(ConfigError::Invalid {
                field: format!("--{key}"),
                reason: "required".into(),
            }),
            None => Ok(config),
        }
    }

    /// The merge itself. A missing upstream is not an error yet: it is named in the list
    /// returned, after the file's unknown keys (a misspelt `secondry` is the better
    /// message than `--secondary: required`), and stands in as [`UNSET_UPSTREAM`].
    fn merge(
        overrides: &Overrides,
        file: FileConfig,
    ) -> Result<(ServeConfig, Vec<&'static str>), ConfigError> {
        let redact = RedactRules::compile(&file.redact).map_err(|e| ConfigError::Invalid {
            field: format!(
                "{}: key `redact.{}`",
                overrides
                    .config_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                e.list
            ),
            reason: e.to_string(),
        })?;
        let mut m = Merge::new(overrides, &file);
        let listener = ListenerConfig::merge(&mut m)?;
        let mut unset = Vec::new();
        let mut url = |m: &mut Merge<'_>, key: &'static str| -> Result<url::Url, ConfigError> {
            Ok(match m.optional(key, &value::UPSTREAM)? {
                Some(url) => url,
                None => {
                    unset.push(key);
                    url::Url::parse(UNSET_UPSTREAM).expect("a valid placeholder URL")
                }
            })
        };
        let primary_url = url(&mut m, "primary")?;
        let secondary_url = url(&mut m, "secondary")?;
        let primary = LegConfig::merge(&mut m, Side::Primary, primary_url)?;
        let secondary = LegConfig::merge(&mut m, Side::Secondary, secondary_url)?;
        let answer_from = m.or(
            "answer-from",
            &leg::ANSWER_FROM,
            crate::exchange::Leg::Primary,
        )?;
        let baseline = BaselineConfig::merge(&mut m, &primary, &secondary)?;
        let shadow = ShadowConfig::merge(&mut m)?;
        let store = StoreConfig::merge(&mut m)?;
        let admin = AdminConfig::merge(&mut m)?;
        if admin
            .addr
            .is_some_and(|addr| addr == listener.listen && addr.port() != 0)
        {
            return Err(m.invalid(
                "admin",
                format!(
                    "{} is the proxy's own listener; pick another address",
                    listener.listen
                ),
            ));
        }
        let record = RecordConfig::merge(&mut m)?;
        let rewrites =
            crate::rewrite::Rewrites::compile(&file.rewrite, file.path(), &shadow.marker).map_err(
                |e| ConfigError::Invalid {
                    field: e.field(),
                    reason: e.reason,
                },
            )?;
        if !rewrites.is_empty() {
            m.resolve("rewrite", value::quoted(rewrites.canonical().trim_end()));
        }
        let resolved = m.finish()?;
        let mut config = ServeConfig {
            listener,
            primary,
            secondary,
            answer_from,
            baseline,
            shadow,
            store,
            admin,
            record,
            rules: file.rules(),
            rewrites,
            redact: Arc::new(redact),
            digest: String::new(),
            resolved,
        };
        config.digest = config.digest_of();
        Ok((config, unset))
    }

    /// Settings that differ in `new` but only take effect on a restart: a reload applies
    /// compare rules and sampling only, and says which other changes it left alone.
    pub fn restart_only_changes(&self, new: &ServeConfig) -> Vec<&'static str> {
        let value = |config: &ServeConfig, key: &str| {
            config
                .resolved
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        let mut keys: Vec<&'static str> = self.resolved.iter().map(|(k, _)| *k).collect();
        keys.extend(new.resolved.iter().map(|(k, _)| *k));
        let mut changed = Vec::new();
        for key in keys {
            if !RELOADABLE.contains(&key)
                && !changed.contains(&key)
                && value(self, key) != value(new, key)
            {
                changed.push(key);
            }
        }
        if self.redact.effective() != new.redact.effective() {
            changed.push("redact");
        }
        changed
    }

    /// What `config check` validates: everything serve would read, except that the
    /// upstreams may be missing (a file of rules whose upstreams are given as flags at
    /// serve time). Those are named in [`Checked::unset`] and left out of the printout.
    pub fn check(overrides: &Overrides) -> Result<Checked, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let (config, unset) = ServeConfig::merge(overrides, file)?;
        Ok(Checked { config, unset })
    }

    /// The leg that answers the clients (`--answer-from`), and the one shadowed.
    pub fn answering_leg(&self) -> &LegConfig {
        match self.answer_from {
            crate::exchange::Leg::Primary => &self.primary,
            crate::exchange::Leg::Secondary => &self.secondary,
        }
    }

    /// The leg the shadow goes to: the secondary, or the primary after a cutover.
    pub fn shadow_leg(&self) -> &LegConfig {
        match self.answer_from {
            crate::exchange::Leg::Primary => &self.secondary,
            crate::exchange::Leg::Secondary => &self.primary,
        }
    }

    /// The settings as a config file would spell them, defaults filled in: what
    /// `config check` prints. Compare rules are summarized, not repeated.
    pub fn effective(&self, rule_ids: &[String]) -> String {
        // The sections' pseudo-keys (in the digest and the restart diff) are printed as the
        // sections they are, below, so that the printout checks to itself.
        let mut lines: Vec<String> = self
            .resolved
            .iter()
            .filter(|(key, _)| !SECTION_KEYS.contains(key))
            .map(|(key, value)| format!("{key} = {value}"))
            .collect();
        lines.push(format!(
            "# {} compare rule(s): {}",
            rule_ids.len(),
            rule_ids.join(", ")
        ));
        lines.push(format!("# digest {}", self.digest));
        lines.extend(self.redact.effective());
        if let Some(shadow) = self.shadow.select.toml_section() {
            lines.push(shadow);
        }
        if !self.rewrites.is_empty() {
            lines.push(self.rewrites.toml_tables());
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// Over the settings as spelled, where upstream passwords are already masked: the
    /// digest is stored and printed, and must not let anyone test candidate passwords
    /// against it.
    ///
    /// Where results go and which instance writes them are left out: the replicas of a
    /// fleet run one configuration, and their runs must carry one digest.
    fn digest_of(&self) -> String {
        let mut hash = Sha256::new();
        for (key, value) in &self.resolved {
            if matches!(*key, "instance" | "store") {
                continue;
            }
            hash.update(format!("{key}={value}\n").as_bytes());
        }
        hash.update(self.rules.canonical().as_bytes());
        hash.update(self.redact.effective().join("\n").as_bytes());
        format!("{:x}", hash.finalize())
    }
}

/// Stands in for an upstream that `config check` was not given; never contacted.
const UNSET_UPSTREAM: &str = "http://unset.invalid/";

/// A configuration that `config check` found valid.
pub struct Checked {
    pub config: ServeConfig,
    /// Upstreams neither the flags, the environment nor the file set: serve will need them.
    pub unset: Vec<&'static str>,
}

impl Checked {
    /// [`ServeConfig::effective`], after a comment for each unset upstream.
    pub fn effective(&self, rule_ids: &[String]) -> String {
        let mut text = String::new();
        for key in &self.unset {
            text.push_str(&format!(
                "# {key}: not set here; serve needs --{key} or SHADOWDIFF_{}\n",
                key.to_ascii_uppercase()
            ));
        }
        text.push_str(&self.config.effective(rule_ids));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn replicas_with_their_own_instance_and_store_share_one_digest() {
        let load = |extra: &[(&str, &str)]| {
            let mut flags = Overrides::new()
                .with("primary", "http://p.test")
                .with("secondary", "http://s.test");
            for (key, value) in extra {
                flags.set(*key, *value);
            }
            ServeConfig::load(&flags).unwrap()
        };
        let a = load(&[("instance", "replica-1"), ("store", "sqlite:a.db")]);
        let b = load(&[
            ("instance", "replica-2"),
            ("store", "postgres://u:pw@db.test/shadow"),
        ]);
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, load(&[("sample", "50%")]).digest);
        let both = Overrides::new()
            .with("primary", "http://p.test")
            .with("secondary", "http://s.test")
            .with("db", "a.db")
            .with("store", "sqlite:b.db");
        let refused = ServeConfig::load(&both).unwrap_err().to_string();
        assert!(refused.contains("--store or --db, not both"), "{refused}");
        assert!(
            !b.effective(&[]).contains("pw@"),
            "config check masks the password"
        );
    }

    #[test]
    fn relative_primary_is_named() {
        let err = ServeConfig::new("localhost:8080", "http://b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--primary: relative URL without a scheme (\"localhost:8080\"); \
             write http://localhost:8080, https://localhost:8080 or h2c://localhost:8080"
        );
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flag_wins_over_file_and_file_over_default() {
        let (_dir, path) = file(
            "primary = \"http://a\"\nsecondary = \"http://b\"\nsample = 0.5\nmax-body = \"2KiB\"\n",
        );
        let config =
            ServeConfig::load(&Overrides::over_file(Some(path)).with("sample", "0.25")).unwrap();
        assert_eq!(config.shadow.sample, 0.25);
        assert_eq!(config.shadow.max_body, 2048);
        assert_eq!(config.secondary.timeout, Duration::from_secs(5));
        assert_eq!(config.primary.timeout, Duration::from_secs(30));
        assert_eq!(config.primary.url.as_str(), "http://a/");
        assert_eq!(
            config.shadow.max_shadow_memory,
            crate::budget::DEFAULT_MAX_SHADOW_MEMORY
        );
    }

    #[test]
    fn max_shadow_memory_is_a_size_from_flag_or_file() {
        let (_dir, path) = file(
            "primary = \"http://a\"\nsecondary = \"http://b\"\nmax-shadow-memory = \"64MiB\"\n",
        );
        let load = |flag: Option<&str>| {
            let mut overrides = Overrides::over_file(Some(path.clone()));
            if let Some(flag) = flag {
                overrides.set("max-shadow-memory", flag);
            }
            ServeConfig::load(&overrides)
        };
        assert_eq!(
            load(None).unwrap().shadow.max_shadow_memory,
            64 * 1024 * 1024
        );
        assert_eq!(
            load(Some("1GiB")).unwrap().shadow.max_shadow_memory,
            1024 * 1024 * 1024
        );
        let error = load(Some("lots")).unwrap_err();
        assert!(error.to_string().contains("max-shadow-memory"), "{error}");
    }

    #[test]
    fn bad_file_values_name_file_and_key() {
        let (_dir, path) = file("primary = \"http://a\"\nsecondary = \"ftp://b\"\n");
        let err = ServeConfig::load(&Overrides::over_file(Some(path.clone())))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml: key `secondary`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        std::fs::write(&path, "primary = \"http://a\"\nsecondry = \"http://b\"\n").unwrap();
        let err = ServeConfig::load(&Overrides::over_file(Some(path)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("secondry"), "{err}");
        assert!(err.contains("did you mean `secondary`"), "{err}");
    }

    #[test]
    fn a_table_where_a_value_belongs_is_named() {
        let (_dir, path) =
            file("primary = \"http://a\"\nsecondary = \"http://b\"\n[listen]\nport = 1\n");
        let err = ServeConfig::load(&Overrides::over_file(Some(path)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key `listen`") && err.contains("found table"),
            "{err}"
        );
    }

    #[test]
    fn one_grammar_for_flags_and_file() {
        // A percentage reads the same from the file as from `--sample`.
        let (_dir, path) =
            file("primary = \"http://a\"\nsecondary = \"http://b\"\nsample = \"10%\"\n");
        let config = ServeConfig::load(&Overrides::over_file(Some(path))).unwrap();
        assert_eq!(config.shadow.sample, 0.1);
    }

    #[test]
    fn a_setting_read_by_both_legs_is_printed_once() {
        let config = ServeConfig::load(
            &Overrides::new()
                .with("primary", "http://a")
                .with("secondary", "http://b")
                .with("preserve-host", "true")
                .with("connect-timeout", "1s"),
        )
        .unwrap();
        assert!(config.primary.preserve_host && config.secondary.preserve_host);
        assert_eq!(
            config.secondary.connect.timeout,
            Some(Duration::from_secs(1))
        );
        let printed = config.effective(&[]);
        assert_eq!(
            printed.matches("preserve-host = true").count(),
            1,
            "{printed}"
        );
        assert_eq!(
            printed.matches("connect-timeout = \"1s\"").count(),
            1,
            "{printed}"
        );
    }

    #[test]
    fn an_unknown_override_is_refused() {
        let err = ServeConfig::load(
            &Overrides::new()
                .with("primary", "http://a")
                .with("secondary", "http://b")
                .with("max-bodies", "1"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--max-bodies: not a serve setting; did you mean `max-body`?"),
            "{err}"
        );
    }

    #[test]
    fn the_restart_diff_compares_values_not_spellings() {
        let base = Overrides::new()
            .with("primary", "http://a")
            .with("secondary", "http://b");
        let old = ServeConfig::load(&base.clone().with("max-body", "1MiB")).unwrap();
        let same = ServeConfig::load(&base.clone().with("max-body", "1048576")).unwrap();
        assert!(old.restart_only_changes(&same).is_empty());
        let new = ServeConfig::load(&base.clone().with("max-body", "2MiB").with("sample", "0.5"))
            .unwrap();
        assert_eq!(old.restart_only_changes(&new), vec!["max-body"]);
    }
}
