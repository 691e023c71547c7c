//! Settings for `serve`: command-line flags (and their `SHADOWDIFF_*` environment
//! variables) merged over a TOML file, merged over defaults, then validated into
//! [`ServeConfig`]. Every error names the flag, or the file and key, that is wrong.

use crate::cli::ServeArgs;
use crate::compare::{CompareSection, RouteSection, RulesConfig};
use crate::redact::url::shown;
use crate::redact::{RedactRules, RedactSection};
use http::HeaderName;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// More shadows in flight than this would not fit the permit counter, and no secondary
/// wants them anyway.
pub const MAX_INFLIGHT_LIMIT: usize = 1_000_000;

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

/// The config file: the same keys as the flags (kebab-case), plus compare rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<String>,
    pub primary: Option<String>,
    pub secondary: Option<String>,
    pub db: Option<PathBuf>,
    pub sample: Option<f64>,
    pub sample_by: Option<String>,
    pub shadow_writes: Option<bool>,
    pub max_body: Option<SizeSetting>,
    pub max_shadow_memory: Option<SizeSetting>,
    pub secondary_timeout: Option<String>,
    pub primary_timeout: Option<String>,
    pub max_inflight: Option<usize>,
    pub preserve_host: Option<bool>,
    pub drain_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub examples_per_signature: Option<u32>,
    pub max_db_size: Option<SizeSetting>,
    pub record: Option<PathBuf>,
    pub record_max_size: Option<SizeSetting>,
    pub record_secrets: Option<bool>,
    pub admin: Option<String>,
    pub max_route_labels: Option<usize>,
    pub breaker_threshold: Option<u32>,
    pub breaker_cooldown: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub secondary_ca: Option<PathBuf>,
    pub insecure_secondary: Option<bool>,
    #[serde(default)]
    pub compare: CompareSection,
    #[serde(default)]
    pub route: Vec<RouteSection>,
    #[serde(default)]
    pub redact: RedactSection,
}

/// A size written either as a number of bytes or as a human size ("1MiB").
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeSetting {
    Bytes(u64),
    Human(String),
}

impl FileConfig {
    /// Reads and parses a config file; the error names the file and, from the TOML parser,
    /// the line and key.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        FileConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}

/// Which part of a request decides sampling when it must be stable per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleKey {
    Header(HeaderName),
    Query(String),
    Path,
}

/// `serve --record`: where and how shadowed requests are written for a later replay.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    pub path: PathBuf,
    pub max_size: u64,
    pub keep_secrets: bool,
}

/// The longest the breaker pauses shadowing before probing again.
pub const BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(300);

/// PEM files of the listener's certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validated settings of `serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub primary: url::Url,
    pub secondary: url::Url,
    pub db: PathBuf,
    pub sample: f64,
    pub sample_by: Option<SampleKey>,
    pub shadow_writes: bool,
    pub max_body: usize,
    /// Bytes all shadows together may buffer (request bodies, both responses, exchanges
    /// waiting for comparison); beyond it requests are skipped as `overload`.
    pub max_shadow_memory: usize,
    pub secondary_timeout: Duration,
    pub primary_timeout: Duration,
    pub max_inflight: usize,
    pub preserve_host: bool,
    pub drain_timeout: Duration,
    /// Deadline for a client's request head (and TLS handshake, and HTTP/2 preface).
    pub header_read_timeout: Duration,
    /// Most client connections at once; `None` derives it from the open-file limit when
    /// the listener starts (see [`crate::proxy::limits`]).
    pub max_connections: Option<usize>,
    /// Mismatches stored in full per (route, set of differing paths).
    pub examples_per_signature: u32,
    /// Past this database size, examples stop being stored; counts go on.
    pub max_db_size: Option<u64>,
    /// Where shadowed requests are recorded as JSON Lines, if anywhere.
    pub record: Option<RecordConfig>,
    /// Where /metrics, /healthz and /status are served; `None` when `--admin off`.
    pub admin: Option<SocketAddr>,
    /// Distinct route label values in metrics before the `other` bucket.
    pub max_route_labels: usize,
    /// Consecutive secondary failures that open the breaker; 0 never opens it.
    pub breaker_threshold: u32,
    /// The breaker's first pause; it doubles up to [`BREAKER_MAX_COOLDOWN`].
    pub breaker_cooldown: Duration,
    /// Certificate chain and key files when the listener speaks TLS.
    pub tls: Option<TlsFiles>,
    /// Extra CA certificates trusted for the secondary.
    pub secondary_ca: Option<PathBuf>,
    /// The secondary's certificate is not verified.
    pub insecure_secondary: bool,
    pub rules: RulesConfig,
    /// What is secret: replaced before anything is stored or recorded (`[redact]`).
    pub redact: Arc<RedactRules>,
    /// SHA-256 of the effective settings, stored with each run.
    pub digest: String,
}

impl ServeConfig {
    /// The certificates an `https` secondary is trusted with (the primary's are the
    /// system's alone).
    pub fn secondary_trust(&self) -> crate::upstream::Trust {
        crate::upstream::Trust {
            extra_ca: self.secondary_ca.clone(),
            insecure: self.insecure_secondary,
        }
    }
}

impl ServeConfig {
    /// What the store keeps, as configured; `dropped` is the pipeline's drop counter.
    pub fn store_options(
        &self,
        dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            examples_per_signature: self.examples_per_signature,
            max_db_size: self.max_db_size,
            dropped,
            ..crate::store::StoreOptions::default()
        }
    }

    /// A configuration with defaults for everything but the two upstreams; for tests and
    /// embedding. Embedding opens no admin port unless asked: `admin` is `None` here.
    pub fn new(primary: &str, secondary: &str) -> Result<ServeConfig, ConfigError> {
        let mut config = ServeConfig::from_args(ServeArgs {
            primary: Some(primary.to_string()),
            secondary: Some(secondary.to_string()),
            ..ServeArgs::default()
        })?;
        config.admin = None;
        config.digest = digest_of(&config);
        Ok(config)
    }

    /// Merges flags over the config file (if `--config` names one) over defaults.
    pub fn from_args(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let source = Source {
            file: args.config.as_deref(),
        };
        let listen = pick(args.listen, file.listen, "127.0.0.1:8080".into());
        let listen = listen
            .parse::<SocketAddr>()
            .map_err(|e| source.invalid("listen", format!("{listen:?}: {e}")))?;
        let primary = match (args.primary, file.primary) {
            (Some(v), _) => parse_upstream(&v).map_err(|r| source.flag("primary", r))?,
            (None, Some(v)) => parse_upstream(&v).map_err(|r| source.key("primary", r))?,
            (None, None) => return Err(source.flag("primary", "required".into())),
        };
        let secondary = match (args.secondary, file.secondary) {
            (Some(v), _) => parse_upstream(&v).map_err(|r| source.flag("secondary", r))?,
            (None, Some(v)) => parse_upstream(&v).map_err(|r| source.key("secondary", r))?,
            (None, None) => return Err(source.flag("secondary", "required".into())),
        };
        let sample = match (args.sample, file.sample) {
            (Some(v), _) => parse_rate(&v).map_err(|r| source.flag("sample", r))?,
            (None, Some(v)) => check_rate(v).map_err(|r| source.key("sample", r))?,
            (None, None) => 1.0,
        };
        let sample_by = match (args.sample_by, file.sample_by) {
            (Some(v), _) => Some(parse_sample_key(&v).map_err(|r| source.flag("sample-by", r))?),
            (None, Some(v)) => Some(parse_sample_key(&v).map_err(|r| source.key("sample-by", r))?),
            (None, None) => None,
        };
        let max_body =
            size_setting(&source, "max-body", args.max_body, file.max_body)?.unwrap_or(1024 * 1024);
        let max_body = usize::try_from(max_body)
            .map_err(|_| source.flag("max-body", "too large for this machine".into()))?;
        let max_shadow_memory = size_setting(
            &source,
            "max-shadow-memory",
            args.max_shadow_memory,
            file.max_shadow_memory,
        )?
        .map(|bytes| {
            usize::try_from(bytes)
                .map_err(|_| source.flag("max-shadow-memory", "too large for this machine".into()))
        })
        .transpose()?
        .unwrap_or(crate::budget::DEFAULT_MAX_SHADOW_MEMORY);
        let secondary_timeout = duration_setting(
            &source,
            "secondary-timeout",
            args.secondary_timeout,
            file.secondary_timeout,
            "5s",
        )?;
        let primary_timeout = duration_setting(
            &source,
            "primary-timeout",
            args.primary_timeout,
            file.primary_timeout,
            "30s",
        )?;
        let drain_timeout = duration_setting(
            &source,
            "drain-timeout",
            args.drain_timeout,
            file.drain_timeout,
            "10s",
        )?;
        let header_read_timeout = duration_setting(
            &source,
            "header-read-timeout",
            args.header_read_timeout,
            file.header_read_timeout,
            "30s",
        )?;
        if header_read_timeout.is_zero() {
            return Err(source.flag("header-read-timeout", "must be more than 0".into()));
        }
        let max_connections = match (args.max_connections, file.max_connections) {
            (Some(v), _) => Some(
                v.parse::<usize>()
                    .map_err(|e| source.flag("max-connections", format!("{v:?}: {e}")))?,
            ),
            (None, n) => n,
        };
        if max_connections == Some(0) {
            return Err(source.flag("max-connections", "must be at least 1".into()));
        }
        let max_inflight = match (args.max_inflight, file.max_inflight) {
            (Some(v), _) => v
                .parse::<usize>()
                .map_err(|e| source.flag("max-inflight", format!("{v:?}: {e}")))?,
            (None, Some(n)) => n,
            (None, None) => 1024,
        };
        if max_inflight > MAX_INFLIGHT_LIMIT {
            return Err(source.flag(
                "max-inflight",
                format!("{max_inflight} is more than {MAX_INFLIGHT_LIMIT}"),
            ));
        }
        let max_db_size = size_setting(&source, "max-db-size", args.max_db_size, file.max_db_size)?;
        let examples_per_signature =
            match (args.examples_per_signature, file.examples_per_signature) {
                (Some(v), _) => v
                    .parse::<u32>()
                    .map_err(|e| source.flag("examples-per-signature", format!("{v:?}: {e}")))?,
                (None, Some(n)) => n,
                (None, None) => 20,
            };
        let record_max_size = size_setting(
            &source,
            "record-max-size",
            args.record_max_size,
            file.record_max_size,
        )?
        .unwrap_or(100 * 1024 * 1024);
        let record = args.record.or(file.record).map(|path| RecordConfig {
            path,
            max_size: record_max_size,
            keep_secrets: args.record_secrets || file.record_secrets.unwrap_or(false),
        });
        let admin = pick(args.admin, file.admin, "127.0.0.1:9090".into());
        let admin = match admin.trim() {
            "off" | "none" | "" => None,
            value => Some(
                value
                    .parse::<SocketAddr>()
                    .map_err(|e| source.invalid("admin", format!("{value:?}: {e} (or `off`)")))?,
            ),
        };
        if admin.is_some_and(|admin| admin == listen && listen.port() != 0) {
            return Err(source.invalid(
                "admin",
                format!("{listen} is the proxy's own listener; pick another address"),
            ));
        }
        let max_route_labels = match (args.max_route_labels, file.max_route_labels) {
            (Some(v), _) => v
                .parse::<usize>()
                .map_err(|e| source.flag("max-route-labels", format!("{v:?}: {e}")))?,
            (None, Some(n)) => n,
            (None, None) => 200,
        };
        let breaker_threshold = match (args.breaker_threshold, file.breaker_threshold) {
            (Some(v), _) => v
                .parse::<u32>()
                .map_err(|e| source.flag("breaker-threshold", format!("{v:?}: {e}")))?,
            (None, Some(n)) => n,
            (None, None) => 20,
        };
        let breaker_cooldown = duration_setting(
            &source,
            "breaker-cooldown",
            args.breaker_cooldown,
            file.breaker_cooldown,
            "10s",
        )?;
        if breaker_cooldown.is_zero() || breaker_cooldown > BREAKER_MAX_COOLDOWN {
            return Err(source.invalid(
                "breaker-cooldown",
                format!(
                    "{} is not between 1ms and 5m",
                    humantime::format_duration(breaker_cooldown)
                ),
            ));
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(source.invalid("tls-key", "required with --tls-cert".into()))
            }
            (None, Some(_)) => {
                return Err(source.invalid("tls-cert", "required with --tls-key".into()))
            }
        };
        let redact = RedactRules::compile(&file.redact)
            .map_err(|e| source.key(&format!("redact.{}", e.list), e.to_string()))?;
        let mut config = ServeConfig {
            listen,
            primary,
            secondary,
            db: pick(args.db, file.db, PathBuf::from("shadowdiff.db")),
            sample,
            sample_by,
            shadow_writes: args.shadow_writes || file.shadow_writes.unwrap_or(false),
            max_body,
            max_shadow_memory,
            secondary_timeout,
            primary_timeout,
            max_inflight,
            preserve_host: args.preserve_host || file.preserve_host.unwrap_or(false),
            drain_timeout,
            header_read_timeout,
            max_connections,
            examples_per_signature,
            max_db_size,
            record,
            admin,
            max_route_labels,
            breaker_threshold,
            breaker_cooldown,
            tls,
            secondary_ca: args.secondary_ca.or(file.secondary_ca),
            insecure_secondary: args.insecure_secondary || file.insecure_secondary.unwrap_or(false),
            rules: RulesConfig {
                compare: file.compare,
                routes: file.route,
                source: args.config.clone(),
            },
            redact: Arc::new(redact),
            digest: String::new(),
        };
        config.digest = digest_of(&config);
        Ok(config)
    }
}

impl ServeConfig {
    /// Settings that differ in `new` but only take effect on a restart: a reload applies
    /// compare rules and sampling only, and says which other changes it left alone.
    pub fn restart_only_changes(&self, new: &ServeConfig) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! compare {
            ($($field:ident => $name:literal),* $(,)?) => {
                $(if self.$field != new.$field { changed.push($name); })*
            };
        }
        compare!(
            listen => "listen",
            primary => "primary",
            secondary => "secondary",
            db => "db",
            shadow_writes => "shadow-writes",
            max_body => "max-body",
            max_shadow_memory => "max-shadow-memory",
            secondary_timeout => "secondary-timeout",
            primary_timeout => "primary-timeout",
            max_inflight => "max-inflight",
            preserve_host => "preserve-host",
            drain_timeout => "drain-timeout",
            header_read_timeout => "header-read-timeout",
            max_connections => "max-connections",
            admin => "admin",
            max_route_labels => "max-route-labels",
            breaker_threshold => "breaker-threshold",
            breaker_cooldown => "breaker-cooldown",
            tls => "tls-cert/tls-key",
            secondary_ca => "secondary-ca",
            insecure_secondary => "insecure-secondary",
            redact => "redact",
        );
        changed
    }

    /// What `config check` validates: everything serve would read, except that the
    /// upstreams may be missing (a file of rules whose upstreams are given as flags at
    /// serve time). Those are named in [`Checked::unset`] and left out of the printout.
    pub fn check(mut args: ServeArgs) -> Result<Checked, ConfigError> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut unset = Vec::new();
        if args.primary.is_none() && file.primary.is_none() {
            args.primary = Some(UNSET_UPSTREAM.into());
            unset.push("primary");
        }
        if args.secondary.is_none() && file.secondary.is_none() {
            args.secondary = Some(UNSET_UPSTREAM.into());
            unset.push("secondary");
        }
        Ok(Checked {
            config: ServeConfig::from_args(args)?,
            unset,
        })
    }

    /// The settings as a config file would spell them, defaults filled in: what
    /// `config check` prints. Compare rules are summarized, not repeated.
    pub fn effective(&self, rule_ids: &[String]) -> String {
        let quoted = |v: &dyn std::fmt::Display| format!("{:?}", v.to_string());
        let duration = |d: Duration| quoted(&humantime::format_duration(d));
        let path = |p: &Path| quoted(&p.display());
        let mut lines = vec![
            format!("listen = {}", quoted(&self.listen)),
            format!("primary = {}", quoted(&shown(&self.primary))),
            format!("secondary = {}", quoted(&shown(&self.secondary))),
            format!("db = {}", path(&self.db)),
            format!("sample = {}", self.sample),
        ];
        if let Some(key) = &self.sample_by {
            let key = match key {
                SampleKey::Header(name) => format!("header:{name}"),
                SampleKey::Query(name) => format!("query:{name}"),
                SampleKey::Path => "path".into(),
            };
            lines.push(format!("sample-by = {}", quoted(&key)));
        }
        lines.extend([
            format!("shadow-writes = {}", self.shadow_writes),
            format!("max-body = {}", self.max_body),
            format!("max-shadow-memory = {}", self.max_shadow_memory),
            format!("secondary-timeout = {}", duration(self.secondary_timeout)),
            format!("primary-timeout = {}", duration(self.primary_timeout)),
            format!("max-inflight = {}", self.max_inflight),
            format!("preserve-host = {}", self.preserve_host),
            format!("drain-timeout = {}", duration(self.drain_timeout)),
            format!(
                "header-read-timeout = {}",
                duration(self.header_read_timeout)
            ),
            format!(
                "admin = {}",
                self.admin
                    .map_or_else(|| quoted(&"off"), |addr| quoted(&addr))
            ),
            format!("max-route-labels = {}", self.max_route_labels),
            format!("breaker-threshold = {}", self.breaker_threshold),
            format!("breaker-cooldown = {}", duration(self.breaker_cooldown)),
            format!("examples-per-signature = {}", self.examples_per_signature),
        ]);
        if let Some(n) = self.max_connections {
            lines.push(format!("max-connections = {n}"));
        }
        if let Some(size) = self.max_db_size {
            lines.push(format!("max-db-size = {size}"));
        }
        if let Some(record) = &self.record {
            lines.push(format!("record = {}", path(&record.path)));
            lines.push(format!("record-max-size = {}", record.max_size));
            lines.push(format!("record-secrets = {}", record.keep_secrets));
        }
        if let Some(tls) = &self.tls {
            lines.push(format!("tls-cert = {}", path(&tls.cert)));
            lines.push(format!("tls-key = {}", path(&tls.key)));
        }
        if let Some(ca) = &self.secondary_ca {
            lines.push(format!("secondary-ca = {}", path(ca)));
        }
        lines.push(format!("insecure-secondary = {}", self.insecure_secondary));
        lines.push(format!(
            "# {} compare rule(s): {}",
            rule_ids.len(),
            rule_ids.join(", ")
        ));
        lines.push(format!("# digest {}", self.digest));
        lines.extend(self.redact.effective());
        let mut text = lines.join("\n");
        text.push('\n');
        text
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
    /// [`ServeConfig::effective`], with a comment in place of each unset upstream.
    pub fn effective(&self, rule_ids: &[String]) -> String {
        let mut text = String::new();
        for line in self.config.effective(rule_ids).lines() {
            let unset = self.unset.iter().find(|key| {
                line.strip_prefix(**key)
                    .is_some_and(|r| r.starts_with(" = "))
            });
            match unset {
                Some(key) => text.push_str(&format!(
                    "# {key}: not set here; serve needs --{key} or SHADOWDIFF_{}",
                    key.to_ascii_uppercase()
                )),
                None => text.push_str(line),
            }
            text.push('\n');
        }
        text
    }
}

/// Names where a bad value came from: the flag, or the file and key.
struct Source<'a> {
    file: Option<&'a Path>,
}

impl Source<'_> {
    fn flag(&self, name: &str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            field: format!("--{name}"),
            reason,
        }
    }

    fn key(&self, name: &str, reason: String) -> ConfigError {
        let file = self
            .file
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        ConfigError::Invalid {
            field: format!("{file}: key `{name}`"),
            reason,
        }
    }

    /// For settings already merged: blame the flag, as it is the more specific.
    fn invalid(&self, name: &str, reason: String) -> ConfigError {
        self.flag(name, reason)
    }
}

fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

fn size_setting(
    source: &Source<'_>,
    name: &str,
    flag: Option<String>,
    file: Option<SizeSetting>,
) -> Result<Option<u64>, ConfigError> {
    match (flag, file) {
        (Some(v), _) => parse_size(&v).map(Some).map_err(|r| source.flag(name, r)),
        (None, Some(SizeSetting::Bytes(n))) => Ok(Some(n)),
        (None, Some(SizeSetting::Human(v))) => {
            parse_size(&v).map(Some).map_err(|r| source.key(name, r))
        }
        (None, None) => Ok(None),
    }
}

fn duration_setting(
    source: &Source<'_>,
    name: &str,
    flag: Option<String>,
    file: Option<String>,
    default: &str,
) -> Result<Duration, ConfigError> {
    match (flag, file) {
        (Some(v), _) => parse_duration(&v).map_err(|r| source.flag(name, r)),
        (None, Some(v)) => parse_duration(&v).map_err(|r| source.key(name, r)),
        (None, None) => Ok(parse_duration(default).expect("default durations parse")),
    }
}

/// `http`, `https` or `h2c` URL without query or fragment; its path becomes a prefix.
/// `h2c://host:port/base` names a cleartext HTTP/2 upstream (prior knowledge, RFC 9113
/// section 3.3), as gRPC services speak it.
pub fn parse_upstream(value: &str) -> Result<url::Url, String> {
    // `localhost:8080` parses as scheme "localhost"; say what the user actually missed.
    if !value.contains("://") {
        return Err(format!(
            "relative URL without a scheme ({value:?}); write http://{value}, https://{value} or h2c://{value}"
        ));
    }
    let url = url::Url::parse(value).map_err(|e| format!("{e} ({value:?})"))?;
    if crate::upstream::Protocol::from_scheme(url.scheme()).is_none() {
        return Err(format!(
            "scheme {:?} is not http, https or h2c ({value:?})",
            url.scheme()
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("no host in {value:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "an upstream URL cannot carry a query or fragment ({value:?})"
        ));
    }
    Ok(url)
}

/// The one grammar for a rate, in flags, files and gate thresholds alike: a fraction
/// (`0.05`) or a percentage (`5%`), between 0 and 1 inclusive.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (use a fraction like 0.05 or 5%)"))?;
    if !value.is_finite() {
        return Err(format!(
            "{text:?} is not a rate (use a fraction like 0.05 or 5%)"
        ));
    }
    let rate = value / scale;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{text:?} is outside 0..1 (0%..100%)"));
    }
    Ok(rate)
}

fn check_rate(rate: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

pub fn parse_sample_key(value: &str) -> Result<SampleKey, String> {
    if value == "path" {
        return Ok(SampleKey::Path);
    }
    if let Some(name) = value.strip_prefix("header:") {
        return HeaderName::try_from(name.trim())
            .map(SampleKey::Header)
            .map_err(|_| format!("{name:?} is not a valid header name"));
    }
    if let Some(name) = value.strip_prefix("query:") {
        if name.is_empty() {
            return Err("query: needs a parameter name".into());
        }
        return Ok(SampleKey::Query(name.to_string()));
    }
    Err(format!(
        "{value:?}: expected header:NAME, query:NAME or path"
    ))
}

/// Human sizes: `1MiB`, `512KB`, `1048576`.
pub fn parse_size(value: &str) -> Result<u64, String> {
    parse_size::parse_size(value.trim()).map_err(|e| format!("{value:?}: {e}"))
}

/// Human durations: `5s`, `250ms`, `1m 30s`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|e| format!("{value:?}: {e}"))
}

/// Over the settings with upstream passwords masked: the digest is stored and printed,
/// and must not let anyone test candidate passwords against it.
fn digest_of(config: &ServeConfig) -> String {
    let mut masked = config.clone();
    for url in [&mut masked.primary, &mut masked.secondary] {
        if url.password().is_some() {
            let _ = url.set_password(Some(crate::redact::url::MASK));
        }
    }
    let text = format!("{masked:?}");
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_primary_is_named() {
        let err = ServeConfig::new("localhost:8080", "http://b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--primary: relative URL without a scheme (\"localhost:8080\"); \
             write http://localhost:8080, https://localhost:8080 or h2c://localhost:8080"
        );
    }

    #[test]
    fn flag_wins_over_file_and_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "primary = \"http://a\"\nsecondary = \"http://b\"\nsample = 0.5\nmax-body = \"2KiB\"\n",
        )
        .unwrap();
        let config = ServeConfig::from_args(ServeArgs {
            config: Some(path),
            sample: Some("0.25".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(config.sample, 0.25);
        assert_eq!(config.max_body, 2048);
        assert_eq!(config.secondary_timeout, Duration::from_secs(5));
        assert_eq!(config.primary.as_str(), "http://a/");
        assert_eq!(
            config.max_shadow_memory,
            crate::budget::DEFAULT_MAX_SHADOW_MEMORY
        );
    }

    #[test]
    fn max_shadow_memory_is_a_size_from_flag_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let file =
            "primary = \"http://a\"\nsecondary = \"http://b\"\nmax-shadow-memory = \"64MiB\"\n";
        std::fs::write(&path, file).unwrap();
        let args = |flag: Option<&str>| ServeArgs {
            config: Some(path.clone()),
            max_shadow_memory: flag.map(String::from),
            ..ServeArgs::default()
        };
        let config = ServeConfig::from_args(args(None)).unwrap();
        assert_eq!(config.max_shadow_memory, 64 * 1024 * 1024);
        let config = ServeConfig::from_args(args(Some("1GiB"))).unwrap();
        assert_eq!(config.max_shadow_memory, 1024 * 1024 * 1024);
        let error = ServeConfig::from_args(args(Some("lots"))).unwrap_err();
        assert!(error.to_string().contains("max-shadow-memory"), "{error}");
    }

    #[test]
    fn bad_file_values_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "primary = \"http://a\"\nsecondary = \"ftp://b\"\n").unwrap();
        let err = ServeConfig::from_args(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml: key `secondary`"), "{err}");
        std::fs::write(&path, "primary = \"http://a\"\nsecondry = \"http://b\"\n").unwrap();
        let err = ServeConfig::from_args(ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains("secondry"), "{err}");
    }

    #[test]
    fn sample_keys() {
        assert_eq!(parse_sample_key("path"), Ok(SampleKey::Path));
        assert_eq!(
            parse_sample_key("query:user"),
            Ok(SampleKey::Query("user".into()))
        );
        assert!(matches!(
            parse_sample_key("header:X-User"),
            Ok(SampleKey::Header(h)) if h == "x-user"
        ));
        assert!(parse_sample_key("cookie:x").is_err());
        assert!(parse_rate("1.5").is_err());
    }
}
