//! Cost of redacting one stored mismatch (request, both JSON responses, differences), next
//! to the comparison that precedes it, on bodies of 10 KB and 1 MB where every record
//! carries a secret `token` and every tenth record differs.
//!
//! Run: `cargo bench --bench redact -- --warm-up-time 1 --measurement-time 3`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use shadowdiff::compare::{Comparator, RulesConfig};
use shadowdiff::exchange::{Captured, RecordedRequest};
use shadowdiff::redact::{RedactRules, Redactor};
use shadowdiff::store::MismatchDetail;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn document(target: usize, changed: bool) -> Value {
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < target {
        let r = json!({
            "id": i,
            "name": format!("user-{i}"),
            "token": format!("tok-{i}-{}", if changed && i % 10 == 5 { "b" } else { "a" }),
            "address": { "city": "Lisbon", "zip": format!("{:05}", i * 7 % 100000) },
        });
        size += r.to_string().len() + 1;
        items.push(r);
        i += 1;
    }
    json!({ "count": items.len(), "items": items })
}

fn bench(c: &mut Criterion) {
    let engine = Comparator::new(&RulesConfig::default()).unwrap();
    let redactor = Redactor::new(Arc::new(RedactRules::default()), [7; 32]);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let captured = |body: &[u8]| Captured {
        trailers: Default::default(),
        status: StatusCode::OK,
        headers: headers.clone(),
        body: Bytes::copy_from_slice(body),
        latency: Duration::ZERO,
    };
    let mut group = c.benchmark_group("redact_mismatch");
    for (label, size) in [("10KB", 10_000), ("1MB", 1_000_000)] {
        let primary = serde_json::to_vec(&document(size, false)).unwrap();
        let secondary = serde_json::to_vec(&document(size, true)).unwrap();
        let (p, s) = (captured(&primary), captured(&secondary));
        group.throughput(Throughput::Bytes((primary.len() + secondary.len()) as u64));
        group.bench_function(BenchmarkId::new("compare", label), |b| {
            b.iter(|| black_box(engine.compare("GET /bench", black_box(&p), black_box(&s))))
        });
        let verdict = engine.compare("GET /bench", &p, &s);
        let detail = MismatchDetail {
            request: RecordedRequest {
                method: Method::GET,
                uri: "/bench?access_token=abc&page=1".parse().unwrap(),
                headers: headers.clone(),
                body: Bytes::new(),
            },
            primary: p.clone(),
            secondary: s.clone(),
            differences: verdict.differences,
            body_diff: verdict.body_diff,
            rewrites: Vec::new(),
        };
        group.bench_function(BenchmarkId::new("redact", label), |b| {
            b.iter_batched(
                || detail.clone(),
                |mut detail| {
                    redactor.mismatch(&mut detail);
                    detail
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
