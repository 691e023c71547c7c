//! Structural diff of two JSON documents.
//!
//! Parsing uses `jiter`, which keeps integers beyond 64 bits exact (as big integers) without
//! serde_json's crate-wide `arbitrary_precision` switch, which would change how every other
//! module's serde_json numbers behave. Numbers compare by value: `1` equals `1.0`.

use super::path::escape_key;
use super::sink::Sink;
use super::DiffKind;
use jiter::JsonValue;
use std::collections::HashMap;

pub type Json<'a> = JsonValue<'a>;

pub fn parse(bytes: &[u8]) -> Result<Json<'_>, String> {
    JsonValue::parse(bytes, false).map_err(|e| {
        let position = e.get_position(bytes);
        format!(
            "invalid JSON at line {} column {}: {}",
            position.line, position.column, e.error_type
        )
    })
}

/// Diffs `a` (primary) against `b` (secondary) below `path`.
pub fn diff(sink: &mut Sink<'_>, path: &mut String, a: &Json<'_>, b: &Json<'_>) {
    if sink.done() {
        return;
    }
    match (a, b) {
        (JsonValue::Null, JsonValue::Null) => {}
        (JsonValue::Bool(x), JsonValue::Bool(y)) => {
            if x != y {
                changed(sink, path, a, b);
            }
        }
        (JsonValue::Str(x), JsonValue::Str(y)) => {
            if x != y {
                match sink.masked_equal(x, y) {
                    Some(rule) if sink.ignored_by(path).is_none() => sink.hide(rule),
                    _ => changed(sink, path, a, b),
                }
            }
        }
        (JsonValue::Array(x), JsonValue::Array(y)) => diff_arrays(sink, path, x, y),
        (JsonValue::Object(x), JsonValue::Object(y)) => diff_objects(sink, path, x, y),
        _ => match numbers_equal(a, b) {
            Some(true) => {}
            Some(false) => {
                let tolerated = sink
                    .rules
                    .tolerance
                    .filter(|(t, _)| t.accepts(as_f64(a), as_f64(b)))
                    .map(|(_, id)| id);
                match tolerated {
                    Some(rule) if sink.ignored_by(path).is_none() => sink.hide(rule),
                    _ => changed(sink, path, a, b),
                }
            }
            None => sink.emit(path, DiffKind::Type, || Some(render(a)), || Some(render(b))),
        },
    }
}

fn changed(sink: &mut Sink<'_>, path: &str, a: &Json<'_>, b: &Json<'_>) {
    sink.emit(
        path,
        DiffKind::Changed,
        || Some(render(a)),
        || Some(render(b)),
    );
}

/// `None` when either is not a number.
fn numbers_equal(a: &Json<'_>, b: &Json<'_>) -> Option<bool> {
    use JsonValue::{BigInt, Float, Int};
    Some(match (a, b) {
        (Int(x), Int(y)) => x == y,
        (BigInt(x), BigInt(y)) => x == y,
        // jiter only makes a big integer of what does not fit an i64.
        (Int(_), BigInt(_)) | (BigInt(_), Int(_)) => false,
        (Int(_) | BigInt(_) | Float(_), Float(_)) | (Float(_), Int(_) | BigInt(_)) => {
            as_f64(a) == as_f64(b)
        }
        _ => return None,
    })
}

fn as_f64(v: &Json<'_>) -> f64 {
    match v {
        JsonValue::Int(i) => *i as f64,
        JsonValue::Float(f) => *f,
        JsonValue::BigInt(b) => b.to_string().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn push_index(path: &mut String, i: usize) -> usize {
    use std::fmt::Write;
    let len = path.len();
    path.push('/');
    let _ = write!(path, "{i}");
    len
}

fn diff_objects(
    sink: &mut Sink<'_>,
    path: &mut String,
    x: &[(std::borrow::Cow<'_, str>, Json<'_>)],
    y: &[(std::borrow::Cow<'_, str>, Json<'_>)],
) {
    // Fast path: both sides wrote the same keys in the same order.
    if x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.0 == b.0) {
        for ((key, a), (_, b)) in x.iter().zip(y) {
            let len = path.len();
            path.push('/');
            escape_key(key, path);
            diff(sink, path, a, b);
            path.truncate(len);
            if sink.done() {
                return;
            }
        }
        return;
    }
    let x = sorted_last_wins(x);
    let y = sorted_last_wins(y);
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        if sink.done() {
            return;
        }
        let order = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.0.cmp(b.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let len = path.len();
        path.push('/');
        match order {
            std::cmp::Ordering::Equal => {
                escape_key(x[i].0, path);
                diff(sink, path, x[i].1, y[j].1);
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                escape_key(x[i].0, path);
                let value = x[i].1;
                sink.emit(path, DiffKind::Removed, || Some(render(value)), || None);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                escape_key(y[j].0, path);
                let value = y[j].1;
                sink.emit(path, DiffKind::Added, || None, || Some(render(value)));
                j += 1;
            }
        }
        path.truncate(len);
    }
}

/// Keys sorted; of duplicate keys the last one counts, as in most parsers.
fn sorted_last_wins<'v, 'a>(
    entries: &'v [(std::borrow::Cow<'a, str>, Json<'a>)],
) -> Vec<(&'v str, &'v Json<'a>)> {
    let mut sorted: Vec<(&str, &Json<'a>)> = entries.iter().map(|(k, v)| (k.as_ref(), v)).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(&str, &Json<'a>)> = Vec::with_capacity(sorted.len());
    for entry in sorted {
        match out.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => out.push(entry),
        }
    }
    out
}

fn diff_arrays(sink: &mut Sink<'_>, path: &mut String, x: &[Json<'_>], y: &[Json<'_>]) {
    let rule = if sink.rules.unordered.is_empty() {
        None
    } else {
        let segs = super::path::segments(path);
        sink.rules
            .unordered
            .iter()
            .find(|(u, _)| u.pattern.matches(&segs))
            .map(|(u, id)| (u.key.clone(), *id))
    };
    let reordered = match &rule {
        None => {
            diff_ordered(sink, path, x, y);
            false
        }
        Some((None, _)) => diff_multiset(sink, path, x, y),
        Some((Some(key), _)) => diff_keyed(sink, path, x, y, key),
    };
    // The reordering is what an unordered rule hides: count it once per array, so a rule
    // that never saw a reordered array is reported as unused.
    if let (true, Some((_, id))) = (reordered, &rule) {
        sink.hide(*id);
    }
}

fn diff_ordered(sink: &mut Sink<'_>, path: &mut String, x: &[Json<'_>], y: &[Json<'_>]) {
    for i in 0..x.len().max(y.len()) {
        if sink.done() {
            return;
        }
        let len = push_index(path, i);
        match (x.get(i), y.get(i)) {
            (Some(a), Some(b)) => diff(sink, path, a, b),
            (Some(a), None) => sink.emit(path, DiffKind::Removed, || Some(render(a)), || None),
            (None, Some(b)) => sink.emit(path, DiffKind::Added, || None, || Some(render(b))),
            (None, None) => {}
        }
        path.truncate(len);
    }
}

/// Arrays as multisets: each primary element pairs with an equal secondary element (equal
/// under the rules, so masks and ignores apply inside elements); what is left pairs up in
/// order and is diffed precisely, so a changed field is reported at its field, not as a
/// removed and an added element.
/// Returns whether any element paired with one at another index.
fn diff_multiset(sink: &mut Sink<'_>, path: &mut String, x: &[Json<'_>], y: &[Json<'_>]) -> bool {
    let mut reordered = false;
    let mut used = vec![false; y.len()];
    let mut unmatched = Vec::new();
    for (i, a) in x.iter().enumerate() {
        let candidates = std::iter::once(i).chain(0..y.len());
        let mut found = false;
        for j in candidates {
            if j >= y.len() || used[j] {
                continue;
            }
            let mut probe = Sink::probe(sink.rules);
            let len = push_index(path, i);
            diff(&mut probe, path, a, &y[j]);
            path.truncate(len);
            if !probe.failed {
                used[j] = true;
                reordered |= i != j;
                sink.absorb(probe);
                found = true;
                break;
            }
        }
        if !found {
            unmatched.push(i);
        }
    }
    let mut left = (0..y.len()).filter(|j| !used[*j]);
    for i in unmatched {
        if sink.done() {
            return reordered;
        }
        let len = push_index(path, i);
        match left.next() {
            Some(j) => {
                reordered |= i != j;
                diff(sink, path, &x[i], &y[j])
            }
            None => {
                let a = &x[i];
                sink.emit(path, DiffKind::Removed, || Some(render(a)), || None)
            }
        }
        path.truncate(len);
    }
    for j in left {
        let len = push_index(path, j);
        let b = &y[j];
        sink.emit(path, DiffKind::Added, || None, || Some(render(b)));
        path.truncate(len);
    }
    reordered
}

/// Arrays whose elements pair up by the value of one field (`id`); differences inside a
/// pair are reported at the primary element's index. Returns whether any pair moved.
fn diff_keyed(
    sink: &mut Sink<'_>,
    path: &mut String,
    x: &[Json<'_>],
    y: &[Json<'_>],
    key: &str,
) -> bool {
    let mut reordered = false;
    let key_of = |v: &Json<'_>| -> String {
        match v {
            JsonValue::Object(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| render(v))
                .unwrap_or_default(),
            other => render(other),
        }
    };
    let mut by_key: HashMap<String, std::collections::VecDeque<usize>> = HashMap::new();
    for (j, b) in y.iter().enumerate() {
        by_key.entry(key_of(b)).or_default().push_back(j);
    }
    let mut used = vec![false; y.len()];
    for (i, a) in x.iter().enumerate() {
        if sink.done() {
            return reordered;
        }
        let len = push_index(path, i);
        match by_key.get_mut(&key_of(a)).and_then(|q| q.pop_front()) {
            Some(j) => {
                used[j] = true;
                reordered |= i != j;
                diff(sink, path, a, &y[j]);
            }
            None => sink.emit(path, DiffKind::Removed, || Some(render(a)), || None),
        }
        path.truncate(len);
    }
    for (j, b) in y.iter().enumerate() {
        if !used[j] {
            let len = push_index(path, j);
            sink.emit(path, DiffKind::Added, || None, || Some(render(b)));
            path.truncate(len);
        }
    }
    reordered
}

/// Compact JSON text of a value, for people.
pub fn render(v: &Json<'_>) -> String {
    let mut out = String::new();
    render_into(v, &mut out);
    out
}

fn render_into(v: &Json<'_>, out: &mut String) {
    use std::fmt::Write;
    // Longer renderings are elided by the sink anyway.
    if out.len() > 4096 {
        return;
    }
    match v {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsonValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        JsonValue::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        JsonValue::Str(s) => render_str(s, out),
        JsonValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_into(item, out);
            }
            out.push(']');
        }
        JsonValue::Object(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_str(k, out);
                out.push(':');
                render_into(item, out);
            }
            out.push('}');
        }
    }
}

fn render_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}
