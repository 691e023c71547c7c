//! The `shadowdiff` binary: parse, set up logging, call the library, map the result to an
//! exit code: 0 ok, 1 differences found (gate and diff), 2 error.

mod cli;
mod commands;

use crate::cli::{Cli, Command, ConfigCommand, LogFormat, ServeArgs};
use anyhow::Context;
use clap::Parser;
use shadowdiff::config::ServeConfig;
use shadowdiff::report::GateStatus;
use std::process::ExitCode;

/// A proxy allocates and frees small buffers for every request on several threads; glibc's
/// allocator spent about a sixth of the proxy's CPU on that (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad input, unusable files and failures.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints reports; the proxy's lifecycle lines would only be noise there.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    };
    if let Err(error) = init_tracing(cli.log_format, cli.log_level.as_deref(), default_level) {
        eprintln!("shadowdiff: --log-level: {error}");
        return ExitCode::from(EXIT_ERROR);
    }
    let result = match cli.command {
        Command::Serve(args) => serve(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => verdict(commands::report::run_report(&args)),
        Command::Gate(args) => verdict(commands::report::run_gate(&args)),
        Command::Show(args) => commands::report::run_show(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Ctl(args) => commands::ctl::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Store(command) => commands::store::run(&command).map(|()| ExitCode::SUCCESS),
        Command::Suggest(args) => commands::suggest::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Replay(args) => commands::replay::run(args).map(exit_code),
        Command::Demo(args) => commands::demo::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Diff(args) => commands::diff::run(&args, &mut std::io::stdout())
            .map(|outcome| ExitCode::from(outcome.exit_code()))
            .map_err(Into::into),
        Command::Config(ConfigCommand::Check(args)) => {
            config_check(&args.file).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("shadowdiff: {}", describe(&error));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, joined by ": ", each said once: most of the library's errors
/// already put their cause's text in their own message (`{path}: {source}`), and anyhow's
/// `{:#}` would repeat it.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if cause.is_empty() || text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// 0 pass, 1 a threshold was broken; errors become 2 in `main`.
fn verdict<E>(result: Result<GateStatus, E>) -> anyhow::Result<ExitCode>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Ok(exit_code(result?))
}

fn exit_code(status: GateStatus) -> ExitCode {
    match status {
        GateStatus::Pass => ExitCode::SUCCESS,
        GateStatus::Fail => ExitCode::from(1),
    }
}

/// `--log-level` wins over RUST_LOG, which wins over `default_level`. Logs go to stderr so that
/// commands printing reports keep stdout clean.
fn init_tracing(format: LogFormat, level: Option<&str>, default_level: &str) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::try_new(level).map_err(|e| format!("{level:?}: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
    };
    use std::io::IsTerminal;
    // Colour codes only for people: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Validates a config file as serve would read it (the `SHADOWDIFF_*` environment
/// included) and prints the effective settings.
fn config_check(file: &std::path::Path) -> anyhow::Result<()> {
    use clap::{Args, FromArgMatches};
    let serve = ServeArgs::augment_args(clap::Command::new("serve").no_binary_name(true));
    let matches =
        serve.try_get_matches_from([std::ffi::OsStr::new("--config"), file.as_os_str()])?;
    let checked = ServeConfig::check(&ServeArgs::from_arg_matches(&matches)?.overrides)?;
    let comparator = shadowdiff::compare::Comparator::new(&checked.config.rules)?;
    shadowdiff::stdout::write(&checked.effective(&comparator.rule_ids()))
        .context("writing to standard output")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::load(&args.overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Everything that can fail on bad settings fails before the listener opens.
        let prepared = shadowdiff::proxy::prepare(&config)?;
        let listen = config.listener.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}: cannot listen"))?;
        let admin = match config.admin.addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--admin {addr}: cannot listen"))?,
            ),
            None => None,
        };
        // Listening for SIGHUP before saying "serving": a reload sent right after that line
        // must not hit the default action (terminate).
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => {
                let running = config.clone();
                tokio::spawn(reload_on_hangup(hangups, args, running, prepared.live()));
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; config reload is off"),
        }
        tracing::info!(
            listen = %listener.local_addr()?,
            admin = %admin
                .as_ref()
                .and_then(|a| a.local_addr().ok())
                .map_or_else(|| "off".to_string(), |a| a.to_string()),
            tls = config.listener.tls.is_some(),
            primary = %shadowdiff::redact::url::shown(&config.primary.url),
            secondary = %shadowdiff::redact::url::shown(&config.secondary.url),
            "serving"
        );
        shadowdiff::proxy::serve_with_admin(listener, admin, config, prepared, shutdown_signal())
            .await?;
        Ok(())
    })
}

/// On SIGHUP, reads the configuration again (same flags, environment and file) and applies
/// its compare rules and sampling. Connections are untouched; a bad file changes nothing.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    args: ServeArgs,
    running: ServeConfig,
    live: shadowdiff::proxy::Live,
) {
    while hangups.recv().await.is_some() {
        let result = ServeConfig::load(&args.overrides)
            .map_err(shadowdiff::proxy::ReloadError::from)
            .inspect_err(|_| live.count_rejected())
            .and_then(|config| live.reload(&config).map(|()| config));
        match result {
            Ok(config) => {
                tracing::info!(
                    digest = %config.digest,
                    sample = config.shadow.sample,
                    "config reloaded: compare rules and sampling applied"
                );
                let ignored = running.restart_only_changes(&config);
                if !ignored.is_empty() {
                    tracing::warn!(
                        settings = %ignored.join(", "),
                        "config reload: these changed settings take effect on restart only"
                    );
                }
            }
            Err(error) => tracing::error!(
                %error,
                "config reload rejected; the previous rules and sampling stay"
            ),
        }
    }
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

#[cfg(test)]
mod tests {
    use shadowdiff::config::{Overrides, ServeConfig};

    /// Every serve flag is a setting the config knows: a flag the merge never reads would
    /// be accepted and silently do nothing.
    #[test]
    fn every_serve_flag_is_a_setting() {
        for arg in crate::cli::serve_flags() {
            let key = arg.get_id().as_str();
            if key == "config" {
                continue;
            }
            let result = ServeConfig::load(
                &Overrides::new()
                    .with("primary", "http://a")
                    .with("secondary", "http://b")
                    .with(key, "true"),
            );
            if let Err(error) = result {
                assert!(
                    !error.to_string().contains("not a serve setting"),
                    "--{key}: {error}"
                );
            }
        }
    }
}
