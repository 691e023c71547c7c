//! Two response bodies as a person reads them: pretty-printed, side by side, changed lines
//! highlighted, the lines of the differing paths marked and long unchanged stretches
//! folded. One definition for `show` (the terminal), the HTML report and the dashboard.
//!
//! A body is shown as the compare engine saw it: the same decoding (Content-Encoding,
//! charset: [`crate::compare::decode`]), the same classification into JSON, text or binary
//! and the same JSON parser ([`crate::compare::json::Tape`], which keeps numbers beyond 64
//! bits exact and refuses the same over-deep documents). JSON is printed by the small
//! printer below rather than serde_json's: it sorts keys whatever serde_json's
//! `preserve_order` feature is set to anywhere in the dependency tree, and it records the
//! line of every value as it writes it, which is how a difference's path (`body/a/b/0`)
//! finds its line.
//!
//! Stored bodies can be anything, so nothing here panics on them and everything is
//! bounded: each side stops at [`MAX_LINES`] lines and each line at [`MAX_LINE_CHARS`]
//! characters (both said in the view's notes), the diff has a deadline, and control and
//! bidirectional-override characters never reach a terminal or a page.

use crate::compare::decode::{self, Declared};
use crate::compare::json::{Tape, Value, View};
use crate::compare::path::escape_key;
use crate::compare::Body;
use similar::{Algorithm, DiffTag};
use std::collections::HashSet;
use std::fmt::Write;
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthChar;

/// Lines printed per body; the rest is cut, with a note.
pub const MAX_LINES: usize = 5_000;
/// Characters kept of one line (a long string value, a minified text line).
pub const MAX_LINE_CHARS: usize = 2_000;
/// Unchanged lines kept next to a change when a stretch is folded.
pub const CONTEXT: usize = 3;
/// The diff of two very different bodies gets this long before `similar` settles for a
/// coarser (still correct) answer.
const DIFF_DEADLINE: Duration = Duration::from_millis(500);

/// The style of [`DiffView::to_html`]'s classes, for a page that embeds the fragment.
pub const DIFF_CSS: &str = "table.diff{border-collapse:collapse;width:100%;table-layout:fixed}
table.diff td,table.diff th{border:none;border-left:1px solid #ddd;padding:0 .4em;font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere;text-align:left;vertical-align:top}
table.diff td.n,table.diff th.n{width:3.5em;text-align:right;color:#888;user-select:none}
table.diff td.del{background:#fdd}table.diff td.ins{background:#dfd}
table.diff td.mark{box-shadow:inset 3px 0 #e90;font-weight:bold}
table.diff tr.fold td{background:#f4f4f8;color:#666;text-align:center;font-style:italic}
table.diff tr.note td{color:#666;font-style:italic;text-align:left}";

/// One line of one body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the pretty-printed body.
    pub number: usize,
    pub text: String,
    /// The line holds a differing path's key or value.
    pub marked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Same,
    /// Both sides present and different.
    Changed,
    /// Only on the secondary.
    Added,
    /// Only on the primary.
    Removed,
    /// `count` unchanged lines not shown.
    Folded {
        count: usize,
    },
}

/// One row of the side-by-side view. A `Folded` row has neither side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub left: Option<Line>,
    pub right: Option<Line>,
    pub kind: RowKind,
}

/// What a body was shown as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Empty,
    Json,
    Text,
    Binary,
}

/// Two bodies side by side; build with [`DiffView::new`] or [`DiffView::from_stored`],
/// render with [`DiffView::to_html`] or [`DiffView::to_terminal`], or walk
/// [`DiffView::rows`] to render it another way.
#[derive(Clone, Debug)]
pub struct DiffView {
    rows: Vec<Row>,
    notes: Vec<String>,
    shapes: (Shape, Shape),
}

/// One body printed: its lines and which of them are marked.
struct Printed {
    lines: Vec<String>,
    marked: HashSet<usize>,
    shape: Shape,
    notes: Vec<String>,
}

impl DiffView {
    /// Bodies already decoded. `content_type` (a Content-Type value or bare media type)
    /// says what they are, as the engine reads it; without one the content decides.
    /// `paths` are the differences' paths (`body/a/0`, `body#L3`; others are ignored).
    pub fn new(
        primary: &[u8],
        secondary: &[u8],
        content_type: Option<&str>,
        paths: &[&str],
    ) -> DiffView {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        let declared = decode::declared(media.as_deref());
        let wanted: HashSet<&str> = paths.iter().copied().collect();
        let left = print(primary, declared, &wanted);
        let right = print(secondary, declared, &wanted);
        DiffView::of(left, right, Vec::new())
    }

    /// Bodies as the store keeps them, with their response headers: Content-Encoding
    /// and charset are undone as the engine undid them (a body that cannot be decoded is
    /// shown as stored, with a note) and Content-Type says what each body is.
    pub fn from_stored(
        primary_headers: &[(String, String)],
        primary_body: &[u8],
        secondary_headers: &[(String, String)],
        secondary_body: &[u8],
        paths: &[&str],
    ) -> DiffView {
        let wanted: HashSet<&str> = paths.iter().copied().collect();
        let mut notes = Vec::new();
        let mut side = |leg: &str, headers: &[(String, String)], body: &[u8]| {
            let map = header_map(headers);
            match decode::decode(&map, body) {
                Ok(decoded) => print(&decoded.bytes, decoded.declared, &wanted),
                Err(reason) => {
                    notes.push(format!("{leg} body shown as stored: {reason}"));
                    let media = decode::media_type(&map);
                    print(body, decode::declared(media.as_deref()), &wanted)
                }
            }
        };
        let left = side("primary", primary_headers, primary_body);
        let right = side("secondary", secondary_headers, secondary_body);
        DiffView::of(left, right, notes)
    }

    fn of(left: Printed, right: Printed, mut notes: Vec<String>) -> DiffView {
        for (leg, printed) in [("primary", &left), ("secondary", &right)] {
            for note in &printed.notes {
                notes.push(format!("{leg} body: {note}"));
            }
        }
        let deadline = Instant::now() + DIFF_DEADLINE;
        let ops = similar::capture_diff_slices_deadline(
            Algorithm::Myers,
            &left.lines,
            &right.lines,
            Some(deadline),
        );
        let line = |printed: &Printed, i: usize| Line {
            number: i + 1,
            text: printed.lines[i].clone(),
            marked: printed.marked.contains(&i),
        };
        let mut rows = Vec::new();
        for op in ops {
            let (tag, old, new) = op.as_tag_tuple();
            let kind = |has_left: bool, has_right: bool| match (tag, has_left, has_right) {
                (DiffTag::Equal, _, _) => RowKind::Same,
                (_, true, true) => RowKind::Changed,
                (_, true, false) => RowKind::Removed,
                _ => RowKind::Added,
            };
            for k in 0..old.len().max(new.len()) {
                let l = (k < old.len()).then(|| line(&left, old.start + k));
                let r = (k < new.len()).then(|| line(&right, new.start + k));
                rows.push(Row {
                    kind: kind(l.is_some(), r.is_some()),
                    left: l,
                    right: r,
                });
            }
        }
        DiffView {
            rows: fold(rows),
            notes,
            shapes: (left.shape, right.shape),
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// What the reader should know about what is shown: cuts, decoding failures.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// What the primary's and the secondary's bodies were shown as.
    pub fn shapes(&self) -> (Shape, Shape) {
        self.shapes
    }

    /// Whether any row differs.
    pub fn has_changes(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.kind, RowKind::Changed | RowKind::Added | RowKind::Removed))
    }

    /// Keeps the first `max` rows (a page with many examples stays small); the cut is
    /// noted.
    pub fn limit_rows(&mut self, max: usize) {
        if self.rows.len() > max {
            let cut = self.rows.len() - max;
            self.rows.truncate(max);
            self.notes.push(format!("{cut} more rows not shown"));
        }
    }

    /// A self-contained `<table class="diff">` fragment, everything escaped: rows are
    /// `tr.same|changed|added|removed|fold`, line cells `td.del` (primary side of a change)
    /// and `td.ins` (secondary side), marked lines add `mark`. [`DIFF_CSS`] styles it.
    pub fn to_html(&self) -> String {
        let mut out = String::from(
            "<table class=\"diff\"><thead><tr><th class=\"n\"></th><th>primary</th><th class=\"n\"></th><th>secondary</th></tr></thead><tbody>",
        );
        for row in &self.rows {
            let (class, left_class, right_class) = match row.kind {
                RowKind::Same => ("same", "", ""),
                RowKind::Changed => ("changed", "del", "ins"),
                RowKind::Added => ("added", "", "ins"),
                RowKind::Removed => ("removed", "del", ""),
                RowKind::Folded { count } => {
                    let _ = write!(
                        out,
                        "<tr class=\"fold\"><td colspan=\"4\">{}</td></tr>",
                        folded_text(count)
                    );
                    continue;
                }
            };
            let _ = write!(out, "<tr class=\"{class}\">");
            for (line, cell) in [(&row.left, left_class), (&row.right, right_class)] {
                match line {
                    Some(line) => {
                        let classes = match (cell, line.marked) {
                            ("", false) => String::new(),
                            ("", true) => " class=\"mark\"".to_string(),
                            (c, false) => format!(" class=\"{c}\""),
                            (c, true) => format!(" class=\"{c} mark\""),
                        };
                        let _ = write!(
                            out,
                            "<td class=\"n\">{}</td><td{classes}>{}</td>",
                            line.number,
                            super::html::escape(&line.text)
                        );
                    }
                    None => out.push_str("<td class=\"n\"></td><td></td>"),
                }
            }
            out.push_str("</tr>");
        }
        for note in &self.notes {
            let _ = write!(
                out,
                "<tr class=\"note\"><td colspan=\"4\">{}</td></tr>",
                super::html::escape(note)
            );
        }
        out.push_str("</tbody></table>");
        out
    }

    /// The view in `width` terminal columns (40 to 1000): each side gets half, long lines
    /// wrap within their side (wide characters count two columns). Changed lines carry
    /// `-` (primary) and `+` (secondary), marked lines `*`, so the view reads without
    /// colour too; with `colour`, ANSI red/green/yellow as well.
    pub fn to_terminal(&self, width: usize, colour: bool) -> String {
        let width = width.clamp(40, 1000);
        let side = (width - 3) / 2;
        let digits = self
            .rows
            .iter()
            .flat_map(|r| [&r.left, &r.right])
            .flatten()
            .map(|l| l.number)
            .max()
            .unwrap_or(1)
            .to_string()
            .len();
        // sign, number, mark, space
        let gutter = digits + 3;
        let text_width = side.saturating_sub(gutter).max(8);
        let paint = |code: &str, text: &str| {
            if colour && !code.is_empty() {
                format!("\u{1b}[{code}m{text}\u{1b}[0m")
            } else {
                text.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{} │ {}",
            paint("1", "primary"),
            " ".repeat(side.saturating_sub(7)),
            paint("1", "secondary")
        );
        for row in &self.rows {
            let (left_style, right_style) = match row.kind {
                RowKind::Same => ("", ""),
                RowKind::Changed => ("31", "32"),
                RowKind::Added => ("", "32"),
                RowKind::Removed => ("31", ""),
                RowKind::Folded { count } => {
                    let text = folded_text(count);
                    let pad = width.saturating_sub(display_width(&text)) / 2;
                    let _ = writeln!(out, "{}{}", " ".repeat(pad), paint("2;36", &text));
                    continue;
                }
            };
            let cells = [(&row.left, left_style, '-'), (&row.right, right_style, '+')].map(
                |(line, style, sign)| {
                    let Some(line) = line else {
                        return vec![" ".repeat(side)];
                    };
                    let chunks = wrap(&terminal_text(&line.text), text_width);
                    chunks
                        .iter()
                        .enumerate()
                        .map(|(i, chunk)| {
                            let lead = if i == 0 {
                                let sign = if style.is_empty() { ' ' } else { sign };
                                let mark = if line.marked {
                                    paint("1;33", "*")
                                } else {
                                    " ".into()
                                };
                                format!("{sign}{:>digits$}{mark} ", line.number)
                            } else {
                                " ".repeat(gutter)
                            };
                            let pad =
                                " ".repeat(side.saturating_sub(gutter + display_width(chunk)));
                            format!("{lead}{}{pad}", paint(style, chunk))
                        })
                        .collect::<Vec<_>>()
                },
            );
            let height = cells[0].len().max(cells[1].len());
            for i in 0..height {
                let blank = " ".repeat(side);
                let left = cells[0].get(i).unwrap_or(&blank);
                let right = cells[1].get(i).map(String::as_str).unwrap_or("");
                let _ = writeln!(out, "{left} │ {}", right.trim_end());
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "({})", terminal_text(note));
        }
        out
    }
}

fn folded_text(count: usize) -> String {
    match count {
        1 => "… 1 unchanged line …".to_string(),
        n => format!("… {n} unchanged lines …"),
    }
}

/// Response headers as a map for the decoder; pairs that are not valid headers are left
/// out (they cannot name an encoding the decoder would undo).
fn header_map(headers: &[(String, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Replaces what must not reach a terminal or a page: C0 and C1 control characters (ESC
/// and CSI start escape sequences) and the bidirectional overrides that make text read
/// differently from what it is. Tabs stay (the terminal renderer expands them).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => '\t',
            c if c.is_control() => '\u{fffd}',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// A line cut at [`MAX_LINE_CHARS`] characters.
fn capped(line: &str) -> (String, bool) {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => (format!("{}…", sanitize(&line[..cut])), true),
        None => (sanitize(line), false),
    }
}

fn print(bytes: &[u8], declared: Declared, wanted: &HashSet<&str>) -> Printed {
    let mut printed = Printed {
        lines: Vec::new(),
        marked: HashSet::new(),
        shape: Shape::Empty,
        notes: Vec::new(),
    };
    match crate::compare::classify(bytes, declared) {
        Body::Empty => {
            if !bytes.is_empty() {
                printed
                    .notes
                    .push(format!("{} bytes of whitespace", bytes.len()));
            } else {
                printed.notes.push("empty".into());
            }
        }
        Body::Json(tape) => {
            printed.shape = Shape::Json;
            json_lines(&tape, wanted, &mut printed);
        }
        Body::BadJson(reason) => {
            printed.shape = Shape::Text;
            printed.notes.push(format!("{reason}; shown as text"));
            text_lines(&String::from_utf8_lossy(bytes), wanted, &mut printed);
        }
        Body::Text(text) => {
            printed.shape = Shape::Text;
            text_lines(text, wanted, &mut printed);
        }
        Body::Binary => {
            printed.shape = Shape::Binary;
            printed
                .lines
                .push(format!("<{}>", crate::compare::digest(bytes)));
        }
    }
    printed
}

fn text_lines(text: &str, wanted: &HashSet<&str>, printed: &mut Printed) {
    let mut long = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i == MAX_LINES {
            printed
                .notes
                .push(format!("cut at {MAX_LINES} lines; `show` prints no more"));
            break;
        }
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (line, cut) = capped(line);
        long += usize::from(cut);
        printed.lines.push(line);
    }
    if long > 0 {
        printed
            .notes
            .push(format!("{long} line(s) cut at {MAX_LINE_CHARS} characters"));
    }
    for path in wanted {
        if let Some(n) = path
            .strip_prefix("body#L")
            .and_then(|n| n.parse::<usize>().ok())
        {
            if (1..=printed.lines.len()).contains(&n) {
                printed.marked.insert(n - 1);
            }
        }
    }
}

/// The pretty-printer: two-space indent, keys sorted (of duplicate keys the last wins, as
/// the engine reads them), and each wanted path's line recorded as it is written.
struct JsonPrinter<'w, 'p> {
    wanted: &'w HashSet<&'w str>,
    out: &'p mut Printed,
    path: String,
    long: usize,
    full: bool,
}

fn json_lines(tape: &Tape, wanted: &HashSet<&str>, printed: &mut Printed) {
    let mut printer = JsonPrinter {
        wanted,
        out: printed,
        path: String::from("body"),
        long: 0,
        full: false,
    };
    printer.value(tape.root(), 0, "", "");
    let (long, full) = (printer.long, printer.full);
    if full {
        printed
            .notes
            .push(format!("cut at {MAX_LINES} lines of pretty-printed JSON"));
    }
    if long > 0 {
        printed
            .notes
            .push(format!("{long} line(s) cut at {MAX_LINE_CHARS} characters"));
    }
}

impl JsonPrinter<'_, '_> {
    fn push(&mut self, indent: usize, text: &str) {
        if self.out.lines.len() >= MAX_LINES {
            self.full = true;
            return;
        }
        let mut line = "  ".repeat(indent);
        line.push_str(text);
        let (line, cut) = capped(&line);
        self.long += usize::from(cut);
        self.out.lines.push(line);
    }

    fn mark_here(&mut self) {
        if self.wanted.contains(self.path.as_str()) {
            let at = self.out.lines.len();
            if at < MAX_LINES {
                self.out.marked.insert(at);
            }
        }
    }

    /// Writes `prefix` (a key and `: `, or nothing), the value, then `suffix` (`,` or
    /// nothing). Depth is bounded by the tape's own nesting limit.
    fn value(&mut self, v: Value<'_>, indent: usize, prefix: &str, suffix: &str) {
        if self.full {
            return;
        }
        self.mark_here();
        match v.view() {
            View::Array(items) if items.len() > 0 => {
                self.push(indent, &format!("{prefix}["));
                let len = items.len();
                for (i, item) in items.enumerate() {
                    let saved = self.path.len();
                    let _ = write!(self.path, "/{i}");
                    self.value(item, indent + 1, "", if i + 1 < len { "," } else { "" });
                    self.path.truncate(saved);
                    if self.full {
                        return;
                    }
                }
                self.push(indent, &format!("]{suffix}"));
            }
            View::Object(entries) if entries.len() > 0 => {
                self.push(indent, &format!("{prefix}{{"));
                let mut entries: Vec<(&str, Value<'_>)> = entries.collect();
                // Stable: of equal keys the last in the document ends up last, and wins.
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut kept: Vec<(&str, Value<'_>)> = Vec::with_capacity(entries.len());
                for entry in entries {
                    match kept.last_mut() {
                        Some(last) if last.0 == entry.0 => *last = entry,
                        _ => kept.push(entry),
                    }
                }
                let len = kept.len();
                for (i, (key, item)) in kept.into_iter().enumerate() {
                    let saved = self.path.len();
                    self.path.push('/');
                    escape_key(key, &mut self.path);
                    let prefix = format!("{}: ", json_string(key));
                    self.value(
                        item,
                        indent + 1,
                        &prefix,
                        if i + 1 < len { "," } else { "" },
                    );
                    self.path.truncate(saved);
                    if self.full {
                        return;
                    }
                }
                self.push(indent, &format!("}}{suffix}"));
            }
            view => {
                let scalar = match view {
                    View::Null => "null".to_string(),
                    View::Bool(b) => b.to_string(),
                    View::Int(i) => i.to_string(),
                    View::BigInt(text) => text.to_string(),
                    View::Float(f) => format!("{f:?}"),
                    View::Str(s) => json_string(s),
                    View::Array(_) => "[]".to_string(),
                    View::Object(_) => "{}".to_string(),
                };
                self.push(indent, &format!("{prefix}{scalar}{suffix}"));
            }
        }
    }
}

/// A string as JSON text; a long one is cut before escaping so a megabyte string costs
/// no more than a line.
fn json_string(s: &str) -> String {
    let s = match s.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => &s[..cut],
        None => s,
    };
    serde_json::to_string(s).unwrap_or_default()
}

/// Folds every stretch of unchanged, unmarked rows longer than twice the context, keeping
/// [`CONTEXT`] rows next to each change; a stretch at the start or end keeps only the
/// side next to a change, and a view with no change at all keeps its first rows.
fn fold(rows: Vec<Row>) -> Vec<Row> {
    let plain = |r: &Row| {
        r.kind == RowKind::Same
            && !r.left.as_ref().is_some_and(|l| l.marked)
            && !r.right.as_ref().is_some_and(|l| l.marked)
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter().enumerate().peekable();
    let mut pending: Vec<Row> = Vec::new();
    let mut start = 0;
    let flush = |pending: &mut Vec<Row>, out: &mut Vec<Row>, at_start: bool, at_end: bool| {
        let n = pending.len();
        let before = if at_start { 0 } else { CONTEXT };
        let after = if at_end { 0 } else { CONTEXT };
        let (before, after) = if at_start && at_end {
            (2 * CONTEXT, 0)
        } else {
            (before, after)
        };
        // Folding fewer than two lines saves nothing.
        if n < before + after + 2 {
            out.append(pending);
            return;
        }
        let tail = pending.split_off(n - after);
        let folded = pending.len() - before;
        pending.truncate(before);
        out.append(pending);
        out.push(Row {
            left: None,
            right: None,
            kind: RowKind::Folded { count: folded },
        });
        out.extend(tail);
    };
    while let Some((i, row)) = rows.next() {
        if plain(&row) {
            if pending.is_empty() {
                start = i;
            }
            pending.push(row);
            if rows.peek().is_none() {
                flush(&mut pending, &mut out, start == 0, true);
            }
        } else {
            if !pending.is_empty() {
                flush(&mut pending, &mut out, start == 0, false);
            }
            out.push(row);
        }
    }
    out
}

/// Tabs as spaces: a terminal would expand them to its own stops and break the columns.
fn terminal_text(text: &str) -> String {
    sanitize(text).replace('\t', "    ")
}

fn display_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` in pieces of at most `width` columns; a wide character is never split and
/// never overflows. An empty text is one empty piece.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width && used > 0 {
            pieces.push(String::new());
            used = 0;
        }
        if let Some(piece) = pieces.last_mut() {
            piece.push(c);
        }
        used += w;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(a: &str, b: &str, paths: &[&str]) -> DiffView {
        DiffView::new(a.as_bytes(), b.as_bytes(), Some("application/json"), paths)
    }

    fn texts(view: &DiffView, left: bool) -> Vec<String> {
        view.rows()
            .iter()
            .filter_map(|r| if left { &r.left } else { &r.right }.as_ref())
            .map(|l| l.text.clone())
            .collect()
    }

    #[test]
    fn json_is_pretty_printed_with_sorted_keys() {
        let view = json(
            r#"{"b":1,"a":{"d":[1,2.5],"c":null}}"#,
            r#"{"a":{},"b":[]}"#,
            &[],
        );
        assert_eq!(
            texts(&view, true),
            [
                "{",
                "  \"a\": {",
                "    \"c\": null,",
                "    \"d\": [",
                "      1,",
                "      2.5",
                "    ]",
                "  },",
                "  \"b\": 1",
                "}"
            ]
        );
        assert_eq!(
            texts(&view, false),
            ["{", "  \"a\": {},", "  \"b\": []", "}"]
        );
        assert_eq!(view.shapes(), (Shape::Json, Shape::Json));
    }

    #[test]
    fn big_integers_and_duplicate_keys_read_as_the_engine_reads_them() {
        let view = json(
            r#"{"n":123456789012345678901234567890,"k":1,"k":2}"#,
            "{}",
            &[],
        );
        let left = texts(&view, true);
        assert!(left.contains(&"  \"n\": 123456789012345678901234567890".to_string()));
        assert!(left.contains(&"  \"k\": 2,".to_string()), "{left:?}");
        assert!(!left.iter().any(|l| l.contains("\"k\": 1")), "{left:?}");
    }

    #[test]
    fn a_changed_line_is_highlighted_on_both_sides_and_its_path_marked() {
        let view = json(
            r#"{"name":"ada","price":1}"#,
            r#"{"name":"ada","price":2}"#,
            &["body/price", "status"],
        );
        let changed: Vec<&Row> = view
            .rows()
            .iter()
            .filter(|r| r.kind == RowKind::Changed)
            .collect();
        assert_eq!(changed.len(), 1);
        let left = changed[0].left.as_ref().unwrap();
        let right = changed[0].right.as_ref().unwrap();
        assert_eq!((left.number, left.text.as_str()), (3, "  \"price\": 1"));
        assert_eq!(right.text, "  \"price\": 2");
        assert!(left.marked && right.marked);
        assert!(view.has_changes());
        let html = view.to_html();
        assert!(
            html.contains("<td class=\"del mark\">  &quot;price&quot;: 1</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"ins mark\">  &quot;price&quot;: 2</td>"),
            "{html}"
        );
    }

    #[test]
    fn nested_paths_and_escaped_keys_find_their_lines() {
        let view = json(
            r#"{"a/b":{"items":[{"x":1},{"x":2}]}}"#,
            r#"{"a/b":{"items":[{"x":1},{"x":3}]}}"#,
            &["body/a~1b/items/1/x", "body/a~1b/items/1"],
        );
        let marked: Vec<(usize, &str)> = view
            .rows()
            .iter()
            .filter_map(|r| r.left.as_ref())
            .filter(|l| l.marked)
            .map(|l| (l.number, l.text.as_str()))
            .collect();
        assert_eq!(marked, [(7, "      {"), (8, "        \"x\": 2")]);
    }

    #[test]
    fn a_text_line_path_marks_its_line() {
        let view = DiffView::new(b"a\nb\nc\n", b"a\nB\nc\n", Some("text/plain"), &["body#L2"]);
        let marked: Vec<usize> = view
            .rows()
            .iter()
            .filter_map(|r| r.left.as_ref())
            .filter(|l| l.marked)
            .map(|l| l.number)
            .collect();
        assert_eq!(marked, [2]);
        assert_eq!(view.shapes(), (Shape::Text, Shape::Text));
    }

    #[test]
    fn long_unchanged_stretches_are_folded_with_context() {
        let a: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
        let mut b = a.clone();
        b[25] = "changed".into();
        let (a, b) = (a.join("\n"), b.join("\n"));
        let view = DiffView::new(a.as_bytes(), b.as_bytes(), Some("text/plain"), &[]);
        let kinds: Vec<RowKind> = view.rows().iter().map(|r| r.kind).collect();
        let expected: Vec<RowKind> = [RowKind::Folded { count: 22 }]
            .into_iter()
            .chain([RowKind::Same; 3])
            .chain([RowKind::Changed])
            .chain([RowKind::Same; 3])
            .chain([RowKind::Folded { count: 21 }])
            .collect();
        assert_eq!(kinds, expected);
        assert_eq!(view.rows()[1].left.as_ref().unwrap().number, 23);
        let html = view.to_html();
        assert!(
            html.contains("<tr class=\"fold\"><td colspan=\"4\">… 22 unchanged lines …</td></tr>")
        );
        // Short stretches stay.
        let view = DiffView::new(b"a\nb\nc\nd\n", b"a\nb\nc\nD\n", None, &[]);
        assert_eq!(view.rows().len(), 4);
        // No change at all: the first lines, then the fold.
        let same = (0..20)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let view = DiffView::new(same.as_bytes(), same.as_bytes(), None, &[]);
        assert_eq!(view.rows().len(), 7);
        assert_eq!(view.rows()[6].kind, RowKind::Folded { count: 14 });
        assert!(!view.has_changes());
    }

    #[test]
    fn markup_in_a_body_never_renders_as_a_tag() {
        let view = DiffView::new(
            b"<script>alert(1)</script>",
            b"<img src=x onerror=alert(1)>\x1b[2J",
            Some("text/html"),
            &[],
        );
        let html = view.to_html();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains('\u{1b}'));
        let terminal = view.to_terminal(80, false);
        assert!(
            !terminal.contains('\u{1b}'),
            "escape sequences from a body: {terminal:?}"
        );
    }

    #[test]
    fn binary_and_empty_bodies_are_summarized() {
        let view = DiffView::new(&[0, 159, 146, 150, 0], b"", Some("image/png"), &[]);
        assert_eq!(view.shapes(), (Shape::Binary, Shape::Empty));
        assert_eq!(view.rows().len(), 1);
        assert!(view.rows()[0]
            .left
            .as_ref()
            .unwrap()
            .text
            .starts_with("<5 bytes, sha256:"));
        assert!(view.notes().iter().any(|n| n == "secondary body: empty"));
        // Invalid UTF-8 declared as text is shown lossily, never refused.
        let view = DiffView::new(
            b"caf\xe9\n",
            b"cafe\n",
            Some("text/plain; charset=utf-8"),
            &[],
        );
        assert_eq!(view.shapes().1, Shape::Text);
    }

    #[test]
    fn stored_bodies_are_decoded_as_the_engine_decoded_them() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"a":1}"#).unwrap();
        let gzipped = gz.finish().unwrap();
        let headers = |encoding: &str| {
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("content-encoding".to_string(), encoding.to_string()),
            ]
        };
        let view = DiffView::from_stored(
            &headers("gzip"),
            &gzipped,
            &headers("br"),
            b"not brotli",
            &["body/a"],
        );
        assert_eq!(view.rows()[1].left.as_ref().unwrap().text, "  \"a\": 1");
        assert!(
            view.notes()
                .iter()
                .any(|n| n.starts_with("secondary body shown as stored")),
            "{:?}",
            view.notes()
        );
    }

    #[test]
    fn huge_and_deep_bodies_are_capped_not_refused() {
        let big = format!("[{}]", vec!["1"; MAX_LINES * 2].join(","));
        let view = json(&big, "[]", &[]);
        assert!(view.rows().len() <= MAX_LINES + 1);
        assert!(
            view.notes().iter().any(|n| n.contains("cut at")),
            "{:?}",
            view.notes()
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let view = json(&deep, "{}", &[]);
        assert_eq!(view.shapes().0, Shape::Text);
        let long = format!("{{\"s\":\"{}\"}}", "x".repeat(MAX_LINE_CHARS * 3));
        let view = json(&long, "{}", &[]);
        assert!(view
            .rows()
            .iter()
            .filter_map(|r| r.left.as_ref())
            .all(|l| l.text.chars().count() <= MAX_LINE_CHARS + 1));
    }

    #[test]
    fn the_terminal_view_fits_its_width_with_wide_characters_and_long_lines() {
        let a = format!(
            "{{\"name\":\"{}\",\"city\":\"東京都千代田区丸の内一丁目東京駅前の長い住所です\"}}",
            "n".repeat(300)
        );
        let b = a.replace("東京", "大阪");
        let view = json(&a, &b, &["body/city"]);
        for width in [40, 80, 100] {
            let out = view.to_terminal(width, false);
            for line in out.lines() {
                assert!(
                    display_width(line) <= width,
                    "{width}: {line:?} is {}",
                    display_width(line)
                );
            }
            // Nothing is dropped: the long line wraps.
            let joined: String = out.lines().collect();
            assert!(joined.matches('n').count() >= 600, "{out}");
        }
        let plain = view.to_terminal(100, false);
        assert!(!plain.contains('\u{1b}'));
        assert!(
            plain
                .lines()
                .any(|l| l.starts_with('-') && l.contains("東京")),
            "{plain}"
        );
        assert!(
            plain
                .lines()
                .any(|l| l.contains("│ +") && l.contains("大阪")),
            "{plain}"
        );
        assert!(plain.contains("2* "), "the marked line: {plain}");
        let coloured = view.to_terminal(100, true);
        assert!(coloured.contains("\u{1b}[31m") && coloured.contains("\u{1b}[32m"));
    }
}
