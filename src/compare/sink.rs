//! Where differences go while two responses are walked: each one is checked against the
//! ignore rules once, at the moment it is found, and either kept or counted for the rule
//! that hid it. Keeping this in one place is what makes "no difference is ever reported at
//! an ignored path" true by construction.

use super::path::segments;
use super::rules::RuleSet;
use super::{DiffKind, Difference};

/// Longest rendering of a value kept in a difference; the rest is elided.
const MAX_RENDERED: usize = 512;

pub struct Sink<'r> {
    pub rules: &'r RuleSet,
    pub differences: Vec<Difference>,
    /// (rule id index, count), in the order first hit.
    pub hidden: Vec<(usize, u64)>,
    /// A probe only asks "do these differ at all?": it stops at the first visible
    /// difference and renders nothing.
    probe: bool,
    pub failed: bool,
}

impl<'r> Sink<'r> {
    pub fn new(rules: &'r RuleSet) -> Sink<'r> {
        Sink {
            rules,
            differences: Vec::new(),
            hidden: Vec::new(),
            probe: false,
            failed: false,
        }
    }

    pub fn probe(rules: &'r RuleSet) -> Sink<'r> {
        Sink {
            probe: true,
            ..Sink::new(rules)
        }
    }

    /// True once a probe has its answer; walkers return early.
    pub fn done(&self) -> bool {
        self.probe && self.failed
    }

    pub fn hide(&mut self, rule: usize) {
        match self.hidden.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, count)) => *count += 1,
            None => self.hidden.push((rule, 1)),
        }
    }

    /// Adds the hidden counts of an accepted probe.
    pub fn absorb(&mut self, other: Sink<'_>) {
        self.absorb_counts(other.hidden);
    }

    /// Adds hidden counts kept from a probe.
    pub fn absorb_counts(&mut self, hidden: Vec<(usize, u64)>) {
        for (rule, count) in hidden {
            match self.hidden.iter_mut().find(|(r, _)| *r == rule) {
                Some((_, c)) => *c += count,
                None => self.hidden.push((rule, count)),
            }
        }
    }

    /// The ignore rule that covers a path, if any.
    pub fn ignored_by(&self, path: &str) -> Option<usize> {
        if self.rules.ignore.is_empty() {
            return None;
        }
        let segs = segments(path);
        self.rules
            .ignore
            .iter()
            .find(|(pattern, _)| pattern.covers(&segs))
            .map(|(_, id)| *id)
    }

    /// Records a difference unless an ignore rule covers its path; values are rendered
    /// only when the difference is kept.
    pub fn emit(
        &mut self,
        path: &str,
        kind: DiffKind,
        primary: impl FnOnce() -> Option<String>,
        secondary: impl FnOnce() -> Option<String>,
    ) {
        if let Some(rule) = self.ignored_by(path) {
            self.hide(rule);
            return;
        }
        if let (DiffKind::Added, Some(rule)) = (kind, self.rules.allow_added) {
            self.hide(rule);
            return;
        }
        if let Some(rule) = self.rules.redacted {
            // Only when comparing against a recording: the values are rendered to ask.
            let (a, b) = (primary(), secondary());
            if redaction_explains(a.as_deref(), b.as_deref()) {
                self.hide(rule);
                return;
            }
            return self.keep(path, None, kind, || a, || b);
        }
        self.keep(path, None, kind, primary, secondary);
    }

    /// Records a renamed key from `path` to `to`. An ignore rule on either path hides it:
    /// a rule written for the old name and one written for the new one both mean "this
    /// field does not matter".
    pub fn emit_renamed(
        &mut self,
        path: &str,
        to: &str,
        primary: impl FnOnce() -> Option<String>,
        secondary: impl FnOnce() -> Option<String>,
    ) {
        if let Some(rule) = self.ignored_by(path).or_else(|| self.ignored_by(to)) {
            self.hide(rule);
            return;
        }
        self.keep(path, Some(to), DiffKind::Renamed, primary, secondary);
    }

    fn keep(
        &mut self,
        path: &str,
        to: Option<&str>,
        kind: DiffKind,
        primary: impl FnOnce() -> Option<String>,
        secondary: impl FnOnce() -> Option<String>,
    ) {
        self.failed = true;
        if self.probe {
            return;
        }
        self.differences.push(Difference {
            path: path.to_string(),
            kind,
            primary: primary().map(elide),
            secondary: secondary().map(elide),
            to: to.map(str::to_string),
        });
    }

    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Applies the masks in order to two different strings; returns the mask that made
    /// them equal, if one did.
    pub fn masked_equal(&self, a: &str, b: &str) -> Option<usize> {
        let mut a = std::borrow::Cow::Borrowed(a);
        let mut b = std::borrow::Cow::Borrowed(b);
        for (mask, id) in &self.rules.masks {
            let new_a = mask.regex.replace_all(&a, mask.replacement.as_str());
            let new_b = mask.regex.replace_all(&b, mask.replacement.as_str());
            let (new_a, new_b) = (new_a.into_owned(), new_b.into_owned());
            if new_a == new_b {
                return Some(*id);
            }
            a = new_a.into();
            b = new_b.into();
        }
        None
    }
}

/// Whether a recorded value with `[redacted]` in it (the whole value, or a secret
/// scrubbed inside it) can be the secondary's value with the secrets put back: the parts
/// around each `[redacted]` appear in the secondary's value in order, first and last at
/// its ends. A value redacted whole explains any secondary value, even of another type.
pub(crate) fn redaction_explains(recorded: Option<&str>, secondary: Option<&str>) -> bool {
    use crate::redact::REDACTED;
    let (Some(recorded), Some(secondary)) = (recorded, secondary) else {
        return false;
    };
    if !recorded.contains(REDACTED) {
        return false;
    }
    let quoted = format!("\"{REDACTED}\"");
    if recorded == REDACTED || recorded == quoted {
        return true;
    }
    let parts: Vec<&str> = recorded.split(REDACTED).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = secondary.strip_prefix(first) else {
        return false;
    };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn elide(mut s: String) -> String {
    if s.len() > MAX_RENDERED {
        let mut cut = MAX_RENDERED;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}
