use clap::Parser;
use shadowdiff::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(_) => ExitCode::SUCCESS,
        Command::Report(_) => ExitCode::SUCCESS,
        Command::Replay(args) => match shadowdiff::replay::run(args) {
            Ok(_summary) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
