//! `replay` as a CI job: reads its flags into [`ReplayOptions`] (upstreams, store and
//! rules through serve's own settings merge), replays, prints the text report of this run,
//! and applies the gate's thresholds (0 pass, 1 a threshold broken).

use crate::cli::{ReplayArgs, TrafficFormat};
use anyhow::Context;
use shadowdiff::config::{Overrides, ServeConfig};
use shadowdiff::replay::{self, parse_rate, ProgressMode, ReplayError, ReplayOptions};
use shadowdiff::report::GateStatus;
use shadowdiff::traffic::Format;

pub fn run(args: ReplayArgs) -> anyhow::Result<GateStatus> {
    let thresholds = args.thresholds.clone();
    let summary = replay::run(options(args)?)?;
    if summary.invalid > 0 {
        shadowdiff::stdout::write(&format!(
            "{} invalid traffic lines skipped (--skip-invalid)\n",
            summary.invalid
        ))
        .map_err(ReplayError::Stdout)?;
    }
    let status =
        super::report::print_text_report(summary.store, Some(summary.run), 3, &thresholds)?;
    Ok(status)
}

/// Replay's flags over the file `--config` names, validated as serve validates them.
fn options(args: ReplayArgs) -> anyhow::Result<ReplayOptions> {
    let mut overrides = Overrides::over_file(args.config);
    for (key, value) in [
        ("primary", args.primary),
        ("secondary", args.secondary),
        ("baseline", args.baseline),
        ("noise-window", args.noise_window),
        ("noise-threshold", args.noise_threshold),
        ("noise-relative", args.noise_relative),
    ] {
        if let Some(value) = value {
            overrides.set(key, value);
        }
    }
    if let Some(db) = args.db {
        let db = db
            .to_str()
            .context("--db: the path is not valid UTF-8")?
            .to_string();
        overrides.set("db", db);
    }
    if let Some(store) = args.store {
        overrides.set("store", store);
    }
    if let Some(marker) = args.shadow_marker {
        overrides.set("shadow-marker", marker);
    }
    if let Some(instance) = args.instance {
        overrides.set("instance", instance);
    }
    if args.shadow_writes {
        overrides.set("shadow-writes", "true");
    }
    let config = if args.against_recorded {
        // The primary's answers are in the file: it need not be given (a config file's
        // is left uncalled), but a baseline, a second copy of the primary, cannot be.
        let checked = ServeConfig::check(&overrides)?;
        if checked.unset.contains(&"secondary") {
            anyhow::bail!("--secondary: required");
        }
        if checked.config.baseline.is_some() {
            anyhow::bail!(
                "--baseline: not with --against-recorded, which calls no instance of the primary's version"
            );
        }
        checked.config
    } else {
        ServeConfig::load(&overrides)?
    };
    let rate = args
        .rate
        .as_deref()
        .map(parse_rate)
        .transpose()
        .map_err(|reason| anyhow::anyhow!("--rate: {reason}"))?;
    let format = match args.format {
        TrafficFormat::Auto => None,
        TrafficFormat::Jsonl => Some(Format::JsonLines),
        TrafficFormat::Har => Some(Format::Har),
        TrafficFormat::AccessLog => Some(Format::AccessLog),
        TrafficFormat::Envoy => Some(Format::Envoy),
        TrafficFormat::Gor => Some(Format::Gor),
    };
    Ok(ReplayOptions {
        input: args.input,
        format,
        config,
        concurrency: args.concurrency as usize,
        threads: args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |n| n as usize,
        ),
        rate,
        repeat: args.repeat,
        skip_invalid: args.skip_invalid,
        against_recorded: args.against_recorded,
        progress: if args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
    })
}
