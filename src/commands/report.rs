//! `report`, `gate` and `show`: flags turned into the report module's typed selection,
//! thresholds and format, the result printed. Also the text report that `replay` and
//! `demo` end with.

use crate::cli::{
    ColorChoice, GateArgs, ReportArgs, ReportFormat, ShowArgs, StoreSelection, ThresholdArgs,
};
use shadowdiff::report::gate::Thresholds;
use shadowdiff::report::{self, Format, GateStatus, ReportError, Selection};
use shadowdiff::store::{Location, StoreReader};
use std::io::IsTerminal;

/// `shadowdiff report`: renders the report; with thresholds, also gates.
pub fn run_report(args: &ReportArgs) -> Result<GateStatus, ReportError> {
    report_of(selection(&args.stores, args.examples)?, args)
}

/// The report of `wanted`, rendered and gated as `args` say (its stores are in `wanted`).
fn report_of(mut wanted: Selection, args: &ReportArgs) -> Result<GateStatus, ReportError> {
    let thresholds = thresholds(&args.thresholds)?;
    wanted.suggestions = matches!(args.format, ReportFormat::Text | ReportFormat::Html);
    let mut report = report::load(&wanted)?;
    let status = report::apply_gate(&mut report, &thresholds);
    let format = match args.format {
        ReportFormat::Json => Format::Json,
        ReportFormat::Text => Format::Text {
            colour: args.output.is_none() && std::io::stdout().is_terminal(),
            wide: args.wide,
        },
        ReportFormat::Markdown => Format::Markdown,
        ReportFormat::Html => Format::Html,
        ReportFormat::Junit => Format::Junit,
    };
    let rendered = report::render(
        &report,
        format,
        (!thresholds.is_empty()).then_some(&thresholds),
    );
    match &args.output {
        Some(path) => std::fs::write(path, rendered).map_err(|source| ReportError::Output {
            path: path.clone(),
            source,
        })?,
        None => report::print(&rendered)?,
    }
    Ok(status)
}

/// `shadowdiff gate`: a one-screen verdict.
pub fn run_gate(args: &GateArgs) -> Result<GateStatus, ReportError> {
    let thresholds = thresholds(&args.thresholds)?;
    if thresholds.max_mismatch_rate.is_none() {
        return Err(ReportError::BadFlag {
            flag: "--max-mismatch-rate",
            reason: "gate needs it (a rate such as 0.01 or 1%)".into(),
        });
    }
    let mut report = report::load(&selection(&args.stores, 0)?)?;
    let status = report::apply_gate(&mut report, &thresholds);
    report::print(&report::render_gate(&report))?;
    Ok(status)
}

/// `shadowdiff show`: one stored mismatch in full.
pub fn run_show(args: &ShowArgs) -> Result<(), ReportError> {
    let location = match (&args.db, &args.store) {
        (Some(path), _) => Location::Sqlite(path.clone()),
        (None, Some(text)) => parse_store("--store", text)?,
        (None, None) => {
            return Err(ReportError::BadFlag {
                flag: "--store",
                reason: "show needs the store holding the mismatch (--store or --db)".into(),
            })
        }
    };
    let reader = StoreReader::open(&location)?;
    let row = reader.mismatch(args.id)?;
    let options = report::ShowOptions {
        width: columns(std::env::var("COLUMNS").ok().as_deref()),
        colour: match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            // https://no-color.org: set and not empty means no colour.
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        },
    };
    report::print(&report::render_mismatch(&row, options))
}

/// The terminal's width from `COLUMNS` (shells set it, though seldom export it), else 100:
/// no terminal-size query, so the output is the same in a pipe as on screen.
fn columns(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// The text report of one store (one run of it, if given), as `replay` and `demo` print
/// it at their end, gated by `thresholds`.
pub fn print_text_report(
    store: Location,
    run: Option<i64>,
    examples: usize,
    thresholds: &ThresholdArgs,
) -> Result<GateStatus, ReportError> {
    let wanted = Selection {
        stores: vec![store],
        run,
        examples_per_route: examples,
        ..Selection::default()
    };
    report_of(
        wanted,
        &ReportArgs {
            stores: StoreSelection::default(),
            format: ReportFormat::Text,
            output: None,
            examples,
            wide: false,
            thresholds: thresholds.clone(),
        },
    )
}

/// A `--store` value, or the flag's error naming what is wrong with it.
pub fn parse_store(flag: &'static str, text: &str) -> Result<Location, ReportError> {
    Location::parse(text).map_err(|e| ReportError::BadFlag {
        flag,
        reason: e.to_string(),
    })
}

fn thresholds(args: &ThresholdArgs) -> Result<Thresholds, ReportError> {
    Ok(Thresholds::parse(
        args.max_mismatch_rate.as_deref(),
        &args.route_max,
        args.max_error_rate.as_deref(),
        args.min_compared,
    )?
    .with_latency(&args.max_latency_ratio, &args.route_max_latency_ratio)?)
}

pub fn selection(
    stores: &StoreSelection,
    examples_per_route: usize,
) -> Result<Selection, ReportError> {
    let since = stores
        .since
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text).map_err(|e| ReportError::BadFlag {
                flag: "--since",
                reason: format!("{text:?}: {e} (use e.g. 30m, 2h, 1d)"),
            })
        })
        .transpose()?;
    // The one route grammar (`shadowdiff::route`); its matcher is polynomial in pattern and
    // route length (issue 12, bug 11; pinned by tests/integration/pattern_complexity.rs).
    let route = stores
        .route
        .as_deref()
        .map(|text| {
            shadowdiff::route::RoutePattern::parse(text).map_err(|reason| ReportError::BadFlag {
                flag: "--route",
                reason: format!("{text:?}: {reason}"),
            })
        })
        .transpose()?;
    let mut locations: Vec<Location> = stores.db.iter().cloned().map(Location::Sqlite).collect();
    for text in &stores.store {
        locations.push(parse_store("--store", text)?);
    }
    if let Some(name) = &stores.instance {
        if name.trim().is_empty() {
            return Err(ReportError::BadFlag {
                flag: "--instance",
                reason: "an empty instance name".into(),
            });
        }
    }
    Ok(Selection {
        stores: locations,
        instance: stores.instance.clone(),
        since,
        run: stores.run,
        route,
        examples_per_route,
        suggestions: false,
    })
}
