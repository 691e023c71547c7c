//! Wildcard matching over path segments, the one segment matcher of the crate: the path
//! grammar of compare rules ([`crate::compare::path`]) and the route grammar
//! ([`crate::route`]) both call it.

/// Matches a pattern of single-segment steps and `**` runs against a path, in time linear
/// in `pattern.len() * path.len()` whatever the number of `**` (issue 12, bug 11: the
/// recursive matcher this replaces tried every split of the path at every `**`, so ten of
/// them on a 40-deep path never finished).
///
/// The classic wildcard match with one backtrack point: on a mismatch only the latest `**`
/// is widened by one segment. Earlier `**`s never need revisiting, because whatever an
/// earlier one could absorb the latest one can absorb as well. `is_any` says which steps
/// are `**`; `step_matches` decides every other step against one path segment. With
/// `open_end` the pattern behaves as if a `**` followed it, so it also matches every path
/// below one it matches.
///
pub fn glob_segments<P, S>(
    pattern: &[P],
    path: &[S],
    open_end: bool,
    is_any: impl Fn(&P) -> bool,
    step_matches: impl Fn(&P, &S) -> bool,
) -> bool {
    let len = pattern.len() + usize::from(open_end);
    let any_at = |i: usize| pattern.get(i).map_or(open_end, &is_any);
    let (mut p, mut s) = (0, 0);
    // After the latest `**`: the pattern index following it, and the path index it has
    // absorbed up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while s < path.len() {
        if p < len && any_at(p) {
            p += 1;
            backtrack = Some((p, s));
        } else if p < pattern.len() && step_matches(&pattern[p], &path[s]) {
            p += 1;
            s += 1;
        } else if let Some((after, absorbed)) = backtrack {
            p = after;
            s = absorbed + 1;
            backtrack = Some((after, s));
        } else {
            return false;
        }
    }
    (p..len).all(any_at)
}
