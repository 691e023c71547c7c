//! One report model built from any number of stores, rendered in several formats, plus the
//! gate that turns it into a CI verdict and `show` for a single mismatch.
//!
//! - [`model`]: the report model and how it is read from stores.
//! - [`gate`]: thresholds and the pass/fail verdict.
//! - [`json`], [`text`], [`markdown`], [`html`], [`junit`]: one renderer each.
//! - [`show`]: one stored mismatch in full.
//! - [`diffview`]: two bodies side by side, for `show`, the HTML report and the dashboard.

pub mod diffview;
pub mod gate;
mod html;
mod json;
mod junit;
mod markdown;
pub mod model;
mod show;
mod text;

/// `gate`'s verdict as text; `show`'s page of one mismatch.
pub use show::{render as render_mismatch, ShowOptions};
pub use text::render_gate;

use crate::store::{ReadFilter, StoreError, StoreReader};
use gate::{ThresholdError, Thresholds};
use model::{Report, Scope};
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

/// Which stores a report reads, and which part of them: typed values (the commands turn
/// flags into them).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub stores: Vec<crate::store::Location>,
    /// Only runs of this instance.
    pub instance: Option<String>,
    /// Only the last span of time.
    pub since: Option<std::time::Duration>,
    pub run: Option<i64>,
    pub route: Option<crate::route::RoutePattern>,
    /// Stored examples shown per route.
    pub examples_per_route: usize,
    /// Also propose rules from the newest differences (the text and HTML reports end
    /// with them in short).
    pub suggestions: bool,
}

/// Differences per store the reports' suggestions read: enough to see the usual noise,
/// few enough that a report stays quick over a million mismatches.
const REPORT_SUGGESTION_ROWS: usize = 20_000;

impl Selection {
    /// Opens every selected store read-only, with the filter the selection means.
    pub fn open(&self) -> Result<(Vec<StoreReader>, ReadFilter), StoreError> {
        let since_ms = self.since.map(|span| {
            let start = SystemTime::now()
                .checked_sub(span)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            crate::store::millis_since_epoch(start)
        });
        let readers = self
            .stores
            .iter()
            .map(StoreReader::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            readers,
            ReadFilter {
                run: self.run,
                since_ms,
                instance: self.instance.clone(),
            },
        ))
    }
}

/// How a report is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `wide`: every column at full width instead of fitting 100 columns.
    Text {
        colour: bool,
        wide: bool,
    },
    Json,
    Markdown,
    Html,
    Junit,
}

/// Reads and merges the selected stores into one report.
pub fn load(selection: &Selection) -> Result<Report, ReportError> {
    let (readers, filter) = selection.open()?;
    let scope = Scope {
        filter: filter.clone(),
        route: selection.route.clone(),
        examples_per_route: selection.examples_per_route,
    };
    let mut report = Report::build(&readers, &scope)?;
    if selection.suggestions {
        let found = crate::suggest::suggest(
            &readers,
            &filter,
            selection.route.as_ref(),
            Some(REPORT_SUGGESTION_ROWS),
        )?;
        report.suggestions = Some(crate::suggest::Summary::of(&found));
    }
    Ok(report)
}

/// The report in `format`; JUnit marks the routes over `thresholds`.
pub fn render(report: &Report, format: Format, thresholds: Option<&Thresholds>) -> String {
    match format {
        Format::Json => json::render(report),
        Format::Text { colour, wide } => text::render(report, colour, wide),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::Junit => junit::render(report, thresholds),
    }
}

/// Applies the thresholds (if any) and records the verdict in the report.
pub fn apply_gate(report: &mut Report, thresholds: &Thresholds) -> GateStatus {
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

/// Writes a rendered report or verdict to standard output.
pub fn print(text: &str) -> Result<(), ReportError> {
    crate::stdout::write(text).map_err(ReportError::Stdout)
}
