//! Line diff of text bodies with `similar`: one difference per changed line, at
//! `body#L<n>`, so a rule can name a line and a report can point at it; the unified hunks
//! are kept for reports as well.

use super::path::line_path;
use super::sink::Sink;
use super::DiffKind;
use similar::TextDiff;

/// Lines of context around each hunk in the unified diff.
const CONTEXT: usize = 3;

const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// Per-line differences kept for one body; the lines past it are summed up in one `body`
/// difference, so two unrelated 1 MB texts cannot fill the store with their lines.
pub const MAX_LINE_DIFFERENCES: usize = 100;

/// Compares two text bodies line by line after masking; returns the unified diff when
/// they differ.
///
/// Line numbers: a changed or removed line is at its line in the primary, an added line
/// at its line in the secondary (the only side that has it).
pub fn diff(sink: &mut Sink<'_>, a: &str, b: &str) -> Option<String> {
    if let Some(mask) = sink.masked_equal(a, b) {
        // An ignore rule on `body` takes the count, as it would for any other difference.
        let rule = sink.ignored_by("body").unwrap_or(mask);
        sink.hide(rule);
        return None;
    }
    let lines = lines_of(a, b);
    let kept_before = sink.differences.len();
    let mut over = 0usize;
    let old = lines.old_slices();
    let new = lines.new_slices();
    for op in lines.ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        let paired = old_range.len().min(new_range.len());
        for k in 0..old_range.len().max(new_range.len()) {
            let (x, y) = (
                (k < old_range.len()).then(|| old[old_range.start + k]),
                (k < new_range.len()).then(|| new[new_range.start + k]),
            );
            let (n, kind) = match (x, y) {
                (Some(_), Some(_)) => (old_range.start + k + 1, DiffKind::Changed),
                (Some(_), None) => (old_range.start + k + 1, DiffKind::Removed),
                (None, Some(_)) => (new_range.start + k + 1, DiffKind::Added),
                (None, None) => continue,
            };
            let path = line_path(n);
            if k < paired {
                if let (Some(x), Some(y)) = (x, y) {
                    if let Some(rule) = sink.masked_equal(x, y) {
                        if sink.ignored_by(&path).is_none() {
                            sink.hide(rule);
                            continue;
                        }
                    }
                }
            }
            if sink.differences.len() - kept_before >= MAX_LINE_DIFFERENCES {
                match sink.ignored_by(&path) {
                    Some(rule) => sink.hide(rule),
                    None => over += 1,
                }
                continue;
            }
            let (x, y) = shown(x, y);
            sink.emit(&path, kind, || x, || y);
        }
    }
    if over > 0 {
        let more = format!("{over} more lines differ");
        sink.emit("body", DiffKind::Text, || Some(more), || None);
    }
    if sink.differences.len() == kept_before {
        // Every difference was hidden: the unified diff would show what the rules hid.
        return None;
    }
    unified_of(&lines)
}

/// The unified diff of two texts, `None` when they are equal.
pub fn unified(a: &str, b: &str) -> Option<String> {
    unified_of(&lines_of(a, b))
}

fn lines_of<'t>(a: &'t str, b: &'t str) -> TextDiff<'t, 't, 't, str> {
    // A deadline bounds the work on large, very different bodies: past it `similar` falls
    // back to a coarser (still correct) diff instead of occupying the compare thread.
    TextDiff::configure()
        .timeout(DIFF_DEADLINE)
        .diff_lines(a, b)
}

fn unified_of<'t>(diff: &'t TextDiff<'t, 't, 't, str>) -> Option<String> {
    let text = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header("primary", "secondary")
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// The lines as people read them, without their line break; a line that differs only by
/// the break at the end of the body says so, or both sides would read the same.
fn shown(x: Option<&str>, y: Option<&str>) -> (Option<String>, Option<String>) {
    fn trim(l: &str) -> Option<&str> {
        l.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
    match (x, y) {
        (Some(x), Some(y)) if trim(x).unwrap_or(x) == trim(y).unwrap_or(y) => {
            let mark = |l: &str| match trim(l) {
                Some(t) => t.to_string(),
                None => format!("{l} (no newline at end of body)"),
            };
            (Some(mark(x)), Some(mark(y)))
        }
        _ => (
            x.map(|l| trim(l).unwrap_or(l).to_string()),
            y.map(|l| trim(l).unwrap_or(l).to_string()),
        ),
    }
}
