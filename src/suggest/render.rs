//! The proposals as a config file (`serve --config` and `config check` take it as is, each
//! rule under a comment with its evidence), and in short for the reports.

use super::{MaskRule, Observation, Proposal, Rule, Suggestions};
use crate::config::value::quoted;
use std::fmt::Write;

/// Top rules the reports name.
const SUMMARY_RULES: usize = 3;

/// The TOML config. "Looks real" and not-judged paths are comments only.
pub fn config(s: &Suggestions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# shadowdiff suggest: {} rule(s) from {} differences of {} stored mismatches in {}.",
        s.rules().count(),
        s.differences,
        s.mismatches,
        s.databases.join(", ")
    );
    if let Some(limit) = s.bounded {
        let _ = writeln!(
            out,
            "# Only the newest {limit} differences of each store were read."
        );
    }
    let _ = writeln!(
        out,
        "# Each rule hides differences: read its evidence before you use it. Paths listed under\n# \"looks real\" at the end changed in ways no rule should hide."
    );
    if !s.global.is_empty() {
        out.push_str("\n[compare]\n");
        rule_lists(&mut out, &s.global);
    }
    for route in &s.routes {
        let _ = write!(out, "\n[[route]]\npattern = {}\n", quoted(&route.route));
        rule_lists(&mut out, &route.rules);
    }
    observations(&mut out, "looks real (no rule proposed)", &s.looks_real);
    observations(&mut out, "not judged", &s.not_judged);
    if s.left_out > 0 {
        let _ = writeln!(
            out,
            "\n# {} differences at paths beyond the first {} were not judged; narrow with --route or --since.",
            s.left_out,
            super::MAX_PATHS
        );
    }
    out
}

fn rule_lists(out: &mut String, rules: &[Proposal]) {
    let mut ignore = Vec::new();
    let mut mask = Vec::new();
    let mut unordered = Vec::new();
    for proposal in rules {
        match &proposal.rule {
            Rule::Ignore(path) => ignore.push((proposal, quoted(path))),
            Rule::Mask(MaskRule::Preset(name)) => mask.push((proposal, quoted(name))),
            Rule::Mask(MaskRule::Regex { regex, replace }) => mask.push((
                proposal,
                format!(
                    "{{ regex = {}, replace = {} }}",
                    quoted(regex),
                    quoted(replace)
                ),
            )),
            Rule::Unordered { path, key: None } => unordered.push((proposal, quoted(path))),
            Rule::Unordered {
                path,
                key: Some(key),
            } => unordered.push((
                proposal,
                format!("{{ path = {}, key = {} }}", quoted(path), quoted(key)),
            )),
            Rule::Tolerance { relative } => {
                let _ = writeln!(out, "# {}", one_line(&proposal.evidence));
                let _ = writeln!(out, "tolerance = {{ relative = {relative:e} }}");
            }
        }
    }
    for (key, items) in [("ignore", ignore), ("mask", mask), ("unordered", unordered)] {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{key} = [");
        for (proposal, value) in items {
            let _ = writeln!(out, "  # {}", one_line(&proposal.evidence));
            let _ = writeln!(out, "  {value},");
        }
        out.push_str("]\n");
    }
}

fn observations(out: &mut String, title: &str, list: &[Observation]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n# {title}:");
    for o in list {
        let _ = writeln!(out, "#   {} {}: {}", o.route, o.path, one_line(&o.evidence));
    }
}

/// A comment stays one line whatever a stored value held.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The suggestions in short, for the end of the text and HTML reports.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub rules: usize,
    pub looks_real: usize,
    /// `GET /users/{id}: ignore body/id (differed in 80 of 80 examples ...)`, biggest first.
    pub top: Vec<String>,
    /// The command that prints the whole config.
    pub command: String,
}

impl Summary {
    pub fn of(s: &Suggestions) -> Summary {
        let mut rules: Vec<(Option<&str>, &Proposal)> = s.rules().collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.1.mismatches));
        let top = rules
            .iter()
            .take(SUMMARY_RULES)
            .map(|(route, p)| {
                format!(
                    "{}: {} ({})",
                    route.unwrap_or("every route"),
                    p.rule.describe(),
                    one_line(&p.evidence)
                )
            })
            .collect();
        let dbs: Vec<String> = s
            .databases
            .iter()
            .map(|d| format!("{} {}", crate::report::model::store_flag(d), shell_word(d)))
            .collect();
        Summary {
            rules: rules.len(),
            looks_real: s.looks_real.len(),
            top,
            command: format!("shadowdiff suggest {}", dbs.join(" ")),
        }
    }
}

/// A path as one shell word: quoted when it holds anything but the usual characters.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
