//! Store throughput: mismatches per second through the real writer thread into a real
//! SQLite file, and the time to build a report from a store of that many mismatches.
//!
//! `cargo bench --bench store`. The 1,000,000-mismatch report figure comes from
//! `bench/report-1m.sh` (it needs a store too large to rebuild per iteration).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shadowdiff::report::model::{Report, Scope};
use shadowdiff::store::workload::synthetic_mismatch;
use shadowdiff::store::{ReadFilter, RunInfo, StoreOptions, StoreReader, StoreWriter};
use std::time::{Duration, SystemTime};

const MISMATCHES: u64 = 50_000;

fn records() -> Vec<shadowdiff::store::Record> {
    let start = SystemTime::now() - Duration::from_secs(3600);
    (0..MISMATCHES)
        .map(|i| synthetic_mismatch(i, start, Duration::from_millis(60)))
        .collect()
}

fn fill(path: &std::path::Path, records: Vec<shadowdiff::store::Record>) {
    let writer = StoreWriter::open(path, RunInfo::default(), StoreOptions::default()).unwrap();
    let sender = writer.sender();
    for record in records {
        sender.send(record).unwrap();
    }
    drop(sender);
    writer.finish().unwrap();
}

fn writer_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MISMATCHES));
    group.bench_function("write_mismatches", |b| {
        b.iter_batched(
            || (tempfile::tempdir().unwrap(), records()),
            |(dir, records)| fill(&dir.path().join("bench.db"), records),
            BatchSize::PerIteration,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("report.db");
    fill(&db, records());
    group.bench_function("report_model", |b| {
        b.iter(|| {
            let reader = StoreReader::open(&db).unwrap();
            let scope = Scope {
                filter: ReadFilter::default(),
                route: None,
                examples_per_route: 3,
            };
            Report::build(&[reader], &scope).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, writer_throughput);
criterion_main!(benches);
