//! One writer process of the store benchmark (bench/store-pg.sh): sends N mismatches of two
//! 100-byte differences each through the real store writer as fast as it takes them, and
//! prints the rate. `cargo run --release --example store_writer -- STORE N [INSTANCE]`.

use shadowdiff::store::workload::bench_mismatch;
use shadowdiff::store::{Location, RunInfo, StoreOptions, StoreWriter};
use std::time::{Instant, SystemTime};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || anyhow::anyhow!("usage: store_writer STORE N [INSTANCE]");
    let store = Location::parse(&args.next().ok_or_else(usage)?)?;
    let count: u64 = args.next().ok_or_else(usage)?.parse()?;
    let instance = args.next().unwrap_or_default();
    let run = RunInfo {
        mode: "replay".into(),
        primary: "http://primary.bench".into(),
        secondary: "http://secondary.bench".into(),
        instance: instance.clone(),
        ..RunInfo::default()
    };
    let writer = StoreWriter::open(&store, run, StoreOptions::default())?;
    let sender = writer.sender();
    let began = Instant::now();
    for i in 0..count {
        sender.send(bench_mismatch(i, SystemTime::now()))?;
    }
    drop(sender);
    writer.finish()?;
    let elapsed = began.elapsed().as_secs_f64();
    println!(
        "{instance}: {count} mismatches in {elapsed:.2} s: {:.0} mismatches/s",
        count as f64 / elapsed
    );
    Ok(())
}
