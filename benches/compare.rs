//! Throughput of normalize + diff on JSON pairs of 1 KB, 10 KB and 1 MB (both sides counted).
//!
//! Three pairs per size:
//! - `equal-bytes`: identical bytes, which the engine settles without parsing;
//! - `equal-reordered`: the same document with every object's keys in reverse order and
//!   other whitespace, so both sides are parsed, keys sorted and walked in full: the
//!   honest "equal" figure;
//! - `different`: every tenth record has a changed field, rendered into differences;
//! - `reordered`: the records in reverse order, the `reordered` kind's permutation check
//!   (one difference at `body/items`).
//!
//! Run: `cargo bench --bench compare -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use shadowdiff::compare::{Comparator, RulesConfig};
use std::hint::black_box;

fn record(i: usize, changed: bool) -> Value {
    json!({
        "id": i,
        "name": format!("user-{i}"),
        "email": format!("user{i}@example.com"),
        "active": !i.is_multiple_of(3),
        "score": if changed { i as f64 * 1.5 + 1.0 } else { i as f64 * 1.5 },
        "tags": ["alpha", "beta", "gamma"],
        "address": { "city": "Lisbon", "zip": format!("{:05}", i * 7 % 100000) },
    })
}

/// A document of about `target` bytes of compact JSON.
fn document(target: usize, change_every_tenth: bool) -> Value {
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < target {
        let r = record(i, change_every_tenth && i % 10 == 5);
        size += r.to_string().len() + 1;
        items.push(r);
        i += 1;
    }
    json!({ "count": items.len(), "items": items })
}

/// The same value as JSON text with every object's keys in reverse order and spaces after
/// separators (serde_json's map is sorted, so this is written by hand).
fn reordered_text(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(": ");
                reordered_text(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                reordered_text(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn bench(c: &mut Criterion) {
    let engine = Comparator::new(&RulesConfig::default()).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let mut group = c.benchmark_group("compare_json");
    for (label, size) in [("1KB", 1_000), ("10KB", 10_000), ("1MB", 1_000_000)] {
        let base = document(size, false);
        let primary = serde_json::to_vec(&base).unwrap();
        let pairs = [
            ("equal-bytes", primary.clone()),
            ("equal-reordered", {
                let mut text = String::new();
                reordered_text(&base, &mut text);
                text.into_bytes()
            }),
            (
                "different",
                serde_json::to_vec(&document(size, true)).unwrap(),
            ),
            ("reordered", {
                let mut reversed = base.clone();
                if let Some(items) = reversed["items"].as_array_mut() {
                    items.reverse();
                }
                serde_json::to_vec(&reversed).unwrap()
            }),
        ];
        for (kind, secondary) in pairs {
            group.throughput(Throughput::Bytes((primary.len() + secondary.len()) as u64));
            group.bench_with_input(BenchmarkId::new(kind, label), &secondary, |b, secondary| {
                b.iter(|| {
                    let verdict = engine.compare_parts(
                        "GET /bench",
                        (StatusCode::OK, &headers, black_box(&primary)),
                        (StatusCode::OK, &headers, black_box(secondary)),
                    );
                    black_box(verdict)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
