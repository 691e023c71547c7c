//! Structural diff of two JSON documents.
//!
//! Both documents are parsed into a flat [`Tape`] (one node vector and one text buffer per
//! document, see [`tape`]) and walked side by side. Parsing uses `jiter`, which keeps
//! integers beyond 64 bits exact without serde_json's crate-wide `arbitrary_precision`
//! switch, which would change how every other module's serde_json numbers behave. Numbers
//! compare by value: `1` equals `1.0`.

pub mod tape;

use super::path::{escape_key, segments};
use super::sink::Sink;
use super::DiffKind;
use std::collections::HashMap;
pub use tape::{describe_invalid, Entries, Invalid, Items, Tape, Value, View};

/// Diffs `a` (primary) against `b` (secondary) below `path`.
pub fn diff(sink: &mut Sink<'_>, path: &mut String, a: &Tape, b: &Tape) {
    let mut walk = Walk {
        path,
        keys: Vec::new(),
    };
    walk.diff(sink, a.root(), b.root());
}

/// An object entry while two objects are merged by key.
type Entry<'t> = (&'t str, Value<'t>);

/// The state shared by one walk: the current path, and one scratch vector for sorting
/// object keys, used as a stack (each object appends its entries and truncates them on
/// return), so no object allocates.
struct Walk<'p, 't> {
    path: &'p mut String,
    keys: Vec<Entry<'t>>,
}

impl<'t> Walk<'_, 't> {
    fn diff(&mut self, sink: &mut Sink<'_>, a: Value<'t>, b: Value<'t>) {
        if sink.done() {
            return;
        }
        let path: &str = self.path;
        match (a.view(), b.view()) {
            (View::Null, View::Null) => {}
            (View::Bool(x), View::Bool(y)) => {
                if x != y {
                    leaf_difference(sink, path, a, b, DiffKind::Changed, |_| None);
                }
            }
            (View::Str(x), View::Str(y)) => {
                if x != y {
                    leaf_difference(sink, path, a, b, DiffKind::Changed, |sink| {
                        sink.masked_equal(x, y)
                    });
                }
            }
            (View::Array(x), View::Array(y)) => self.diff_arrays(sink, x, y),
            (View::Object(x), View::Object(y)) => self.diff_objects(sink, x, y),
            (x, y) => match numbers_equal(&x, &y) {
                Some(true) => {}
                Some(false) => leaf_difference(sink, path, a, b, DiffKind::Changed, |sink| {
                    sink.rules
                        .tolerance
                        .filter(|(t, _)| t.accepts(as_f64(&x), as_f64(&y)))
                        .map(|(_, id)| id)
                }),
                None => leaf_difference(sink, path, a, b, DiffKind::Type, |_| None),
            },
        }
    }

    fn diff_objects(&mut self, sink: &mut Sink<'_>, x: Entries<'t>, y: Entries<'t>) {
        // Fast path: both sides wrote the same keys in the same order.
        if x.len() == y.len() && x.clone().zip(y.clone()).all(|(a, b)| a.0 == b.0) {
            for ((key, a), (_, b)) in x.zip(y) {
                let len = self.path.len();
                self.path.push('/');
                escape_key(key, self.path);
                self.diff(sink, a, b);
                self.path.truncate(len);
                if sink.done() {
                    return;
                }
            }
            return;
        }
        let base = self.keys.len();
        self.keys.extend(x);
        let x_end = base + sorted_last_wins(&mut self.keys[base..]);
        self.keys.truncate(x_end);
        self.keys.extend(y);
        let y_end = x_end + sorted_last_wins(&mut self.keys[x_end..]);
        self.keys.truncate(y_end);
        let (mut i, mut j) = (base, x_end);
        // Found at the first key that only one side has, so objects with the same keys
        // never pay for it.
        let mut renames: Option<Renames> = None;
        while i < x_end || j < y_end {
            if sink.done() {
                break;
            }
            let order = match (i < x_end, j < y_end) {
                (true, true) => self.keys[i].0.cmp(self.keys[j].0),
                (true, false) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            if order != std::cmp::Ordering::Equal && renames.is_none() {
                let declared = self.declared_renames(sink.rules, (base, x_end), (x_end, y_end));
                renames = Some(self.pair_renames(sink.rules, (i, x_end), (j, y_end), declared));
            }
            let len = self.path.len();
            self.path.push('/');
            match order {
                std::cmp::Ordering::Equal => {
                    let ((key, a), (_, b)) = (self.keys[i], self.keys[j]);
                    escape_key(key, self.path);
                    self.diff(sink, a, b);
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    let (key, value) = self.keys[i];
                    escape_key(key, self.path);
                    let declared = renames.as_ref().and_then(|r| r.declared_partner(i));
                    match (declared, renames.as_ref().and_then(|r| r.partner(i))) {
                        (Some((k, rule)), _) => {
                            let (new_key, new_value) = self.keys[k];
                            let mut to = self.path[..len + 1].to_string();
                            escape_key(new_key, &mut to);
                            // An ignore on either name means "this field does not matter",
                            // as for a renamed key: it hides the pair, values and all.
                            match sink.ignored_by(self.path).or_else(|| sink.ignored_by(&to)) {
                                Some(ignore) => sink.hide(ignore),
                                None => {
                                    sink.hide(rule);
                                    self.diff(sink, value, new_value);
                                }
                            }
                        }
                        (None, Some(k)) => {
                            let (new_key, new_value) = self.keys[k];
                            let mut to = self.path[..len + 1].to_string();
                            escape_key(new_key, &mut to);
                            if let Some(hidden) = renames.as_mut().and_then(|r| r.take_hidden(i)) {
                                sink.absorb_counts(hidden);
                            }
                            sink.emit_renamed(
                                self.path,
                                &to,
                                || Some(render(value)),
                                || Some(render(new_value)),
                            );
                        }
                        (None, None) => sink.emit(
                            self.path,
                            DiffKind::Removed,
                            || Some(render(value)),
                            || None,
                        ),
                    }
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let (key, value) = self.keys[j];
                    if !renames
                        .as_ref()
                        .is_some_and(|r| r.is_target(j) || r.is_declared_target(j))
                    {
                        escape_key(key, self.path);
                        sink.emit(self.path, DiffKind::Added, || None, || Some(render(value)));
                    }
                    j += 1;
                }
            }
            self.path.truncate(len);
        }
        self.keys.truncate(base);
    }

    /// The `rename` rules that apply to the object at `self.path`, as (old key's index,
    /// new key's index, rule id) into [`Walk::keys`]: a rule applies when its old key is
    /// only on the primary's side and its new key only on the secondary's. When it does not
    /// (both sides have the old key, or neither has the new one) it hides nothing and
    /// each key is compared, removed or added as usual. Each key pairs at most once, the
    /// first rule (the route's before the global ones) winning.
    fn declared_renames(
        &self,
        rules: &super::rules::RuleSet,
        (x_start, x_end): (usize, usize),
        (y_start, y_end): (usize, usize),
    ) -> Vec<(usize, usize, usize)> {
        let mut declared = Vec::new();
        if rules.renames.is_empty() {
            return declared;
        }
        let segs = segments(self.path);
        // Both runs are sorted by key and hold each key once (last wins).
        let find = |start: usize, end: usize, key: &str| {
            self.keys[start..end]
                .binary_search_by(|entry| entry.0.cmp(key))
                .ok()
                .map(|at| start + at)
        };
        for (rename, id) in &rules.renames {
            if !rename.parent.matches(&segs) {
                continue;
            }
            let old = find(x_start, x_end, &rename.from);
            let new = find(y_start, y_end, &rename.to);
            let (Some(old), Some(new)) = (old, new) else {
                continue;
            };
            if find(y_start, y_end, &rename.from).is_some()
                || find(x_start, x_end, &rename.to).is_some()
                || declared.iter().any(|&(o, n, _)| o == old || n == new)
            {
                continue;
            }
            declared.push((old, new, *id));
        }
        declared
    }

    /// Pairs each key only the primary has (in key order) with the first unpaired key only
    /// the secondary has whose value is equal under the rules (probed at the old key's
    /// path), so a renamed field is one difference and not a removed and an added one.
    /// `old` and `new` are the unmerged rest of the two sorted key runs in `self.keys`;
    /// the keys a `rename` rule already paired (`declared`) are left out.
    fn pair_renames(
        &mut self,
        rules: &super::rules::RuleSet,
        (mut i, x_end): (usize, usize),
        (mut j, y_end): (usize, usize),
        declared: Vec<(usize, usize, usize)>,
    ) -> Renames {
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        while i < x_end || j < y_end {
            let order = match (i < x_end, j < y_end) {
                (true, true) => self.keys[i].0.cmp(self.keys[j].0),
                (true, false) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    if !declared.iter().any(|d| d.0 == i) {
                        removed.push(i);
                    }
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    if !declared.iter().any(|d| d.1 == j) {
                        added.push(j);
                    }
                    j += 1;
                }
            }
        }
        let mut renames = Renames {
            pairs: Vec::new(),
            declared,
        };
        // A map rule can make values of two types equal (`ACTIVE` against `1`).
        let any_type = !rules.maps.is_empty();
        let mut budget = MAX_PAIRING_PROBES;
        for r in removed {
            let (key, a) = self.keys[r];
            for &k in &added {
                if renames.is_target(k) || !(any_type || same_type(a, self.keys[k].1)) {
                    continue;
                }
                if budget == 0 {
                    return renames;
                }
                budget -= 1;
                let mut probe = Sink::probe(rules);
                let len = self.path.len();
                self.path.push('/');
                escape_key(key, self.path);
                self.diff(&mut probe, a, self.keys[k].1);
                self.path.truncate(len);
                if !probe.failed {
                    renames.pairs.push((r, k, Some(probe.hidden)));
                    break;
                }
            }
        }
        renames
    }

    fn diff_arrays(&mut self, sink: &mut Sink<'_>, x: Items<'t>, y: Items<'t>) {
        let rule = if sink.rules.unordered.is_empty() {
            None
        } else {
            let segs = super::path::segments(self.path);
            sink.rules
                .unordered
                .iter()
                .find(|(u, _)| u.pattern.matches(&segs))
                .map(|(u, id)| (u.key.clone(), *id))
        };
        let reordered = match &rule {
            None => {
                self.diff_in_order(sink, x, y);
                false
            }
            Some((None, _)) => self.diff_multiset(sink, x, y),
            Some((Some(key), _)) => self.diff_keyed(sink, x, y, key),
        };
        // The reordering is what an unordered rule hides: count it once per array, so a rule
        // that never saw a reordered array is reported as unused.
        if let (true, Some((_, id))) = (reordered, &rule) {
            sink.hide(*id);
        }
    }

    /// Arrays whose order counts: index by index, unless the two hold the same elements in
    /// another order, which is one `reordered` difference at the array. Equal arrays cost
    /// one walk, as before: the first pass is a probe that settles them; only arrays of
    /// equal length that differ at some index are checked for a permutation.
    ///
    /// Arrays that differ in content as well as order are diffed index by index: pairing
    /// the equal elements first would report an inserted element as one `added` and the
    /// rest as `reordered`, but it costs a pairing of every element and changes the paths
    /// that existing ignore rules were written against.
    fn diff_in_order(&mut self, sink: &mut Sink<'_>, x: Items<'t>, y: Items<'t>) {
        // A probe only asks "equal?", and a permuted array is not equal either way: an index
        // difference that shows means no ignore rule covers the array.
        if sink.is_probe() || x.len() != y.len() {
            return self.diff_ordered(sink, x, y);
        }
        let mut ordered = Sink::probe(sink.rules);
        let mut first = None;
        for (i, (a, b)) in x.clone().zip(y.clone()).enumerate() {
            let len = push_index(self.path, i);
            self.diff(&mut ordered, a, b);
            self.path.truncate(len);
            if ordered.failed {
                first = Some(i);
                break;
            }
        }
        let Some(from) = first else {
            sink.absorb(ordered);
            return;
        };
        match self.permutation(sink.rules, x.clone(), y.clone(), from) {
            Some(pairs) => {
                sink.absorb(pairs);
                let path: &str = self.path;
                let (a, b) = (x, y);
                sink.emit(
                    path,
                    DiffKind::Reordered,
                    || Some(render_items(a)),
                    || Some(render_items(b)),
                );
            }
            None => self.diff_ordered(sink, x, y),
        }
    }

    /// Whether `y` holds the elements of `x` in another order, given that both agree up
    /// to index `from` (exclusive) and differ there: each element from `from` on pairs with
    /// an unused equal element (equal under the rules, probed at the primary's index, as
    /// [`Walk::diff_multiset`] pairs them). Returns the probes' hidden counts when it does.
    ///
    /// Under exact rules (no mask, tolerance, ignore or unordered rule) a fingerprint per
    /// element rejects most non-permutations at once and narrows the candidates; otherwise
    /// the pairing is bounded by [`MAX_PAIRING_PROBES`], past which the array is reported
    /// index by index, so a long reversed array cannot hold the compare thread.
    fn permutation<'r>(
        &mut self,
        rules: &'r super::rules::RuleSet,
        x: Items<'t>,
        y: Items<'t>,
        from: usize,
    ) -> Option<Sink<'r>> {
        let xs: Vec<Value<'t>> = x.skip(from).collect();
        let ys: Vec<Value<'t>> = y.skip(from).collect();
        let exact = rules.masks.is_empty()
            && rules.tolerance.is_none()
            && rules.ignore.is_empty()
            && rules.allow_added.is_none()
            && rules.unordered.is_empty()
            && rules.renames.is_empty()
            && rules.maps.is_empty();
        let mut budget = MAX_PAIRING_PROBES;
        // The element that stopped the ordered pass needs a partner elsewhere: most arrays
        // that merely differ are settled here, before anything is hashed.
        let mut partner = false;
        for b in ys.iter().skip(1) {
            if budget == 0 {
                return None;
            }
            budget -= 1;
            let mut probe = Sink::probe(rules);
            let len = push_index(self.path, from);
            self.diff(&mut probe, xs[0], *b);
            self.path.truncate(len);
            if !probe.failed {
                partner = true;
                break;
            }
        }
        if !partner {
            return None;
        }
        let mut buckets: Option<HashMap<u64, Vec<usize>>> = None;
        if exact {
            let mut fx: Vec<u64> = xs.iter().map(|v| fingerprint(*v)).collect();
            let fy: Vec<u64> = ys.iter().map(|v| fingerprint(*v)).collect();
            let mut sorted_y = fy.clone();
            fx.sort_unstable();
            sorted_y.sort_unstable();
            if fx != sorted_y {
                return None;
            }
            let mut map: HashMap<u64, Vec<usize>> = HashMap::new();
            for (j, f) in fy.into_iter().enumerate() {
                map.entry(f).or_default().push(j);
            }
            buckets = Some(map);
        }
        let mut pairs = Sink::probe(rules);
        let mut used = vec![false; ys.len()];
        for (i, a) in xs.iter().enumerate() {
            let candidates: Vec<usize> = match &buckets {
                Some(map) => map.get(&fingerprint(*a)).cloned().unwrap_or_default(),
                None => (0..ys.len()).collect(),
            };
            let mut paired = false;
            for j in candidates {
                if used[j] || (j == i && i == 0) {
                    // The first element differs from its counterpart: the probe that
                    // stopped the ordered pass said so.
                    continue;
                }
                if budget == 0 {
                    return None;
                }
                budget -= 1;
                let mut probe = Sink::probe(rules);
                let len = push_index(self.path, from + i);
                self.diff(&mut probe, *a, ys[j]);
                self.path.truncate(len);
                if !probe.failed {
                    used[j] = true;
                    pairs.absorb(probe);
                    paired = true;
                    break;
                }
            }
            if !paired {
                return None;
            }
        }
        Some(pairs)
    }

    fn diff_ordered(&mut self, sink: &mut Sink<'_>, mut x: Items<'t>, mut y: Items<'t>) {
        for i in 0..x.len().max(y.len()) {
            if sink.done() {
                return;
            }
            let len = push_index(self.path, i);
            match (x.next(), y.next()) {
                (Some(a), Some(b)) => self.diff(sink, a, b),
                (Some(a), None) => {
                    sink.emit(self.path, DiffKind::Removed, || Some(render(a)), || None)
                }
                (None, Some(b)) => {
                    sink.emit(self.path, DiffKind::Added, || None, || Some(render(b)))
                }
                (None, None) => {}
            }
            self.path.truncate(len);
        }
    }

    /// Arrays as multisets: each primary element pairs with an equal secondary element
    /// (equal under the rules, so masks and ignores apply inside elements); what is left
    /// pairs up in order and is diffed precisely, so a changed field is reported at its
    /// field, not as a removed and an added element.
    /// Returns whether any element paired with one at another index.
    fn diff_multiset(&mut self, sink: &mut Sink<'_>, x: Items<'t>, y: Items<'t>) -> bool {
        let x: Vec<Value<'t>> = x.collect();
        let y: Vec<Value<'t>> = y.collect();
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
                let len = push_index(self.path, i);
                self.diff(&mut probe, *a, y[j]);
                self.path.truncate(len);
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
            let len = push_index(self.path, i);
            match left.next() {
                Some(j) => {
                    reordered |= i != j;
                    self.diff(sink, x[i], y[j])
                }
                None => {
                    let a = x[i];
                    sink.emit(self.path, DiffKind::Removed, || Some(render(a)), || None)
                }
            }
            self.path.truncate(len);
        }
        for j in left {
            let len = push_index(self.path, j);
            let b = y[j];
            sink.emit(self.path, DiffKind::Added, || None, || Some(render(b)));
            self.path.truncate(len);
        }
        reordered
    }

    /// Arrays whose elements pair up by the value of one field (`id`); differences inside a
    /// pair are reported at the primary element's index. Returns whether any pair moved.
    fn diff_keyed(&mut self, sink: &mut Sink<'_>, x: Items<'t>, y: Items<'t>, key: &str) -> bool {
        let mut reordered = false;
        let key_of = |v: Value<'_>| -> String {
            match v.view() {
                View::Object(entries) => entries
                    .filter(|(k, _)| *k == key)
                    .last()
                    .map(|(_, v)| render(v))
                    .unwrap_or_default(),
                _ => render(v),
            }
        };
        let y: Vec<Value<'t>> = y.collect();
        let mut by_key: HashMap<String, std::collections::VecDeque<usize>> = HashMap::new();
        for (j, b) in y.iter().enumerate() {
            by_key.entry(key_of(*b)).or_default().push_back(j);
        }
        let mut used = vec![false; y.len()];
        for (i, a) in x.enumerate() {
            if sink.done() {
                return reordered;
            }
            let len = push_index(self.path, i);
            match by_key.get_mut(&key_of(a)).and_then(|q| q.pop_front()) {
                Some(j) => {
                    used[j] = true;
                    reordered |= i != j;
                    self.diff(sink, a, y[j]);
                }
                None => sink.emit(self.path, DiffKind::Removed, || Some(render(a)), || None),
            }
            self.path.truncate(len);
        }
        for (j, b) in y.iter().enumerate() {
            if !used[j] {
                let len = push_index(self.path, j);
                sink.emit(self.path, DiffKind::Added, || None, || Some(render(*b)));
                self.path.truncate(len);
            }
        }
        reordered
    }
}

/// The renamed keys of one object: (old key's index, new key's index, the hidden counts
/// of the probe that found them equal), as indices into [`Walk::keys`]; and the pairs a
/// `rename` rule declared, (old key's index, new key's index, rule id).
struct Renames {
    pairs: Vec<(usize, usize, Option<HiddenCounts>)>,
    declared: Vec<(usize, usize, usize)>,
}

/// (rule id index, count), as a [`Sink`] keeps them.
type HiddenCounts = Vec<(usize, u64)>;

impl Renames {
    fn partner(&self, old: usize) -> Option<usize> {
        self.pairs.iter().find(|p| p.0 == old).map(|p| p.1)
    }

    fn is_target(&self, new: usize) -> bool {
        self.pairs.iter().any(|p| p.1 == new)
    }

    fn take_hidden(&mut self, old: usize) -> Option<HiddenCounts> {
        self.pairs.iter_mut().find(|p| p.0 == old)?.2.take()
    }

    /// The new key's index and the rule id of a declared rename of `old`.
    fn declared_partner(&self, old: usize) -> Option<(usize, usize)> {
        self.declared
            .iter()
            .find(|d| d.0 == old)
            .map(|&(_, new, rule)| (new, rule))
    }

    fn is_declared_target(&self, new: usize) -> bool {
        self.declared.iter().any(|d| d.1 == new)
    }
}

/// Whether two values could be equal: only those are probed as a rename.
fn same_type(a: Value<'_>, b: Value<'_>) -> bool {
    use View::*;
    matches!(
        (a.view(), b.view()),
        (Null, Null)
            | (Bool(_), Bool(_))
            | (Int(_) | BigInt(_) | Float(_), Int(_) | BigInt(_) | Float(_))
            | (Str(_), Str(_))
            | (Array(_), Array(_))
            | (Object(_), Object(_))
    )
}

/// Element comparisons one permutation check or one object's rename pairing may spend.
const MAX_PAIRING_PROBES: usize = 100_000;

/// A hash equal for values that are equal under exact rules: numbers by value (`1` and
/// `1.0` alike), objects whatever their key order. Different values may share one (the
/// pairing probes every candidate), and an object with duplicate keys may hash unlike
/// its equal last-wins twin, which only costs a `reordered` that is reported per index.
fn fingerprint(v: Value<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    fn leaf(tag: u8, bytes: &[u8]) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        tag.hash(&mut h);
        bytes.hash(&mut h);
        h.finish()
    }
    fn mix(a: u64, b: u64) -> u64 {
        (a ^ b.rotate_left(29))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31)
    }
    match v.view() {
        View::Null => leaf(0, &[]),
        View::Bool(b) => leaf(1, &[b as u8]),
        ref n @ (View::Int(_) | View::BigInt(_) | View::Float(_)) => {
            let f = as_f64(n);
            let f = if f == 0.0 { 0.0 } else { f };
            leaf(2, &f.to_bits().to_le_bytes())
        }
        View::Str(s) => leaf(3, s.as_bytes()),
        View::Array(items) => items.fold(leaf(4, &[]), |h, item| mix(h, fingerprint(item))),
        View::Object(entries) => entries.fold(leaf(5, &[]), |h, (key, item)| {
            h.wrapping_add(mix(leaf(3, key.as_bytes()), fingerprint(item)))
        }),
    }
}

fn render_items(items: Items<'_>) -> String {
    let mut out = String::new();
    render_items_into(items, &mut out);
    out
}

fn render_items_into(items: Items<'_>, out: &mut String) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        render_into(item, out);
    }
    out.push(']');
}

/// Two different scalars at `path`: equal under a `map` rule (checked first: it names
/// these very values), else under `other` (a mask or the tolerance), unless an ignore
/// covers the path (then the ignore counts it, as for every rule); else reported.
fn leaf_difference(
    sink: &mut Sink<'_>,
    path: &str,
    a: Value<'_>,
    b: Value<'_>,
    kind: DiffKind,
    other: impl FnOnce(&Sink<'_>) -> Option<usize>,
) {
    match mapped(sink, path, a, b).or_else(|| other(sink)) {
        Some(rule) if sink.ignored_by(path).is_none() => sink.hide(rule),
        _ => sink.emit(path, kind, || Some(render(a)), || Some(render(b))),
    }
}

/// The `map` rule that makes the primary's `a` and the secondary's `b` at `path` equal.
/// Values are tested first, so most differences never split their path.
fn mapped(sink: &Sink<'_>, path: &str, a: Value<'_>, b: Value<'_>) -> Option<usize> {
    let rules = sink.rules;
    let mut candidates = rules
        .maps
        .iter()
        .filter(|(map, _)| scalar_equal(map.from.root(), a) && scalar_equal(map.to.root(), b))
        .peekable();
    candidates.peek()?;
    let segs = segments(path);
    candidates
        .find(|(map, _)| map.pattern.matches(&segs))
        .map(|(_, id)| *id)
}

/// Whether two scalars are equal as the diff compares them (numbers by value); a
/// container is never equal here.
pub(super) fn scalar_equal(a: Value<'_>, b: Value<'_>) -> bool {
    match (a.view(), b.view()) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Str(x), View::Str(y)) => x == y,
        (View::Array(_) | View::Object(_), _) | (_, View::Array(_) | View::Object(_)) => false,
        (x, y) => numbers_equal(&x, &y) == Some(true),
    }
}

/// Sorts object entries by key in place and keeps, of duplicate keys, the last one (as most
/// parsers do); returns how many entries are left at the front.
fn sorted_last_wins(entries: &mut [Entry<'_>]) -> usize {
    // Entries are in document order, so the tape index breaks ties by position; the
    // unstable sort then needs no buffer.
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.1.position().cmp(&b.1.position())));
    let mut kept = 0;
    for i in 0..entries.len() {
        if kept > 0 && entries[kept - 1].0 == entries[i].0 {
            entries[kept - 1] = entries[i];
        } else {
            entries[kept] = entries[i];
            kept += 1;
        }
    }
    kept
}

/// `None` when either is not a number.
fn numbers_equal(a: &View<'_>, b: &View<'_>) -> Option<bool> {
    use View::{BigInt, Float, Int};
    Some(match (a, b) {
        (Int(x), Int(y)) => x == y,
        // Canonical decimal texts: equal exactly when the values are.
        (BigInt(x), BigInt(y)) => x == y,
        // jiter only makes a big integer of what does not fit an i64.
        (Int(_), BigInt(_)) | (BigInt(_), Int(_)) => false,
        (Int(_) | BigInt(_) | Float(_), Float(_)) | (Float(_), Int(_) | BigInt(_)) => {
            as_f64(a) == as_f64(b)
        }
        _ => return None,
    })
}

fn as_f64(v: &View<'_>) -> f64 {
    match v {
        View::Int(i) => *i as f64,
        View::Float(f) => *f,
        View::BigInt(text) => text.parse().unwrap_or(f64::NAN),
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

/// Compact JSON text of a value, for people.
pub fn render(v: Value<'_>) -> String {
    let mut out = String::new();
    render_into(v, &mut out);
    out
}

fn render_into(v: Value<'_>, out: &mut String) {
    use std::fmt::Write;
    // Longer renderings are elided by the sink anyway.
    if out.len() > 4096 {
        return;
    }
    match v.view() {
        View::Null => out.push_str("null"),
        View::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        View::Int(i) => {
            let _ = write!(out, "{i}");
        }
        View::BigInt(text) => out.push_str(text),
        View::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        View::Str(s) => render_str(s, out),
        View::Array(items) => render_items_into(items, out),
        View::Object(entries) => {
            out.push('{');
            for (i, (k, item)) in entries.enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::rules::tests::compile_toml;
    use crate::compare::rules::CompiledRules;

    /// (path, kind, to) of each difference, and (rule id, count) of each hidden one, of
    /// `a` against `b` under the global rules of `rules`.
    type Found = Vec<(String, DiffKind, Option<String>)>;

    fn diff_under(rules: &CompiledRules, a: &str, b: &str) -> (Found, Vec<(String, u64)>) {
        let (a, b) = (
            Tape::parse(a.as_bytes()).unwrap(),
            Tape::parse(b.as_bytes()).unwrap(),
        );
        let mut sink = Sink::new(&rules.global);
        let mut path = String::from("body");
        diff(&mut sink, &mut path, &a, &b);
        let found = sink
            .differences
            .iter()
            .map(|d| (d.path.clone(), d.kind, d.to.clone()))
            .collect();
        let hidden = sink
            .hidden
            .iter()
            .map(|(rule, count)| (rules.ids[*rule].clone(), *count))
            .collect();
        (found, hidden)
    }

    fn at(path: &str, kind: DiffKind) -> (String, DiffKind, Option<String>) {
        (path.to_string(), kind, None)
    }

    fn hid(rule: &str, count: u64) -> (String, u64) {
        (rule.to_string(), count)
    }

    const RENAME: &str = "[compare]\nrename = { \"body/email\" = \"body/email_address\" }\n";
    const RENAMED: &str = "rename body/email -> body/email_address";

    #[test]
    fn a_rename_hides_the_moved_key_and_nothing_else() {
        let rules = compile_toml(RENAME).unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"{"email": "a@x", "name": "A"}"#,
            r#"{"email_address": "a@x", "name": "B"}"#,
        );
        assert_eq!(found, [at("body/name", DiffKind::Changed)]);
        assert_eq!(hidden, [hid(RENAMED, 1)]);
    }

    #[test]
    fn a_value_changed_under_a_rename_is_reported_at_the_primary_path() {
        let rules = compile_toml(RENAME).unwrap();
        let (found, hidden) =
            diff_under(&rules, r#"{"email": "a@x"}"#, r#"{"email_address": "b@x"}"#);
        assert_eq!(found, [at("body/email", DiffKind::Changed)]);
        assert_eq!(hidden, [hid(RENAMED, 1)]);
        let (found, _) = diff_under(
            &rules,
            r#"{"email": {"home": "a", "work": "w"}}"#,
            r#"{"email_address": {"home": "b", "work": "w"}}"#,
        );
        assert_eq!(found, [at("body/email/home", DiffKind::Changed)]);
    }

    #[test]
    fn a_rename_with_one_side_missing_hides_nothing() {
        let rules = compile_toml(RENAME).unwrap();
        let cases: [(&str, &str, Found); 4] = [
            (
                r#"{"email": "a"}"#,
                r#"{}"#,
                vec![at("body/email", DiffKind::Removed)],
            ),
            (
                r#"{}"#,
                r#"{"email_address": "a"}"#,
                vec![at("body/email_address", DiffKind::Added)],
            ),
            // The secondary still sends the old name too: both are compared as they are.
            (
                r#"{"email": "a"}"#,
                r#"{"email": "a", "email_address": "a"}"#,
                vec![at("body/email_address", DiffKind::Added)],
            ),
            (
                r#"{"email": "a", "email_address": "b"}"#,
                r#"{"email_address": "a"}"#,
                vec![
                    at("body/email", DiffKind::Removed),
                    at("body/email_address", DiffKind::Changed),
                ],
            ),
        ];
        for (a, b, want) in cases {
            let (found, hidden) = diff_under(&rules, a, b);
            assert_eq!(found, want, "{a} vs {b}");
            assert!(hidden.is_empty(), "{a} vs {b}: {hidden:?}");
        }
    }

    #[test]
    fn a_rename_applies_only_in_objects_its_parent_matches() {
        let rules = compile_toml(
            "[compare]\nrename = { \"body/items/*/email\" = \"body/items/*/email_address\" }\n",
        )
        .unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"{"items": [{"email": "a"}, {"email": "b"}], "email": "c"}"#,
            r#"{"items": [{"email_address": "a"}, {"email_address": "x"}], "email_address": "c"}"#,
        );
        assert_eq!(
            found,
            [
                (
                    "body/email".to_string(),
                    DiffKind::Renamed,
                    Some("body/email_address".to_string())
                ),
                at("body/items/1/email", DiffKind::Changed),
            ]
        );
        assert_eq!(
            hidden,
            [hid(
                "rename body/items/*/email -> body/items/*/email_address",
                2
            )]
        );
    }

    #[test]
    fn an_ignore_on_either_name_counts_the_pair_itself() {
        for ignored in ["body/email", "body/email_address"] {
            let rules = compile_toml(&format!("{RENAME}ignore = [\"{ignored}\"]\n")).unwrap();
            let (found, hidden) =
                diff_under(&rules, r#"{"email": "a"}"#, r#"{"email_address": "b"}"#);
            assert!(found.is_empty(), "{found:?}");
            assert_eq!(hidden, [hid(&format!("ignore {ignored}"), 1)]);
        }
    }

    #[test]
    fn renames_inside_unordered_and_permuted_arrays_pair_elements() {
        let rules =
            compile_toml("[compare]\nrename = { \"body/*/email\" = \"body/*/mail\" }\n").unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"[{"email": "a"}, {"email": "b"}]"#,
            r#"[{"mail": "b"}, {"mail": "a"}]"#,
        );
        assert_eq!(found, [at("body", DiffKind::Reordered)]);
        assert_eq!(hidden, [hid("rename body/*/email -> body/*/mail", 2)]);
    }

    const MAP: &str = r#"
        [compare]
        map = [
            { path = "body/**/status", from = "ACTIVE", to = "active" },
            { path = "body/**/status", from = "INACTIVE", to = "inactive" },
            { path = "body/flag", from = 1, to = true },
            { path = "body/gone", from = "", to = { json = "null" } },
        ]
    "#;

    #[test]
    fn a_map_hides_exactly_its_pair_of_values() {
        let rules = compile_toml(MAP).unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"{"status": "ACTIVE", "items": [{"status": "INACTIVE"}, {"status": "ACTIVE"}], "flag": 1.0, "gone": ""}"#,
            r#"{"status": "active", "items": [{"status": "inactive"}, {"status": "closed"}], "flag": true, "gone": null}"#,
        );
        assert_eq!(found, [at("body/items/1/status", DiffKind::Changed)]);
        assert_eq!(
            hidden,
            [
                hid(r#"map body/**/status "ACTIVE" -> "active""#, 1),
                hid(r#"map body/**/status "INACTIVE" -> "inactive""#, 1),
                hid("map body/flag 1 -> true", 1),
                hid(r#"map body/gone "" -> null"#, 1),
            ]
        );
    }

    #[test]
    fn a_map_is_one_way_and_only_at_its_path() {
        let rules = compile_toml(MAP).unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"{"status": "active", "state": "ACTIVE", "flag": true}"#,
            r#"{"status": "ACTIVE", "state": "active", "flag": 1}"#,
        );
        assert_eq!(
            found,
            [
                at("body/status", DiffKind::Changed),
                at("body/state", DiffKind::Changed),
                at("body/flag", DiffKind::Type),
            ]
        );
        assert!(hidden.is_empty(), "{hidden:?}");
    }

    #[test]
    fn a_map_makes_an_auto_renamed_key_of_another_type() {
        let rules =
            compile_toml("[compare]\nmap = [{ path = \"body/**\", from = \"1\", to = 1 }]\n")
                .unwrap();
        let (found, hidden) = diff_under(&rules, r#"{"n": "1"}"#, r#"{"m": 1}"#);
        assert_eq!(
            found,
            [(
                "body/n".to_string(),
                DiffKind::Renamed,
                Some("body/m".to_string())
            )]
        );
        assert_eq!(hidden, [hid(r#"map body/** "1" -> 1"#, 1)]);
    }

    #[test]
    fn maps_pair_permuted_elements_without_the_exact_fingerprints() {
        let rules = compile_toml(MAP).unwrap();
        let (found, hidden) = diff_under(
            &rules,
            r#"[{"status": "ACTIVE"}, {"status": "INACTIVE"}]"#,
            r#"[{"status": "inactive"}, {"status": "active"}]"#,
        );
        assert_eq!(found, [at("body", DiffKind::Reordered)]);
        assert_eq!(hidden.len(), 2, "{hidden:?}");
    }
}
