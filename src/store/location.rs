//! Where a store lives: an SQLite file (`sqlite:PATH`, or a bare path as `--db` takes it)
//! or a PostgreSQL database (`postgres://…`, `postgresql://…`, the URL forms libpq takes).
//!
//! A PostgreSQL URL may carry a password. It is kept only to connect: everything that shows
//! a location (errors, logs, `config check`, the run digest) goes through
//! [`Location::shown`], which masks it as the upstream URLs are masked
//! ([`crate::redact::url::MASK`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// How long connecting to PostgreSQL may take when the URL does not say
/// (`connect_timeout`): the writer retries with backoff, so a host that drops packets must
/// not hold it for the kernel's minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A store's place, parsed once from `--store`, `--db` or the config file.
#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

/// A PostgreSQL database and how to reach it.
#[derive(Clone)]
pub struct PgTarget {
    /// What the user wrote, password included: only for equality (a SIGHUP restart diff).
    written: String,
    shown: String,
    config: postgres::Config,
    tls: PgTls,
}

/// `sslmode`, as far as a client that always verifies can honour it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgTls {
    /// `disable`: plain TCP.
    Off,
    /// `prefer` (libpq's default, and ours): TLS when the server offers it, verified.
    Prefer { root_cert: Option<PathBuf> },
    /// `require`, `verify-ca`, `verify-full`: TLS or no connection, the server's certificate
    /// checked against the system's roots (plus `sslrootcert`) and its name. Stricter than
    /// libpq's `require`, which checks nothing: a store that receives every difference is
    /// not a place to trust an unverified peer.
    Require { root_cert: Option<PathBuf> },
}

/// A `--store` value that is not a store location.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(String);

impl Location {
    /// Parses `sqlite:PATH`, `postgres://…`/`postgresql://…`, or a bare path (SQLite).
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LocationError(
                "empty; give sqlite:PATH or postgres://…".into(),
            ));
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(LocationError(
                    "sqlite: needs a file path, e.g. sqlite:shadowdiff.db".into(),
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return PgTarget::parse(text).map(|t| Location::Postgres(Box::new(t)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(LocationError(format!(
                    "unknown store scheme `{scheme}`; give sqlite:PATH or postgres://…"
                )));
            }
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// The location as it may be printed, logged or stored: a password masked.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("sqlite:{}", path.display()),
            Location::Postgres(target) => target.shown.clone(),
        }
    }

    /// The SQLite file, for what only a file has (a size on disk, a sidecar note).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

/// `shadowdiff.db` in the working directory, serve's default.
impl Default for Location {
    fn default() -> Location {
        Location::Sqlite(PathBuf::from("shadowdiff.db"))
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_path_buf())
    }
}

impl FromStr for Location {
    type Err = LocationError;
    fn from_str(text: &str) -> Result<Location, LocationError> {
        Location::parse(text)
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Location) -> bool {
        match (self, other) {
            (Location::Sqlite(a), Location::Sqlite(b)) => a == b,
            (Location::Postgres(a), Location::Postgres(b)) => a.written == b.written,
            _ => false,
        }
    }
}

impl Eq for Location {}

/// Debug output is the shown form: settings are debug-printed in logs and panics.
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl PgTarget {
    fn parse(text: &str) -> Result<PgTarget, LocationError> {
        let mut url = url::Url::parse(text).map_err(|e| {
            LocationError(format!(
                "not a PostgreSQL URL ({e}); e.g. postgres://user@host:5432/db"
            ))
        })?;
        let shown = shown(&url);
        let mut sslmode = None;
        let mut root_cert = None;
        let mut rest: Vec<(String, String)> = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => sslmode = Some(value.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                _ => rest.push((key.into_owned(), value.into_owned())),
            }
        }
        let tls = match sslmode.as_deref() {
            None | Some("prefer") | Some("allow") => PgTls::Prefer { root_cert },
            Some("disable") => PgTls::Off,
            Some("require") | Some("verify-ca") | Some("verify-full") => {
                PgTls::Require { root_cert }
            }
            Some(other) => {
                return Err(LocationError(format!(
                    "{shown}: sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        if rest.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(rest);
        }
        let mut config = postgres::Config::from_str(url.as_str()).map_err(|e| {
            // The client's message names the bad part, never the password.
            LocationError(format!("{shown}: {e}"))
        })?;
        if config.get_hosts().is_empty() {
            return Err(LocationError(format!(
                "{shown}: no host; e.g. postgres://user@host:5432/db"
            )));
        }
        if config.get_dbname().is_none() {
            return Err(LocationError(format!(
                "{shown}: no database name; the store needs a database of its own, e.g. postgres://user@host/shadowdiff"
            )));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("shadowdiff");
        }
        // A server that vanished (not one that refused) must fail the writer's statements
        // within seconds, not after the kernel's retransmission minutes.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(15));
        config.tcp_user_timeout(Duration::from_secs(20));
        config.ssl_mode(match tls {
            PgTls::Off => postgres::config::SslMode::Disable,
            PgTls::Prefer { .. } => postgres::config::SslMode::Prefer,
            PgTls::Require { .. } => postgres::config::SslMode::Require,
        });
        Ok(PgTarget {
            written: text.to_string(),
            shown,
            config,
            tls,
        })
    }

    /// The client's settings: host, port, user, password, database, timeouts.
    pub(crate) fn config(&self) -> &postgres::Config {
        &self.config
    }

    pub(crate) fn tls(&self) -> &PgTls {
        &self.tls
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// A PostgreSQL URL with the password masked, both where URLs carry one (userinfo) and as
/// the libpq `password` parameter.
fn shown(url: &url::Url) -> String {
    let mut masked = url.clone();
    if masked.password().is_some() {
        let _ = masked.set_password(Some(crate::redact::url::MASK));
    }
    if url.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = match key.as_ref() {
                    "password" => crate::redact::url::MASK.to_string(),
                    _ => value.into_owned(),
                };
                (key.into_owned(), value)
            })
            .collect();
        masked.query_pairs_mut().clear().extend_pairs(pairs);
    }
    masked.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms_and_bare_paths_are_files() {
        for text in ["sqlite:a/b.db", "sqlite://a/b.db", "a/b.db"] {
            assert_eq!(
                Location::parse(text).unwrap(),
                Location::Sqlite("a/b.db".into())
            );
        }
        assert_eq!(
            Location::parse("sqlite:///tmp/x.db").unwrap(),
            Location::Sqlite("/tmp/x.db".into())
        );
        assert!(Location::parse("sqlite:").is_err());
        let unknown = Location::parse("mysql://h/db").unwrap_err().to_string();
        assert!(
            unknown.contains("unknown store scheme `mysql`"),
            "{unknown}"
        );
    }

    #[test]
    fn a_postgres_password_is_never_shown() {
        let location =
            Location::parse("postgres://app:s3cret@db.internal:6432/shadow?sslmode=require")
                .unwrap();
        let shown = location.shown();
        assert_eq!(
            shown,
            "postgres://app:***@db.internal:6432/shadow?sslmode=require"
        );
        assert!(!format!("{location:?}").contains("s3cret"));
        let param = Location::parse("postgresql://app@h/db?password=s3cret&connect_timeout=2")
            .unwrap()
            .shown();
        assert!(
            !param.contains("s3cret") && param.contains("password=***"),
            "{param}"
        );
        let Location::Postgres(target) = location else {
            panic!("a postgres location")
        };
        assert_eq!(target.config().get_password(), Some(&b"s3cret"[..]));
        assert_eq!(target.tls(), &PgTls::Require { root_cert: None });
    }

    #[test]
    fn bad_postgres_urls_say_what_is_wrong() {
        let no_db = Location::parse("postgres://u:pw@h")
            .unwrap_err()
            .to_string();
        assert!(
            no_db.contains("no database name") && !no_db.contains("pw@"),
            "{no_db}"
        );
        let mode = Location::parse("postgres://h/db?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(mode.contains("sslmode `sometimes`"), "{mode}");
        let verify =
            Location::parse("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        let Location::Postgres(target) = verify else {
            panic!()
        };
        assert_eq!(
            target.tls(),
            &PgTls::Require {
                root_cert: Some("/ca.pem".into())
            }
        );
    }
}
