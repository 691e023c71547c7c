//! Line diff of text bodies with `similar`; the unified hunks are kept for reports.

use super::sink::Sink;
use super::DiffKind;
use similar::TextDiff;

/// Lines of context around each hunk in the unified diff.
const CONTEXT: usize = 3;

const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// Compares two text bodies after masking; returns the unified diff when they differ.
pub fn diff(sink: &mut Sink<'_>, a: &str, b: &str) -> Option<String> {
    if let Some(mask) = sink.masked_equal(a, b) {
        // An ignore rule on `body` takes the count, as it would for any other difference.
        let rule = sink.ignored_by("body").unwrap_or(mask);
        sink.hide(rule);
        return None;
    }
    let (line_a, line_b) = first_difference(a, b);
    sink.emit("body", DiffKind::Text, || Some(line_a), || Some(line_b));
    if sink.ignored_by("body").is_some() {
        return None;
    }
    unified(a, b)
}

/// The unified diff of two texts, `None` when they are equal.
pub fn unified(a: &str, b: &str) -> Option<String> {
    // A deadline bounds the work on large, very different bodies: past it `similar` falls
    // back to a coarser (still correct) diff instead of occupying the compare thread.
    let diff = TextDiff::configure()
        .timeout(DIFF_DEADLINE)
        .diff_lines(a, b);
    let text = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header("primary", "secondary")
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// `line N: text` of the first line that differs on each side.
fn first_difference(a: &str, b: &str) -> (String, String) {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (x, y) => {
                let show = |l: Option<&str>| match l {
                    Some(l) => format!("line {n}: {l}"),
                    None => format!("line {n}: (end of body)"),
                };
                return (show(x), show(y));
            }
        }
    }
}
