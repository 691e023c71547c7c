//! What one pair of stored values looks like: generated noise (and of which sort), numeric
//! jitter, a string whose only changes are generated tokens, or a change that may mean
//! something. Each check is a cheap scan of the value: `suggest` judges every stored
//! difference, a million of them in seconds.

use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// Epoch times and timestamps this close to the mismatch's own time count as "now".
const NEAR_MS: i64 = 24 * 60 * 60 * 1000;
/// Strings at least this long, of token characters and mixed classes, may be nonces.
const NONCE_MIN_LEN: usize = 16;
/// Bits of Shannon entropy per character a nonce has at least (hex is 4, words ~2.5-3).
const NONCE_MIN_ENTROPY: f64 = 3.0;
/// Relative difference below which two numbers are taken as the same value.
pub(super) const JITTER_RELATIVE: f64 = 1e-6;
/// Strings up to this long without spaces read as enum-like values (`active`, `EUR`).
const SHORT_STRING: usize = 12;

/// Values that are made anew on every response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Generated {
    Uuid,
    HexId,
    Timestamp,
    Epoch,
    Nonce,
    /// Opaque tokens that may be generated; only the path's whole history (never
    /// repeated) decides.
    Opaque,
}

impl Generated {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Generated::Uuid => "values look like UUIDs",
            Generated::HexId => "values look like hex ids",
            Generated::Timestamp => "values look like timestamps close to the request time",
            Generated::Epoch => "values look like epoch times close to the request time",
            Generated::Nonce => "values look like random tokens (nonces)",
            Generated::Opaque => "values were never repeated",
        }
    }
}

/// Why a difference looks meaningful.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Real {
    Status,
    Renamed(Option<String>),
    OneSide,
    Type,
    Email,
    Count,
    Number,
    Enum,
    Date,
    Text,
    Body(String),
    Other,
}

impl Real {
    pub(super) fn describe(&self) -> String {
        match self {
            Real::Status => "the status code changed".into(),
            Real::Renamed(Some(to)) => format!("the field was renamed to {to}"),
            Real::Renamed(None) => "the field was renamed".into(),
            Real::OneSide => "present on one side only".into(),
            Real::Type => "the value changed type".into(),
            Real::Email => "values look like email addresses".into(),
            Real::Count => "integers (counts or ids) changed".into(),
            Real::Number => "numbers differ beyond rounding".into(),
            Real::Enum => "short enum-like strings changed".into(),
            Real::Date => "dates or times far from the request time changed".into(),
            Real::Text => "text changed beyond generated tokens".into(),
            Real::Body(kind) => format!("the body differs ({kind}) without values to judge"),
            Real::Other => "values changed".into(),
        }
    }
}

/// A mask the config can take as is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MaskRule {
    /// `uuid`, `timestamp` or `hex-id`.
    Preset(&'static str),
    Regex {
        regex: String,
        replace: String,
    },
}

/// The judgement of one pair.
#[derive(Clone, Debug)]
pub(super) enum Verdict {
    Generated(Generated),
    Jitter {
        relative: f64,
    },
    Masked(Vec<MaskRule>),
    /// The candidate keys that identify the elements in both arrays; `None` when the
    /// values could not be read (cut at 512 characters).
    Reordered(Option<BTreeSet<String>>),
    Real(Real),
    Redacted,
}

/// A scalar as stored: JSON text for JSON bodies, raw text for headers and lines.
enum Scalar<'a> {
    Str(std::borrow::Cow<'a, str>),
    Num { value: f64, integer: bool },
    Other,
}

fn scalar(text: &str) -> Scalar<'_> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('"') {
        if !inner.contains('\\') {
            return Scalar::Str(inner.strip_suffix('"').unwrap_or(inner).into());
        }
        return match serde_json::from_str::<String>(t) {
            Ok(s) => Scalar::Str(s.into()),
            Err(_) => Scalar::Str(inner.into()),
        };
    }
    if t.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        if let Ok(value) = t.parse::<f64>() {
            let integer = !t.contains(['.', 'e', 'E']);
            return Scalar::Num { value, integer };
        }
    }
    if matches!(t, "true" | "false" | "null") || t.starts_with(['{', '[']) {
        return Scalar::Other;
    }
    Scalar::Str(t.into())
}

/// Whether a stored value is a redaction marker (`[redacted]`, `[redacted hmac:...]`).
pub(super) fn is_redacted(text: &str) -> bool {
    text.contains(crate::redact::REDACTED) || text.contains("[redacted hmac:")
}

/// Judges one difference: its kind, both values, and when its mismatch happened.
pub(super) fn judge(
    kind: &str,
    path: &str,
    primary: Option<&str>,
    secondary: Option<&str>,
    to_path: Option<&str>,
    at_ms: i64,
) -> Verdict {
    if primary.is_some_and(is_redacted) || secondary.is_some_and(is_redacted) {
        return Verdict::Redacted;
    }
    match kind {
        "status" => return Verdict::Real(Real::Status),
        "renamed" => return Verdict::Real(Real::Renamed(to_path.map(str::to_string))),
        "added" | "removed" => return Verdict::Real(Real::OneSide),
        "type" => return Verdict::Real(Real::Type),
        "reordered" => return Verdict::Reordered(reorder_keys(primary, secondary)),
        "changed" => {}
        other => return Verdict::Real(Real::Body(other.to_string())),
    }
    let (Some(a), Some(b)) = (primary, secondary) else {
        return Verdict::Real(Real::OneSide);
    };
    if path.starts_with("body#L") {
        // A text line: only masks apply (an ignore would name no valid path).
        return match template_masks(a, b, at_ms) {
            Some(masks) => Verdict::Masked(masks),
            None => Verdict::Real(Real::Text),
        };
    }
    match (scalar(a), scalar(b)) {
        (
            Scalar::Num {
                value: x,
                integer: xi,
            },
            Scalar::Num {
                value: y,
                integer: yi,
            },
        ) => numbers(x, xi, y, yi, at_ms),
        (Scalar::Str(x), Scalar::Str(y)) => strings(&x, &y, at_ms),
        (Scalar::Str(_), Scalar::Num { .. }) | (Scalar::Num { .. }, Scalar::Str(_)) => {
            Verdict::Real(Real::Type)
        }
        _ => Verdict::Real(Real::Other),
    }
}

fn numbers(x: f64, xi: bool, y: f64, yi: bool, at_ms: i64) -> Verdict {
    if let (Some(p), Some(q)) = (epoch_kind(x, at_ms), epoch_kind(y, at_ms)) {
        if p == q {
            return Verdict::Generated(Generated::Epoch);
        }
    }
    if xi && yi {
        return Verdict::Real(Real::Count);
    }
    let relative = (x - y).abs() / x.abs().max(y.abs()).max(f64::MIN_POSITIVE);
    let same_six = format!("{x:.5e}") == format!("{y:.5e}");
    if relative < JITTER_RELATIVE || same_six {
        Verdict::Jitter { relative }
    } else {
        Verdict::Real(Real::Number)
    }
}

/// Seconds (1) or milliseconds (2) since the epoch within a day of `at_ms`.
fn epoch_kind(value: f64, at_ms: i64) -> Option<u8> {
    let at = at_ms as f64;
    let near = |ms: f64| (ms - at).abs() <= NEAR_MS as f64;
    if near(value * 1000.0) {
        Some(1)
    } else if near(value) {
        Some(2)
    } else {
        None
    }
}

fn strings(x: &str, y: &str, at_ms: i64) -> Verdict {
    if let (Some(p), Some(q)) = (generated(x, at_ms), generated(y, at_ms)) {
        if p == q {
            return Verdict::Generated(p);
        }
    }
    if is_timestamp(x).is_some() || is_timestamp(y).is_some() {
        return Verdict::Real(Real::Date);
    }
    if looks_like_email(x) || looks_like_email(y) {
        return Verdict::Real(Real::Email);
    }
    if let Some(masks) = template_masks(x, y, at_ms) {
        return Verdict::Masked(masks);
    }
    let short = |s: &str| s.chars().count() <= SHORT_STRING && !s.contains(char::is_whitespace);
    if short(x) && short(y) {
        return Verdict::Real(Real::Enum);
    }
    if is_opaque(x) && is_opaque(y) {
        return Verdict::Generated(Generated::Opaque);
    }
    Verdict::Real(Real::Other)
}

/// The sort of generated value a whole string is, if any.
fn generated(s: &str, at_ms: i64) -> Option<Generated> {
    if is_uuid(s) {
        Some(Generated::Uuid)
    } else if s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(Generated::HexId)
    } else if is_timestamp(s).is_some_and(|ms| (ms - at_ms).abs() <= NEAR_MS) {
        Some(Generated::Timestamp)
    } else if s.len() >= 10
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.parse::<f64>()
            .ok()
            .and_then(|v| epoch_kind(v, at_ms))
            .is_some()
    {
        Some(Generated::Epoch)
    } else if is_nonce(s) {
        Some(Generated::Nonce)
    } else {
        None
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 date and time.
fn is_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(at.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Some(at.and_utc().timestamp_millis());
        }
    }
    None
}

fn is_nonce(s: &str) -> bool {
    if s.len() < NONCE_MIN_LEN
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
    {
        return false;
    }
    let classes = [
        s.bytes().any(|b| b.is_ascii_lowercase()),
        s.bytes().any(|b| b.is_ascii_uppercase()),
        s.bytes().any(|b| b.is_ascii_digit()),
    ];
    classes.iter().filter(|c| **c).count() >= 2 && entropy(s) >= NONCE_MIN_ENTROPY
}

fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A single token of 8 or more id-like characters: a candidate for "never repeated".
fn is_opaque(s: &str) -> bool {
    s.len() >= 8
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-.:".contains(&b))
        && s.bytes().any(|b| b.is_ascii_digit())
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, host)) => !user.is_empty() && host.contains('.') && !s.contains(' '),
        None => false,
    }
}

/// Generated tokens inside a longer string or text line. Durations need their unit, so a
/// bare integer inside text (a count) is never masked.
static TOKENS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})",
        r"|(?P<ts>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})?)",
        r"|(?P<hex>\b[0-9a-fA-F]{16,}\b)",
        r"|(?P<dur>\b\d+(?:\.\d+)?(?:ns|us|µs|ms|s)\b)",
        r"|(?P<epoch>\b\d{10}(?:\d{3})?\b)",
        r"|(?P<num>\d+(?:\.\d+)?)",
    ))
    .expect("the token pattern is valid")
});

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Uuid,
    Timestamp,
    Hex,
    Duration,
    Epoch,
    Number,
}

/// The string with every token replaced by its class, and the tokens with their places.
fn tokenize(s: &str) -> (String, Vec<(Token, usize, usize)>) {
    let mut template = String::with_capacity(s.len());
    let mut tokens = Vec::new();
    let mut last = 0;
    for caps in TOKENS.captures_iter(s) {
        let (token, m) = if let Some(m) = caps.name("uuid") {
            (Token::Uuid, m)
        } else if let Some(m) = caps.name("ts") {
            (Token::Timestamp, m)
        } else if let Some(m) = caps.name("hex") {
            (Token::Hex, m)
        } else if let Some(m) = caps.name("dur") {
            (Token::Duration, m)
        } else if let Some(m) = caps.name("epoch") {
            (Token::Epoch, m)
        } else if let Some(m) = caps.name("num") {
            (Token::Number, m)
        } else {
            continue;
        };
        template.push_str(&s[last..m.start()]);
        template.push('\u{0}');
        template.push(char::from(b'0' + token as u8));
        last = m.end();
        tokens.push((token, m.start(), m.end()));
    }
    template.push_str(&s[last..]);
    (template, tokens)
}

/// The masks that make `a` and `b` equal when they differ only in generated tokens;
/// `None` when anything else differs (text, a bare number, a far-off time).
fn template_masks(a: &str, b: &str, at_ms: i64) -> Option<Vec<MaskRule>> {
    let (ta, xs) = tokenize(a);
    let (tb, ys) = tokenize(b);
    if ta != tb {
        return None;
    }
    let mut masks = Vec::new();
    for (&(token, s1, e1), &(_, s2, e2)) in xs.iter().zip(&ys) {
        let (x, y) = (&a[s1..e1], &b[s2..e2]);
        if x == y {
            continue;
        }
        let mask = match token {
            Token::Uuid => MaskRule::Preset("uuid"),
            Token::Hex => MaskRule::Preset("hex-id"),
            Token::Timestamp => MaskRule::Preset("timestamp"),
            Token::Duration => {
                let unit_at = x.find(|c: char| c.is_alphabetic()).unwrap_or(x.len());
                let unit = &x[unit_at..];
                let prefix = context_before(&a[..s1]);
                MaskRule::Regex {
                    regex: format!(
                        "{}[0-9]+(?:\\.[0-9]+)?{}\\b",
                        regex::escape(prefix),
                        regex::escape(unit)
                    ),
                    replace: format!("{prefix}<n>{unit}"),
                }
            }
            Token::Epoch => {
                let near = |t: &str| {
                    t.parse::<f64>()
                        .ok()
                        .and_then(|v| epoch_kind(v, at_ms))
                        .is_some()
                };
                if !(near(x) && near(y)) {
                    return None;
                }
                let prefix = context_before(&a[..s1]);
                MaskRule::Regex {
                    regex: format!("{}\\b[0-9]{{10}}(?:[0-9]{{3}})?\\b", regex::escape(prefix)),
                    replace: format!("{prefix}<epoch>"),
                }
            }
            // A bare number in text may be a count or a price: never masked.
            Token::Number => return None,
        };
        if !masks.contains(&mask) {
            masks.push(mask);
        }
    }
    (!masks.is_empty()).then_some(masks)
}

/// The word and separators right before a token (`took `, `elapsed=`), so a mask for a
/// duration only rewrites that duration, not every number of the route.
fn context_before(before: &str) -> &str {
    let bytes = before.as_bytes();
    let mut start = bytes.len();
    while start > 0 && b" =:".contains(&bytes[start - 1]) {
        start -= 1;
    }
    let separators = start;
    while start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
        start -= 1;
    }
    if start == separators {
        // No word before the token: its separators alone would say little.
        return "";
    }
    &before[start..]
}

/// Fields that identify the elements of both arrays: present in every element (all
/// objects), scalar, and unique within each array.
fn reorder_keys(primary: Option<&str>, secondary: Option<&str>) -> Option<BTreeSet<String>> {
    let parse = |text: Option<&str>| -> Option<Vec<serde_json::Value>> {
        serde_json::from_str::<Vec<serde_json::Value>>(text?).ok()
    };
    let (a, b) = (parse(primary)?, parse(secondary)?);
    let mut keys: Option<BTreeSet<String>> = None;
    for array in [&a, &b] {
        let mut found: Option<BTreeSet<String>> = None;
        for element in array {
            let Some(object) = element.as_object() else {
                return Some(BTreeSet::new());
            };
            let here: BTreeSet<String> = object
                .iter()
                .filter(|(_, v)| v.is_string() || v.is_number())
                .map(|(k, _)| k.clone())
                .collect();
            found = Some(match found {
                Some(f) => f.intersection(&here).cloned().collect(),
                None => here,
            });
        }
        let unique: BTreeSet<String> = found
            .unwrap_or_default()
            .into_iter()
            .filter(|key| {
                let mut seen = std::collections::HashSet::new();
                array.iter().all(|e| seen.insert(e[key].to_string()))
            })
            .collect();
        keys = Some(match keys {
            Some(k) => k.intersection(&unique).cloned().collect(),
            None => unique,
        });
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn verdict(a: &str, b: &str) -> Verdict {
        judge("changed", "body/x", Some(a), Some(b), None, NOW)
    }

    #[test]
    fn generated_values() {
        assert!(matches!(
            verdict(
                "\"1b4e28ba-2fa1-11d2-883f-0016d3cca427\"",
                "\"6fa459ea-ee8a-3ca4-894e-db77e160355e\""
            ),
            Verdict::Generated(Generated::Uuid)
        ));
        assert!(matches!(
            verdict("\"2023-11-14T22:13:20Z\"", "\"2023-11-14T22:13:21.5Z\""),
            Verdict::Generated(Generated::Timestamp)
        ));
        assert!(matches!(
            verdict("1700000000", "1700000003"),
            Verdict::Generated(Generated::Epoch)
        ));
        assert!(matches!(
            verdict("\"q8ZxW3rT9vLmN2pK7sDf\"", "\"Zt4Hk9PwQe2Rn8YvBx6M\""),
            Verdict::Generated(Generated::Nonce)
        ));
    }

    #[test]
    fn real_values() {
        assert!(matches!(
            verdict("\"ann@old.test\"", "\"ann@new.test\""),
            Verdict::Real(Real::Email)
        ));
        assert!(matches!(verdict("3", "4"), Verdict::Real(Real::Count)));
        assert!(matches!(
            verdict("10.5", "10.75"),
            Verdict::Real(Real::Number)
        ));
        assert!(matches!(
            verdict("\"active\"", "\"closed\""),
            Verdict::Real(Real::Enum)
        ));
        assert!(matches!(
            verdict("\"1999-01-01T00:00:00Z\"", "\"2001-01-01T00:00:00Z\""),
            Verdict::Real(Real::Date)
        ));
        assert!(matches!(
            judge(
                "changed",
                "body/x",
                Some("\"[redacted hmac:0123456789ab]\""),
                Some("\"x\""),
                None,
                NOW
            ),
            Verdict::Redacted
        ));
    }

    #[test]
    fn jitter_and_masks() {
        assert!(matches!(
            verdict("0.30000000000000004", "0.3"),
            Verdict::Jitter { .. }
        ));
        let Verdict::Masked(masks) = judge(
            "changed",
            "body#L3",
            Some("request took 11.3ms"),
            Some("request took 9.87ms"),
            None,
            NOW,
        ) else {
            panic!("a duration is masked");
        };
        assert_eq!(
            masks,
            vec![MaskRule::Regex {
                regex: "took [0-9]+(?:\\.[0-9]+)?ms\\b".into(),
                replace: "took <n>ms".into()
            }]
        );
        assert!(matches!(
            judge(
                "changed",
                "body#L4",
                Some("items: 3"),
                Some("items: 4"),
                None,
                NOW
            ),
            Verdict::Real(Real::Text)
        ));
    }

    #[test]
    fn reordered_keys() {
        let keys = reorder_keys(
            Some(r#"[{"id": 1, "tag": "a"}, {"id": 2, "tag": "a"}]"#),
            Some(r#"[{"id": 2, "tag": "a"}, {"id": 1, "tag": "a"}]"#),
        );
        assert_eq!(keys, Some(["id".to_string()].into()));
        assert_eq!(
            reorder_keys(Some("[1, 2]"), Some("[2, 1]")),
            Some(BTreeSet::new())
        );
        assert_eq!(reorder_keys(Some("[{\"id\": 1}, {\"i"), Some("[]")), None);
    }
}
