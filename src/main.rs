use clap::Parser;
use shadowdiff::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(_) => ExitCode::SUCCESS,
        Command::Report(_) => ExitCode::SUCCESS,
        Command::Diff(args) => match shadowdiff::compare::files::run(&args, &mut std::io::stdout())
        {
            Ok(outcome) => ExitCode::from(outcome.exit_code()),
            Err(e) => {
                eprintln!("shadowdiff diff: {e}");
                ExitCode::from(2)
            }
        },
    }
}
