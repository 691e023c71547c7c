//! `shadowdiff store copy|prune|migrate`: flags turned into store locations, the library's
//! store commands run, one line each of what they did.

use crate::cli::StoreCommand;
use anyhow::Context;
use shadowdiff::store::{manage, Location};

pub fn run(command: &StoreCommand) -> anyhow::Result<()> {
    let location = |flag: &str, text: &str| {
        Location::parse(text).with_context(|| format!("{flag}: not a store location"))
    };
    match command {
        StoreCommand::Copy(args) => {
            let from = location("--from", &args.from)?;
            let to = location("--to", &args.to)?;
            let done = manage::copy(&from, &to)?;
            say(&format!(
                "copied {} into {}: {} new runs, {} updated, {} mismatches, {} differences\n",
                from.shown(),
                to.shown(),
                done.new_runs,
                done.updated_runs,
                done.mismatches,
                done.differences
            ))
        }
        StoreCommand::Prune(args) => {
            let store = location("--store", &args.store)?;
            let span = humantime::parse_duration(&args.older_than).map_err(|e| {
                anyhow::anyhow!(
                    "--older-than: {:?}: {e} (use e.g. 30d, 12h)",
                    args.older_than
                )
            })?;
            let done = manage::prune(&store, span)?;
            let kept_from = chrono::DateTime::from_timestamp_millis(done.kept_from_ms)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            let removed: Vec<String> = done
                .removed
                .iter()
                .map(|(table, n)| format!("{table} {n}"))
                .collect();
            say(&format!(
                "pruned {}: everything before {kept_from} removed ({}); what remains is whole\n",
                store.shown(),
                removed.join(", ")
            ))
        }
        StoreCommand::Migrate(args) => {
            let store = location("--store", &args.store)?;
            let (before, after) = manage::migrate(&store)?;
            match before == after {
                true => say(&format!("{}: already at schema {after}\n", store.shown())),
                false => say(&format!("{}: schema {before} -> {after}\n", store.shown())),
            }
        }
    }
}

fn say(text: &str) -> anyhow::Result<()> {
    shadowdiff::stdout::write(text).context("writing to standard output")
}
