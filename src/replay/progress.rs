//! What a replay shows while it runs: an indicatif bar (rate, ETA, matched/mismatched) on
//! a terminal, a plain line every few seconds when stderr is a file or a CI log, nothing
//! with `--quiet`. Everything goes to stderr, so stdout stays for the report.

use super::ReplaySummary;
use crate::pipeline::Tally;
use crate::traffic::{self, EntryBound, Format};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, periodic lines otherwise.
    Auto,
    /// Nothing at all.
    Quiet,
}

/// Between two plain progress lines: often enough for a CI log, rare enough to read.
const LINE_INTERVAL: Duration = Duration::from_secs(5);
const BAR_INTERVAL: Duration = Duration::from_millis(200);

/// The running display.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress. With a bar, the file is counted in the background so the
    /// bar gains a length and an ETA once the count is known.
    pub fn start(
        mode: ProgressMode,
        input: &Path,
        format: Format,
        bound: EntryBound,
        repeat: u32,
        tally: Arc<Tally>,
    ) -> Progress {
        if mode == ProgressMode::Quiet {
            return Progress {
                mode,
                bar: None,
                ticker: None,
            };
        }
        if !std::io::stderr().is_terminal() {
            let started = Instant::now();
            let ticker = tokio::spawn(async move {
                let mut interval = tokio::time::interval(LINE_INTERVAL);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    eprintln!("replay: {}", line(&tally, started.elapsed()));
                }
            });
            return Progress {
                mode,
                bar: None,
                ticker: Some(ticker),
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {pos} requests {per_sec} {msg}",
            )
            .expect("a valid progress template"),
        );
        let counting = {
            let (bar, input) = (bar.clone(), input.to_path_buf());
            tokio::task::spawn_blocking(move || {
                if let Some(total) = traffic::count_requests(&input, format, bound) {
                    bar.set_length(total * u64::from(repeat));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{elapsed_precise} [{wide_bar}] {pos}/{len} {rate} ETA {eta} {msg}",
                        )
                        .expect("a valid progress template")
                        .with_key("rate", rate)
                        .progress_chars("=> "),
                    );
                }
            })
        };
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let _counting = counting;
                let mut interval = tokio::time::interval(BAR_INTERVAL);
                loop {
                    interval.tick().await;
                    bar.set_position(tally.judged());
                    bar.set_message(counts(&tally));
                }
            })
        };
        Progress {
            mode,
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    /// Stops the display and, unless quiet, prints the final counts.
    pub fn finish(self, summary: &ReplaySummary, completed: bool) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if self.mode == ProgressMode::Quiet {
            return;
        }
        let status = if completed { "done" } else { "stopped" };
        eprintln!("replay {status}: {summary}");
    }
}

/// Requests per second without indicatif's four decimals.
fn rate(state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = write!(out, "{:.0}/s", state.per_sec());
}

fn counts(tally: &Tally) -> String {
    format!(
        "matched {} mismatched {} errors {} skipped {}",
        tally.matched.load(Ordering::Relaxed),
        tally.mismatched.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
        tally.skipped.load(Ordering::Relaxed),
    )
}

fn line(tally: &Tally, elapsed: Duration) -> String {
    let done = tally.judged();
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    format!("{done} requests, {rate:.0}/s, {}", counts(tally))
}
