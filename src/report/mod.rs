//! One report model built from any number of stores, rendered in several formats, plus the
//! gate that turns it into a CI verdict and `show` for a single mismatch.
//!
//! - [`model`]: the report model and how it is read from stores.
//! - [`gate`]: thresholds and the pass/fail verdict.
//! - [`json`], [`text`], [`markdown`], [`html`], [`junit`]: one renderer each.
//! - [`show`]: one stored mismatch in full.

pub mod gate;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod show;
pub mod text;

use crate::cli::{GateArgs, ReportArgs, ReportFormat, ShowArgs, StoreSelection};
use crate::store::{ReadFilter, StoreError, StoreReader};
use gate::{ThresholdError, Thresholds};
use model::{Report, Scope};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::SystemTime;

/// Why a report, gate or show could not be produced (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    #[error("{flag}: {reason}")]
    BadFlag { flag: &'static str, reason: String },
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing to standard output: {0}")]
    Stdout(std::io::Error),
}

/// The verdict of a report or gate: exit 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateStatus {
    Pass,
    Fail,
}

/// `shadowdiff report`: renders the report; with thresholds, also gates.
pub fn run_report(args: &ReportArgs) -> Result<GateStatus, ReportError> {
    let thresholds = Thresholds::from_args(&args.thresholds)?;
    let mut report = load(&args.stores, args.examples)?;
    let status = apply_gate(&mut report, &thresholds);
    let thresholds = (!thresholds.is_empty()).then_some(&thresholds);
    let rendered = match args.format {
        ReportFormat::Json => json::render(&report),
        ReportFormat::Text => {
            let colour = args.output.is_none() && std::io::stdout().is_terminal();
            text::render(&report, colour)
        }
        ReportFormat::Markdown => markdown::render(&report),
        ReportFormat::Html => html::render(&report),
        ReportFormat::Junit => junit::render(&report, thresholds),
    };
    match &args.output {
        Some(path) => std::fs::write(path, rendered).map_err(|source| ReportError::Output {
            path: path.clone(),
            source,
        })?,
        None => print_stdout(&rendered)?,
    }
    Ok(status)
}

/// `shadowdiff gate`: a one-screen verdict.
pub fn run_gate(args: &GateArgs) -> Result<GateStatus, ReportError> {
    let thresholds = Thresholds::from_args(&args.thresholds)?;
    if thresholds.max_mismatch_rate.is_none() {
        return Err(ReportError::BadFlag {
            flag: "--max-mismatch-rate",
            reason: "gate needs it (a rate such as 0.01 or 1%)".into(),
        });
    }
    let mut report = load(&args.stores, 0)?;
    let status = apply_gate(&mut report, &thresholds);
    print_stdout(&text::render_gate(&report))?;
    Ok(status)
}

/// `shadowdiff show`: one stored mismatch in full.
pub fn run_show(args: &ShowArgs) -> Result<(), ReportError> {
    let reader = StoreReader::open(&args.db)?;
    let row = reader.mismatch(args.id)?;
    print_stdout(&show::render(&row))
}

fn apply_gate(report: &mut Report, thresholds: &Thresholds) -> GateStatus {
    if thresholds.is_empty() {
        return GateStatus::Pass;
    }
    let verdict = gate::evaluate(report, thresholds);
    let status = if verdict.passed {
        GateStatus::Pass
    } else {
        GateStatus::Fail
    };
    report.gate = Some(verdict);
    status
}

fn load(selection: &StoreSelection, examples_per_route: usize) -> Result<Report, ReportError> {
    let since_ms = selection
        .since
        .as_deref()
        .map(|text| {
            let span = humantime::parse_duration(text).map_err(|e| ReportError::BadFlag {
                flag: "--since",
                reason: format!("{text:?}: {e} (use e.g. 30m, 2h, 1d)"),
            })?;
            let start = SystemTime::now()
                .checked_sub(span)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Ok::<_, ReportError>(crate::store::millis_since_epoch(start))
        })
        .transpose()?;
    // The one route grammar (`crate::route`); its matcher is polynomial in pattern and
    // route length (issue 12, bug 11; pinned by tests/integration/pattern_complexity.rs).
    let route = selection
        .route
        .as_deref()
        .map(|text| {
            crate::route::RoutePattern::parse(text).map_err(|reason| ReportError::BadFlag {
                flag: "--route",
                reason: format!("{text:?}: {reason}"),
            })
        })
        .transpose()?;
    let readers = selection
        .db
        .iter()
        .map(|path| StoreReader::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let scope = Scope {
        filter: ReadFilter {
            run: selection.run,
            since_ms,
        },
        route,
        examples_per_route,
    };
    Ok(Report::build(&readers, &scope)?)
}

fn print_stdout(text: &str) -> Result<(), ReportError> {
    crate::stdout::write(text).map_err(ReportError::Stdout)
}
