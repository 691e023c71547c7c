use clap::Parser;
use shadowdiff::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(_) => ExitCode::SUCCESS,
        Command::Report(_) => ExitCode::SUCCESS,
    }
}
