use clap::Parser;
use shadowdiff::cli::{Cli, Command};
use shadowdiff::report::{GateStatus, GateStatus::Pass, ReportError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(_) => ExitCode::SUCCESS,
        Command::Report(args) => verdict_exit(shadowdiff::report::run_report(&args)),
        Command::Gate(args) => verdict_exit(shadowdiff::report::run_gate(&args)),
        Command::Show(args) => verdict_exit(shadowdiff::report::run_show(&args).map(|()| Pass)),
    }
}

/// 0 pass, 1 a threshold was broken, 2 the report could not be made.
fn verdict_exit(result: Result<GateStatus, ReportError>) -> ExitCode {
    match result {
        Ok(GateStatus::Pass) => ExitCode::SUCCESS,
        Ok(GateStatus::Fail) => ExitCode::from(1),
        Err(error) => {
            eprintln!("shadowdiff: {error}");
            ExitCode::from(2)
        }
    }
}
