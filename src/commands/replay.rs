//! `replay` as a CI job: replays, prints the text report of this run, and applies the
//! gate's thresholds (0 pass, 1 a threshold broken).

use shadowdiff::cli::ReplayArgs;
use shadowdiff::replay::{self, ReplayError};
use shadowdiff::report::GateStatus;

pub fn run(args: ReplayArgs) -> anyhow::Result<GateStatus> {
    let thresholds = args.thresholds.clone();
    let summary = replay::run(args)?;
    if summary.invalid > 0 {
        shadowdiff::stdout::write(&format!(
            "{} invalid traffic lines skipped (--skip-invalid)\n",
            summary.invalid
        ))
        .map_err(ReplayError::Stdout)?;
    }
    let status = super::report::print_text_report(summary.db, Some(summary.run), 3, &thresholds)?;
    Ok(status)
}
