//! The `shadowdiff` binary: parse, set up logging, call the library, map the result to an
//! exit code: 0 ok, 1 differences found (gate and diff), 2 error.

use anyhow::Context;
use clap::Parser;
use shadowdiff::cli::{Cli, Command, ServeArgs};
use shadowdiff::config::ServeConfig;
use shadowdiff::report::GateStatus;
use std::process::ExitCode;

/// Exit code for bad input, unusable files and failures.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints reports; the proxy's lifecycle lines would only be noise there.
    init_tracing(if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    });
    let result = match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => verdict(shadowdiff::report::run_report(&args)),
        Command::Gate(args) => verdict(shadowdiff::report::run_gate(&args)),
        Command::Show(args) => shadowdiff::report::run_show(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Replay(args) => verdict(shadowdiff::replay::run_command(args)),
        Command::Demo(args) => shadowdiff::demo::command::run_command(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Diff(args) => shadowdiff::compare::files::run(&args, &mut std::io::stdout())
            .map(|outcome| ExitCode::from(outcome.exit_code()))
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shadowdiff: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// 0 pass, 1 a threshold was broken; errors become 2 in `main`.
fn verdict<E>(result: Result<GateStatus, E>) -> anyhow::Result<ExitCode>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Ok(match result? {
        GateStatus::Pass => ExitCode::SUCCESS,
        GateStatus::Fail => ExitCode::from(1),
    })
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Everything that can fail on bad settings fails before the listener opens.
        let prepared = shadowdiff::proxy::prepare(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen", config.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            primary = %config.primary,
            secondary = %config.secondary,
            "serving"
        );
        shadowdiff::proxy::serve(listener, config, prepared, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
