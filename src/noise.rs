//! What the baseline teaches: where the primary differs from another instance of its own
//! version is noise, not a migration's change.
//!
//! Two decisions, both named in the report as hidden by `baseline <path>`:
//! - **for one request**: a path at which the primary and the baseline differed on that
//!   request is noise for it, and so is everything below it;
//! - **for a route**: over the route's last `window` comparisons with a usable baseline, a
//!   path at which primary and baseline differed in at least `threshold` of them is noise
//!   on the route when the secondary differed there at a rate close to that (Diffy's
//!   relative threshold: |s - b| / ((s + b) / 2) at most `relative`). A path the baseline
//!   differs on 1% of the time while the secondary differs on all of them is reported.
//!
//! The memory is the compare thread's, per process; it is bounded by [`MAX_ROUTES`] and
//! [`MAX_PATHS_PER_COMPARISON`].

use crate::compare::{DiffKind, Difference, HiddenCount, Verdict};
use crate::config::NoiseConfig;
use std::collections::{HashMap, VecDeque};

/// Routes remembered; later routes get per-request noise only.
const MAX_ROUTES: usize = 1024;
/// Paths of one comparison kept in the memory (a wholly different document has thousands).
const MAX_PATHS_PER_COMPARISON: usize = 256;

/// The rule id under which differences hidden because of `path` are counted.
pub fn rule_id(path: &str) -> String {
    format!("baseline {path}")
}

/// [`covers_with`], building the template on the spot.
#[cfg(test)]
fn covers(noise: &Difference, difference: &Difference) -> bool {
    covers_with(noise, line_template(noise).as_ref(), difference)
}

/// Whether the baseline's difference `noise` makes `difference` (primary against
/// secondary) noise; `template` is the noise's [`line_template`], built once per request.
/// A changed text line is noise in its differing tokens only, so it is matched by
/// content, wherever the line moved: `difference` is noise when both its lines fit the
/// line the baseline showed with those tokens left open (a query time, an id), and a real
/// change on such a line (a version string) still shows. Anything else is noise at the
/// same path or below it.
fn covers_with(
    noise: &Difference,
    template: Option<&regex::Regex>,
    difference: &Difference,
) -> bool {
    if is_line(&noise.path) {
        return match template {
            Some(template) => {
                is_line(&difference.path)
                    && [&difference.primary, &difference.secondary]
                        .iter()
                        .all(|line| line.as_deref().is_some_and(|l| template.is_match(l)))
            }
            None => noise.path == difference.path,
        };
    }
    // The baseline listing the same elements in another order makes the order noise, not
    // the elements: only the secondary's reordering of that same array is hidden.
    if noise.kind == DiffKind::Reordered {
        return difference.kind == DiffKind::Reordered && difference.path == noise.path;
    }
    at_or_below(&difference.path, &noise.path)
}

/// A text body's line (`body#L12`).
fn is_line(path: &str) -> bool {
    path.starts_with("body#L")
}

/// Runs of a "word" (letters, digits and the punctuation inside numbers, times and ids)
/// or of anything else: the units a line's noise is told apart in.
fn tokens(line: &str) -> Vec<&str> {
    static TOKEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| regex::Regex::new(r"[A-Za-z0-9_.:+-]+|[^A-Za-z0-9_.:+-]+").expect("valid"))
        .find_iter(line)
        .map(|m| m.as_str())
        .collect()
}

/// The pattern of a changed line whose two versions differ only in generated-looking
/// tokens (a token with a digit: numbers, durations, timestamps, ids): those tokens open,
/// the rest literal. `None` when anything else differs: then the line is noise only where
/// it is.
fn line_template(noise: &Difference) -> Option<regex::Regex> {
    let (a, b) = (noise.primary.as_deref()?, noise.secondary.as_deref()?);
    let (ta, tb) = (tokens(a), tokens(b));
    if ta.len() != tb.len() {
        return None;
    }
    let generated = |t: &str| t.bytes().any(|c| c.is_ascii_digit());
    let mut pattern = String::from("^");
    for (x, y) in ta.iter().zip(&tb) {
        if x == y {
            pattern.push_str(&regex::escape(x));
        } else if generated(x) && generated(y) {
            pattern.push_str("[A-Za-z0-9_.:+-]*[0-9][A-Za-z0-9_.:+-]*");
        } else {
            return None;
        }
    }
    pattern.push('$');
    regex::Regex::new(&pattern).ok()
}

/// Whether `path` is `noise` or below it (`body/a/b` is below `body/a`; `body#L3` below
/// `body`).
fn at_or_below(path: &str, noise: &str) -> bool {
    match path.strip_prefix(noise) {
        Some("") => true,
        Some(rest) => rest.starts_with(['/', '#']),
        None => false,
    }
}

/// `path` and the paths above it, nearest first.
fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rfind(['/', '#']).map(|at| &current[..at]);
        Some(current)
    })
}

/// One comparison's contribution to a route's counts, kept to take it back out when it
/// leaves the window.
struct Seen {
    /// Paths where primary and baseline differed.
    baseline: Vec<String>,
    /// Paths whose secondary count this comparison raised.
    secondary: Vec<String>,
}

#[derive(Default)]
struct RouteNoise {
    window: VecDeque<Seen>,
    /// Per path: comparisons in the window where the baseline differed there, and where
    /// the secondary differed there or below.
    counts: HashMap<String, (u32, u32)>,
}

impl RouteNoise {
    fn learn(&mut self, baseline: &[Difference], secondary: &[Difference], window: usize) {
        let baseline: Vec<String> = baseline
            .iter()
            .take(MAX_PATHS_PER_COMPARISON)
            .map(|d| d.path.clone())
            .collect();
        let mut raised: Vec<String> = Vec::new();
        for path in &baseline {
            self.counts.entry(path.clone()).or_default().0 += 1;
            if secondary.iter().any(|d| at_or_below(&d.path, path)) {
                raised.push(path.clone());
            }
        }
        for difference in secondary.iter().take(MAX_PATHS_PER_COMPARISON) {
            if !raised.contains(&difference.path)
                && !baseline.iter().any(|b| at_or_below(&difference.path, b))
            {
                raised.push(difference.path.clone());
            }
        }
        for path in &raised {
            self.counts.entry(path.clone()).or_default().1 += 1;
        }
        self.window.push_back(Seen {
            baseline,
            secondary: raised,
        });
        while self.window.len() > window {
            let Some(old) = self.window.pop_front() else {
                break;
            };
            for path in old.baseline {
                self.forget(path, true);
            }
            for path in old.secondary {
                self.forget(path, false);
            }
        }
    }

    fn forget(&mut self, path: String, baseline: bool) {
        if let Some(counts) = self.counts.get_mut(&path) {
            if baseline {
                counts.0 = counts.0.saturating_sub(1);
            } else {
                counts.1 = counts.1.saturating_sub(1);
            }
            if *counts == (0, 0) {
                self.counts.remove(&path);
            }
        }
    }

    /// The path (`path` or one above it) that is noise on this route, if any.
    fn noisy<'p>(&self, path: &'p str, config: &NoiseConfig) -> Option<&'p str> {
        let len = self.window.len() as f64;
        if len == 0.0 {
            return None;
        }
        self_and_ancestors(path).find(|candidate| {
            let Some(&(b, s)) = self.counts.get(*candidate) else {
                return false;
            };
            let (b, s) = (f64::from(b) / len, f64::from(s) / len);
            b > 0.0 && b >= config.threshold && (s - b).abs() / ((s + b) / 2.0) <= config.relative
        })
    }
}

/// The compare thread's memory of noisy paths, per route.
pub struct NoiseMemory {
    config: NoiseConfig,
    routes: HashMap<String, RouteNoise>,
}

impl NoiseMemory {
    pub fn new(config: NoiseConfig) -> NoiseMemory {
        NoiseMemory {
            config,
            routes: HashMap::new(),
        }
    }

    /// Hides the differences of `verdict` (primary against secondary) that the baseline
    /// showed to be noise, counting each under `baseline <path>`. `baseline` is how the
    /// primary and the baseline differed on this request, `None` when the baseline was
    /// unusable: then only the route's memory applies, and it learns nothing.
    pub fn apply(&mut self, route: &str, verdict: &mut Verdict, baseline: Option<&[Difference]>) {
        if let Some(paths) = baseline {
            let window = self.config.window;
            if let Some(noise) = self.route_mut(route) {
                noise.learn(paths, &verdict.differences, window);
            }
        }
        let memory = self.routes.get(route);
        let noise: Vec<(&Difference, Option<regex::Regex>)> = baseline
            .unwrap_or_default()
            .iter()
            .map(|n| (n, is_line(&n.path).then(|| line_template(n)).flatten()))
            .collect();
        let mut hidden: Vec<HiddenCount> = Vec::new();
        verdict.differences.retain(|difference| {
            let this_request = noise
                .iter()
                .find(|(n, template)| covers_with(n, template.as_ref(), difference))
                .map(|(n, _)| n.path.as_str());
            let cause = this_request.or_else(|| memory?.noisy(&difference.path, &self.config));
            let Some(cause) = cause else {
                return true;
            };
            let rule = rule_id(cause);
            match hidden.iter_mut().find(|h| h.rule == rule) {
                Some(count) => count.count += 1,
                None => hidden.push(HiddenCount { rule, count: 1 }),
            }
            false
        });
        verdict.hidden.extend(hidden);
        if verdict.differences.is_empty() {
            verdict.body_diff = None;
        }
    }

    fn route_mut(&mut self, route: &str) -> Option<&mut RouteNoise> {
        if !self.routes.contains_key(route) && self.routes.len() >= MAX_ROUTES {
            return None;
        }
        Some(self.routes.entry(route.to_string()).or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> Difference {
        Difference {
            path: path.into(),
            kind: DiffKind::Changed,
            primary: None,
            secondary: None,
            to: None,
        }
    }

    fn verdict(paths: &[&str]) -> Verdict {
        Verdict {
            differences: paths.iter().map(|p| at(p)).collect(),
            ..Verdict::default()
        }
    }

    fn paths(v: &Verdict) -> Vec<&str> {
        v.differences.iter().map(|d| d.path.as_str()).collect()
    }

    #[test]
    fn a_baseline_difference_hides_that_path_and_below_for_the_request() {
        let mut memory = NoiseMemory::new(NoiseConfig::default());
        let mut v = verdict(&["body/id", "body/meta/ts", "body/name", "body/idx"]);
        let baseline = [at("body/id"), at("body/meta")];
        memory.apply("GET /a", &mut v, Some(&baseline));
        assert_eq!(paths(&v), ["body/name", "body/idx"]);
        let rules: Vec<(&str, u64)> = v
            .hidden
            .iter()
            .map(|h| (h.rule.as_str(), h.count))
            .collect();
        assert_eq!(rules, [("baseline body/id", 1), ("baseline body/meta", 1)]);
    }

    #[test]
    fn a_path_noisy_on_the_route_is_hidden_when_the_baseline_happened_to_agree() {
        let mut memory = NoiseMemory::new(NoiseConfig::default());
        // The baseline differs at body/ts on every other request, and so does the
        // secondary, on the others: the same rate, so the path is noise on the route.
        for i in 0..100 {
            let mut v = verdict(if i % 2 == 1 { &["body/ts"] } else { &[] });
            let baseline: Vec<Difference> = if i % 2 == 0 {
                vec![at("body/ts")]
            } else {
                vec![]
            };
            memory.apply("GET /a", &mut v, Some(&baseline));
            if i > 10 {
                assert!(v.differences.is_empty(), "request {i}: {:?}", paths(&v));
            }
        }
        let mut v = verdict(&["body/ts", "body/real"]);
        memory.apply("GET /a", &mut v, Some(&[]));
        assert_eq!(paths(&v), ["body/real"]);
        // An unusable baseline: the route's memory still applies, and learns nothing.
        let mut v = verdict(&["body/ts"]);
        memory.apply("GET /a", &mut v, None);
        assert!(v.differences.is_empty());
        // Another route learnt nothing.
        let mut v = verdict(&["body/ts"]);
        memory.apply("GET /b", &mut v, None);
        assert_eq!(paths(&v), ["body/ts"]);
    }

    #[test]
    fn a_path_the_baseline_rarely_differs_on_while_the_secondary_always_does_is_reported() {
        let mut memory = NoiseMemory::new(NoiseConfig::default());
        for i in 0..200 {
            let mut v = verdict(&["body/price"]);
            let baseline: Vec<Difference> = if i % 100 == 0 {
                vec![at("body/price")]
            } else {
                vec![]
            };
            memory.apply("GET /a", &mut v, Some(&baseline));
            // Hidden only on the requests where the baseline itself differed.
            assert_eq!(v.differences.is_empty(), i % 100 == 0, "request {i}");
        }
    }

    #[test]
    fn the_window_forgets_what_left_it() {
        let config = NoiseConfig {
            window: 10,
            ..NoiseConfig::default()
        };
        let mut memory = NoiseMemory::new(config);
        for _ in 0..10 {
            let mut v = verdict(&["body/ts"]);
            memory.apply("GET /a", &mut v, Some(&[at("body/ts")]));
        }
        for _ in 0..10 {
            let mut v = verdict(&[]);
            memory.apply("GET /a", &mut v, Some(&[]));
        }
        let mut v = verdict(&["body/ts"]);
        memory.apply("GET /a", &mut v, None);
        assert_eq!(paths(&v), ["body/ts"]);
        assert!(memory.routes["GET /a"].counts.is_empty());
    }

    fn line(n: usize, primary: &str, secondary: &str) -> Difference {
        Difference {
            path: format!("body#L{n}"),
            kind: DiffKind::Changed,
            primary: Some(primary.into()),
            secondary: Some(secondary.into()),
            to: None,
        }
    }

    #[test]
    fn a_noisy_text_line_hides_its_tokens_wherever_it_moved_and_a_real_change_still_shows() {
        let mut memory = NoiseMemory::new(NoiseConfig::default());
        // Primary against baseline: the footer's query time differs, on line 9.
        let baseline = [line(
            9,
            "<p>Queries took 11.3ms</p>",
            "<p>Queries took 9.8ms</p>",
        )];
        // Primary against secondary: the secondary added a line, so the footer is line 10
        // there; and the version next to it really changed.
        let mut v = Verdict {
            differences: vec![
                line(9, "<p>Queries took 11.3ms</p>", "<p>Queries took 14ms</p>"),
                line(10, "<p>version 1.4.2</p>", "<p>version 2.0.0</p>"),
            ],
            ..Verdict::default()
        };
        memory.apply("GET /page", &mut v, Some(&baseline));
        assert_eq!(paths(&v), ["body#L10"]);
        assert_eq!(v.hidden[0].rule, "baseline body#L9");
        // A line whose words differ (not generated tokens) is noise only where it is.
        let words = line(3, "<b>Hello Ann</b>", "<b>Hello Bob</b>");
        assert!(line_template(&words).is_none());
        assert!(covers(&words, &line(3, "x", "y")));
        assert!(!covers(&words, &line(4, "x", "y")));
    }

    #[test]
    fn ancestors_run_from_the_path_up() {
        let up: Vec<&str> = self_and_ancestors("body/a/b#L3").collect();
        assert_eq!(up, ["body/a/b#L3", "body/a/b", "body/a", "body"]);
        assert!(at_or_below("body/a/b", "body/a"));
        assert!(!at_or_below("body/ab", "body/a"));
        assert!(at_or_below("body#L3", "body"));
    }
}
