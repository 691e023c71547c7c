//! `suggest`: the store selection turned into the library's, the proposals printed as a
//! config or written to `--write FILE`.

use crate::cli::SuggestArgs;
use shadowdiff::suggest::{self, SuggestError};

/// `shadowdiff suggest`: every stored difference read once, the config printed.
pub fn run(args: &SuggestArgs) -> anyhow::Result<()> {
    let selection = super::report::selection(&args.stores, 0)?;
    let (readers, filter) = selection.open()?;
    let found = suggest::suggest(&readers, &filter, selection.route.as_ref(), None)?;
    let config = suggest::render_config(&found);
    match &args.write {
        Some(path) => {
            std::fs::write(path, &config).map_err(|source| SuggestError::Output {
                path: path.clone(),
                source,
            })?;
            eprintln!(
                "shadowdiff: wrote {} rule(s) to {} ({} path(s) look real)",
                found.rules().count(),
                path.display(),
                found.looks_real.len()
            );
        }
        None => shadowdiff::stdout::write(&config).map_err(SuggestError::Stdout)?,
    }
    Ok(())
}
