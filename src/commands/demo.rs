//! `shadowdiff demo`: the whole product in one command, with no arguments and no network.
//! The same traffic is judged twice: first with no rules, so every difference shows, noise
//! included; then with `fixtures/demo.toml`, whose rules hide the noise, so what is left is
//! what the "migration" really changed.

use crate::cli::{DemoArgs, ThresholdArgs};
use shadowdiff::demo::drive::{self, DemoError, DemoOptions};
use shadowdiff::demo::DEMO_RULES;
use std::path::Path;
/// Runs both passes and prints both reports on standard output.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    // Kept after the run, so the `shadowdiff show` commands in the report work.
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("shadowdiff-demo"));
    std::fs::create_dir_all(&dir)?;
    let dir = dir.as_path();
    let rules = dir.join("demo.toml");
    std::fs::write(&rules, DEMO_RULES)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let raw = dir.join("demo-raw.db");
    let learnt = dir.join("demo-baseline.db");
    let judged = dir.join("demo-rules.db");
    for path in [&raw, &learnt, &judged] {
        remove_store(path)?;
    }
    let requests = args.requests as usize;
    say(&format!(
        "shadowdiff demo: {requests} requests through the proxy, between a primary and its \"migrated\" secondary\n\n\
         == 1/3: no rules: every difference shows, noise included ==\n"
    ))?;
    runtime.block_on(drive::run(DemoOptions {
        db: raw.clone(),
        config: None,
        baseline: false,
        requests,
        quiet: args.quiet,
    }))?;
    print_report(&raw)?;
    say(&format!(
        "\n-- the rules `shadowdiff suggest --db {}` proposes for this store --\n",
        raw.display()
    ))?;
    print_suggestions(&raw)?;
    say(
        "\n== 2/3: no rules, with --baseline (a second instance of the primary's version) ==\n   \
         (where the primary differs from its own twin is noise: request ids, timestamps;\n    \
         what the baseline hid is listed as `baseline <path>`; no config written)\n",
    )?;
    runtime.block_on(drive::run(DemoOptions {
        db: learnt.clone(),
        config: None,
        baseline: true,
        requests,
        quiet: args.quiet,
    }))?;
    print_report(&learnt)?;
    say(
        "\n== 3/3: the same traffic judged with fixtures/demo.toml ==\n   \
         (request ids and timestamps ignored, orders compared as a set keyed by id,\n    \
         prices within half a cent equal: what is left is what the migration changed)\n",
    )?;
    runtime.block_on(drive::run(DemoOptions {
        db: judged.clone(),
        config: Some(rules),
        baseline: false,
        requests,
        quiet: args.quiet,
    }))?;
    print_report(&judged)?;
    say(&format!(
        "\nThe stores are in {}: try `shadowdiff report --format html --db {} --output demo.html`.\n",
        dir.display(),
        judged.display()
    ))?;
    Ok(())
}

fn say(text: &str) -> Result<(), DemoError> {
    shadowdiff::stdout::write(text).map_err(DemoError::Stdout)
}

fn print_suggestions(db: &Path) -> anyhow::Result<()> {
    let selection = shadowdiff::report::Selection {
        stores: vec![db.into()],
        ..Default::default()
    };
    let (readers, filter) = selection.open()?;
    let found = shadowdiff::suggest::suggest(&readers, &filter, None, None)?;
    say(&shadowdiff::suggest::render_config(&found))?;
    Ok(())
}

fn print_report(db: &Path) -> Result<(), DemoError> {
    super::report::print_text_report(db.into(), None, 1, &ThresholdArgs::default())?;
    Ok(())
}

/// A rerun with `--out` starts from empty stores, so the report shows this run only.
fn remove_store(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}
