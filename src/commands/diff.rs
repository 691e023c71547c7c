//! `shadowdiff diff A B`: the compare engine on two files, so rules can be developed
//! without traffic. A file is a bare body (JSON or text), or a captured response written
//! as JSON `{"status": 200, "headers": {...}, "body": ...}`.

use crate::cli::DiffArgs;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use shadowdiff::compare::{Comparator, RulesConfig, RulesError, Verdict};
use shadowdiff::config::{ConfigError, FileConfig};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why `diff` could not compare.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Captured { path: PathBuf, reason: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("--route {0:?}: expected METHOD /path, for example 'GET /users/7'")]
    Route(String),
    #[error("--format {0:?}: expected text or json")]
    Format(String),
    #[error("writing the result: {0}")]
    Write(std::io::Error),
}

/// The result of a successful `diff`.
#[derive(Debug)]
pub struct DiffOutcome {
    pub verdict: Verdict,
}

impl DiffOutcome {
    /// Like diff(1): 0 when the two match, 1 when they differ.
    pub fn exit_code(&self) -> u8 {
        if self.verdict.is_match() {
            0
        } else {
            1
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// One side of the comparison, as loaded from its file.
pub struct LoadedResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Runs `diff`: loads the rules and both files, compares them and writes the verdict.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<DiffOutcome, DiffError> {
    let format = match args.format.as_str() {
        "text" => Format::Text,
        "json" => Format::Json,
        other => return Err(DiffError::Format(other.to_string())),
    };
    let rules = match &args.config {
        Some(path) => {
            let file = FileConfig::load(path)?;
            RulesConfig {
                compare: file.compare,
                routes: file.route,
                source: Some(path.clone()),
                recorded_redactions: false,
            }
        }
        None => RulesConfig::default(),
    };
    let comparator = Comparator::new(&rules)?;
    let route = match &args.route {
        Some(text) => {
            let (method, path) = text
                .trim()
                .split_once(' ')
                .ok_or_else(|| DiffError::Route(text.clone()))?;
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| DiffError::Route(text.clone()))?;
            let path = path.trim();
            if !path.starts_with('/') {
                return Err(DiffError::Route(text.clone()));
            }
            comparator.route_of(&method, path)
        }
        None => String::new(),
    };
    let primary = load(&args.primary)?;
    let secondary = load(&args.secondary)?;
    let verdict = comparator.compare_parts(
        &route,
        (primary.status, &primary.headers, &primary.body),
        (secondary.status, &secondary.headers, &secondary.body),
    );
    let written = match format {
        Format::Text => write_text(out, &verdict),
        Format::Json => write_json(out, &route, &verdict),
    }
    .and_then(|()| out.flush());
    // A reader that stopped early does not change the verdict (exit 0 or 1).
    shadowdiff::stdout::quiet_on_broken_pipe(written).map_err(DiffError::Write)?;
    Ok(DiffOutcome { verdict })
}

/// A captured response as written in a file. The body stays raw JSON text so that numbers
/// (huge integers included) reach the engine exactly as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CapturedFile<'a> {
    status: u64,
    #[serde(default)]
    headers: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow, default)]
    body: Option<&'a serde_json::value::RawValue>,
}

/// Reads a file as a captured response when it is a JSON object with a numeric `status`
/// and no keys beyond `status`, `headers` and `body`; otherwise as a bare body.
pub fn load(path: &Path) -> Result<LoadedResponse, DiffError> {
    let bytes = std::fs::read(path).map_err(|source| DiffError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_slice::<CapturedFile<'_>>(&bytes) {
        Ok(captured) => captured_response(path, captured),
        Err(_) => Ok(LoadedResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: bytes,
        }),
    }
}

fn captured_response(path: &Path, file: CapturedFile<'_>) -> Result<LoadedResponse, DiffError> {
    let fail = |reason: String| DiffError::Captured {
        path: path.to_path_buf(),
        reason,
    };
    let code = file.status;
    let status = u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| fail(format!("status {code} is not an HTTP status code")))?;
    let mut headers = HeaderMap::new();
    for (name, value) in file.headers.unwrap_or_default() {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| fail(format!("headers: {name:?} is not a header name")))?;
        let values: Vec<&str> = match &value {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) if items.iter().all(|v| v.is_string()) => {
                items.iter().filter_map(|v| v.as_str()).collect()
            }
            _ => {
                return Err(fail(format!(
                    "headers.{name}: expected a string or a list of strings"
                )))
            }
        };
        for v in values {
            let v = HeaderValue::from_str(v)
                .map_err(|_| fail(format!("headers.{name}: invalid value {v:?}")))?;
            headers.append(name.clone(), v);
        }
    }
    let body = match file.body.map(|raw| raw.get()) {
        None | Some("null") => Vec::new(),
        Some(text) if text.starts_with('"') => serde_json::from_str::<String>(text)
            .map_err(|e| fail(format!("body: {e}")))?
            .into_bytes(),
        // A JSON body written inline, kept exactly as written.
        Some(text) => {
            if !headers.contains_key(http::header::CONTENT_TYPE) {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            text.as_bytes().to_vec()
        }
    };
    Ok(LoadedResponse {
        status,
        headers,
        body,
    })
}

fn write_text(out: &mut dyn Write, verdict: &Verdict) -> std::io::Result<()> {
    if verdict.is_match() {
        writeln!(out, "match")?;
    } else {
        writeln!(out, "{} difference(s):", verdict.differences.len())?;
        for d in &verdict.differences {
            writeln!(out, "  {d}")?;
        }
    }
    for h in &verdict.hidden {
        writeln!(out, "hidden by rule `{}`: {}", h.rule, h.count)?;
    }
    if let Some(diff) = &verdict.body_diff {
        writeln!(out)?;
        write!(out, "{diff}")?;
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, route: &str, verdict: &Verdict) -> std::io::Result<()> {
    let value = serde_json::json!({
        "match": verdict.is_match(),
        "route": if route.is_empty() { None } else { Some(route) },
        "differences": verdict.differences.iter().map(|d| {
            let mut value = serde_json::json!({
                "path": d.path,
                "kind": d.kind.as_str(),
                "primary": d.primary,
                "secondary": d.secondary,
            });
            // As in the report: `to` only for a renamed key.
            if let Some(to) = &d.to {
                value["to"] = serde_json::json!(to);
            }
            value
        }).collect::<Vec<_>>(),
        "hidden": verdict.hidden.iter().map(|h| serde_json::json!({
            "rule": h.rule,
            "count": h.count,
        })).collect::<Vec<_>>(),
        "body_diff": verdict.body_diff,
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}
