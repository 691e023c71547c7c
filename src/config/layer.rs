//! The one merge path: a setting's value comes from the command line or the environment
//! ([`Overrides`]), else the config file ([`FileConfig`]), else its component's default,
//! and is read by the same grammar ([`super::value`]) wherever it came from. [`Merge`]
//! remembers where each value came from, so an error names the flag, or the file, line
//! and key.

use super::value::Kind;
use super::ConfigError;
use crate::compare::{CompareSection, RouteSection};
use crate::redact::RedactSection;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Settings given as flags or environment variables, by key: the flag's long name, which is
/// also the file's key (`max-body`). The last value given for a key wins.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// The TOML file to read under the flags (`--config`).
    pub config_file: Option<PathBuf>,
    values: Vec<(String, String)>,
}

impl Overrides {
    pub fn new() -> Overrides {
        Overrides::default()
    }

    /// Overrides over the config file at `path`, if any.
    pub fn over_file(path: Option<PathBuf>) -> Overrides {
        Overrides {
            config_file: path,
            values: Vec::new(),
        }
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Overrides {
        self.values.push((key.into(), value.into()));
        self
    }

    /// [`Overrides::set`], by value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Overrides {
        self.set(key, value);
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(k, _)| k.as_str())
    }
}

/// A config file: the same keys as the flags, plus the compare rules and `[redact]`.
#[derive(Debug, Default)]
pub struct FileConfig {
    path: Option<PathBuf>,
    /// Each top-level key other than the sections, with its value as text (or why it has
    /// none: a table where a value was expected) and its line.
    settings: BTreeMap<String, FileValue>,
    pub compare: CompareSection,
    pub route: Vec<RouteSection>,
    pub redact: RedactSection,
    pub shadow: ShadowSection,
    /// `[[rewrite]]`: what the secondary's copy of a request gets changed, in order.
    pub rewrite: Vec<toml::Spanned<crate::rewrite::RewriteSetting>>,
}

/// `[shadow]`: which routes are shadowed at all.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShadowSection {
    /// Route patterns (method optional, the `[[route]]` grammar) that may be shadowed; all
    /// when empty.
    #[serde(default)]
    pub include: Vec<String>,
    /// Route patterns never shadowed; they win over `include`.
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug)]
struct FileValue {
    text: Result<String, String>,
    line: usize,
}

/// The sections, read by serde with their own unknown-key checks; the top-level keys are
/// read apart, with their lines, by [`FileConfig::parse`].
#[derive(Default, Deserialize)]
struct Sections {
    #[serde(default)]
    compare: CompareSection,
    #[serde(default)]
    route: Vec<RouteSection>,
    #[serde(default)]
    redact: RedactSection,
    #[serde(default)]
    shadow: ShadowSection,
    #[serde(default)]
    rewrite: Vec<toml::Spanned<crate::rewrite::RewriteSetting>>,
}

const SECTIONS: [&str; 5] = ["compare", "route", "redact", "shadow", "rewrite"];

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
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        };
        let sections: Sections = toml::from_str(text).map_err(parse_error)?;
        let top: BTreeMap<String, toml::Spanned<toml::Value>> =
            toml::from_str(text).map_err(parse_error)?;
        let settings = top
            .into_iter()
            .filter(|(key, _)| !SECTIONS.contains(&key.as_str()))
            .map(|(key, value)| {
                let line = text[..value.span().start.min(text.len())]
                    .matches('\n')
                    .count()
                    + 1;
                let text = match value.into_inner() {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    toml::Value::Float(f) => Ok(f.to_string()),
                    toml::Value::Boolean(b) => Ok(b.to_string()),
                    other => Err(format!(
                        "expected a string, number or boolean, found {}",
                        other.type_str()
                    )),
                };
                (key, FileValue { text, line })
            })
            .collect();
        Ok(FileConfig {
            path: Some(path.to_path_buf()),
            settings,
            compare: sections.compare,
            route: sections.route,
            redact: sections.redact,
            shadow: sections.shadow,
            rewrite: sections.rewrite,
        })
    }

    /// The file read, `None` for no file (flags and environment only).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file's compare rules, as the compare engine takes them.
    pub fn rules(&self) -> crate::compare::RulesConfig {
        crate::compare::RulesConfig {
            compare: self.compare.clone(),
            routes: self.route.clone(),
            source: self.path.clone(),
            recorded_redactions: false,
        }
    }
}

/// Where a value came from, for the error that names it.
enum Origin<'a> {
    Flag,
    File { path: &'a Path, line: usize },
}

/// One settings merge in progress: each component asks for its keys
/// ([`Merge::or`], [`Merge::optional`]); what they got is kept, spelled as a config file
/// would spell it, for `config check`, the settings digest and the restart diff.
pub struct Merge<'a> {
    flags: &'a Overrides,
    file: &'a FileConfig,
    asked: BTreeSet<&'static str>,
    resolved: Vec<(&'static str, String)>,
}

impl<'a> Merge<'a> {
    pub fn new(flags: &'a Overrides, file: &'a FileConfig) -> Merge<'a> {
        Merge {
            flags,
            file,
            asked: BTreeSet::new(),
            resolved: Vec::new(),
        }
    }

    /// The value of `key`, from the flags, else the file; `None` when neither sets it.
    pub fn optional<T>(
        &mut self,
        key: &'static str,
        kind: &Kind<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.asked.insert(key);
        let value = match self.raw(key) {
            None => return Ok(None),
            Some((Err(reason), origin)) => return Err(self.error(key, origin, reason.clone())),
            Some((Ok(text), origin)) => {
                (kind.parse)(text).map_err(|reason| self.error(key, origin, reason))?
            }
        };
        self.record(key, (kind.spell)(&value));
        Ok(Some(value))
    }

    /// The value of `key`, or `default` when neither the flags nor the file set it.
    pub fn or<T>(
        &mut self,
        key: &'static str,
        kind: &Kind<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.optional(key, kind)? {
            Some(value) => Ok(value),
            None => {
                self.record(key, (kind.spell)(&default));
                Ok(default)
            }
        }
    }

    /// An error about `key`'s value, naming where that value came from (the flag, when
    /// neither set it: the flag is how a user would set it).
    pub fn invalid(&self, key: &str, reason: String) -> ConfigError {
        let origin = self.raw(key).map_or(Origin::Flag, |(_, origin)| origin);
        self.error(key, origin, reason)
    }

    /// Leaves `key` out of what `config check` prints: a setting that means nothing here
    /// (the record file's size when nothing is recorded).
    pub fn hide(&mut self, key: &str) {
        self.resolved.retain(|(k, _)| *k != key);
    }

    /// Ends the merge: a key nobody asked for is a mistake (a typo in the file), named with
    /// its line and the nearest known key.
    pub fn finish(self) -> Result<Vec<(&'static str, String)>, ConfigError> {
        let suggestion = |key: &str| {
            self.asked
                .iter()
                .map(|known| (strsim::levenshtein(key, known), *known))
                .filter(|(distance, _)| *distance <= 3)
                .min()
                .map(|(_, known)| format!("; did you mean `{known}`?"))
                .unwrap_or_default()
        };
        if let Some((key, value)) = self
            .file
            .settings
            .iter()
            .find(|(key, _)| !self.asked.contains(key.as_str()))
        {
            return Err(ConfigError::Invalid {
                field: format!("{}: key `{key}`", self.file_name()),
                reason: format!("unknown key at line {}{}", value.line, suggestion(key)),
            });
        }
        if let Some(key) = self.flags.keys().find(|key| !self.asked.contains(key)) {
            return Err(ConfigError::Invalid {
                field: format!("--{key}"),
                reason: format!("not a serve setting{}", suggestion(key)),
            });
        }
        Ok(self.resolved)
    }

    /// The file being merged, for the sections a component reads itself.
    pub fn file(&self) -> &'a FileConfig {
        self.file
    }

    /// Whether the flags or variables (not the file) set `key`.
    pub fn overridden(&self, key: &str) -> bool {
        self.flags.get(key).is_some()
    }

    /// Records what `key` resolved to when a component decided it from other keys (the
    /// store from `db` or `store`).
    pub fn resolve(&mut self, key: &'static str, spelled: String) {
        self.asked.insert(key);
        self.record(key, spelled);
    }

    /// Keeps the first spelling of a key that several components read (`preserve-host`
    /// for both legs).
    fn record(&mut self, key: &'static str, spelled: String) {
        if !self.resolved.iter().any(|(k, _)| *k == key) {
            self.resolved.push((key, spelled));
        }
    }

    fn raw(&self, key: &str) -> Option<(Result<&str, &String>, Origin<'a>)> {
        if let Some(text) = self.flags.get(key) {
            return Some((Ok(text), Origin::Flag));
        }
        let value = self.file.settings.get(key)?;
        let origin = Origin::File {
            path: self.file.path.as_deref().unwrap_or(Path::new("")),
            line: value.line,
        };
        Some((value.text.as_deref(), origin))
    }

    fn file_name(&self) -> String {
        self.file
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn error(&self, key: &str, origin: Origin<'_>, reason: String) -> ConfigError {
        match origin {
            Origin::Flag => ConfigError::Invalid {
                field: format!("--{key}"),
                reason,
            },
            Origin::File { path, line } => ConfigError::Invalid {
                field: format!("{}: key `{key}`", path.display()),
                reason: format!("{reason} (line {line})"),
            },
        }
    }
}
