//! Fills a store with N synthetic mismatches through the real writer, for the report
//! benchmark and the example reports: `cargo run --release --example fill_store -- PATH N
//! [MATCHES_PER_MISMATCH]`.

use shadowdiff::store::workload::{synthetic_match, synthetic_mismatch};
use shadowdiff::store::{RunInfo, StoreOptions, StoreWriter};
use std::time::{Duration, Instant, SystemTime};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: fill_store PATH N"))?;
    let count: u64 = args.next().unwrap_or_else(|| "1000000".into()).parse()?;
    let matches_per_mismatch: u64 = args.next().unwrap_or_else(|| "0".into()).parse()?;
    let run = RunInfo {
        mode: "replay".into(),
        primary: "http://primary.bench".into(),
        secondary: "http://secondary.bench".into(),
        ..RunInfo::default()
    };
    let location = shadowdiff::store::Location::parse(&path)?;
    let writer = StoreWriter::open(&location, run, StoreOptions::default())?;
    let sender = writer.sender();
    let start = SystemTime::now() - Duration::from_millis(60 * count);
    let began = Instant::now();
    for i in 0..count {
        let spacing = Duration::from_millis(60);
        // Mismatch rate varies by route (route i % 20 matches i % 20 times as often).
        let matches = matches_per_mismatch * (1 + i % 20);
        for _ in 0..matches {
            sender.send(synthetic_match(i, start, spacing))?;
        }
        sender.send(synthetic_mismatch(i, start, spacing))?;
    }
    drop(sender);
    writer.finish()?;
    let elapsed = began.elapsed();
    println!(
        "{count} mismatches in {:.2} s: {:.0} mismatches/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
