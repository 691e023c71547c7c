//! A parsed JSON document as one flat tape: every value is a fixed-size node in one vector,
//! in document order, and every decoded string lives in one text buffer.
//!
//! The diff reads each document once from start to end, so a tree of per-object and
//! per-array vectors (jiter's `JsonValue`) spent most of a comparison allocating and freeing
//! them. A tape costs two allocations per document whatever its shape, and a container's
//! children are the nodes right after it, so walking it is a forward scan.
//!
//! Parsing uses jiter's streaming [`Jiter`], the same parser as jiter's `JsonValue`: the
//! same documents are accepted (including its nesting limit), numbers get the same values,
//! and integers beyond 64 bits stay exact.

use jiter::{Jiter, JiterError, JsonValue, NumberAny, NumberInt, Peek};
use std::fmt::Write;

/// jiter's `JsonValue` refuses a non-empty container nested deeper than this; the tape
/// refuses the same documents.
const MAX_DEPTH: usize = 200;

/// Where a decoded string lives in [`Tape::text`].
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond 64 bits, kept as its canonical decimal text: exact, and two equal
    /// values have equal texts.
    BigInt(Span),
    Float(f64),
    Str(Span),
    /// An object key; the entry's value is the next node.
    Key(Span),
    /// `len` elements follow; `end` is the index just past the container's last node.
    Array {
        len: usize,
        end: usize,
    },
    /// `len` entries (a key node, then its value) follow.
    Object {
        len: usize,
        end: usize,
    },
}

/// One parsed JSON document.
#[derive(Debug)]
pub struct Tape {
    nodes: Vec<Node>,
    text: String,
}

/// The bytes are not a JSON document; [`describe_invalid`] says why.
#[derive(Debug)]
pub struct Invalid;

impl From<JiterError> for Invalid {
    fn from(_: JiterError) -> Invalid {
        Invalid
    }
}

/// A container still being filled while parsing.
struct Open {
    at: usize,
    object: bool,
    len: usize,
}

impl Tape {
    pub fn parse(bytes: &[u8]) -> Result<Tape, Invalid> {
        let mut jiter = Jiter::new(bytes);
        let mut tape = Tape {
            // About one node per six bytes of typical API JSON; decoded strings are never
            // longer than their JSON text, so the text buffer never grows.
            nodes: Vec::with_capacity(bytes.len() / 6 + 1),
            text: String::with_capacity(bytes.len()),
        };
        let mut open: Vec<Open> = Vec::new();
        let mut peek = jiter.peek()?;
        'value: loop {
            match peek {
                Peek::Null => {
                    jiter.known_null()?;
                    tape.nodes.push(Node::Null);
                }
                Peek::True | Peek::False => {
                    let b = jiter.known_bool(peek)?;
                    tape.nodes.push(Node::Bool(b));
                }
                Peek::String => {
                    let span = tape.intern(jiter.known_str()?);
                    tape.nodes.push(Node::Str(span));
                }
                Peek::Array => {
                    let at = tape.push_container(false);
                    if let Some(first) = jiter.known_array()? {
                        peek = first;
                        open.push(Open {
                            at,
                            object: false,
                            len: 0,
                        });
                        if open.len() > MAX_DEPTH {
                            return Err(Invalid);
                        }
                        continue 'value;
                    }
                }
                Peek::Object => {
                    let at = tape.push_container(true);
                    if let Some(key) = jiter.known_object()? {
                        let span = tape.intern(key);
                        tape.nodes.push(Node::Key(span));
                        peek = jiter.peek()?;
                        open.push(Open {
                            at,
                            object: true,
                            len: 0,
                        });
                        if open.len() > MAX_DEPTH {
                            return Err(Invalid);
                        }
                        continue 'value;
                    }
                }
                _ => {
                    let node = match jiter.known_number(peek)? {
                        NumberAny::Int(NumberInt::Int(i)) => Node::Int(i),
                        NumberAny::Int(NumberInt::BigInt(big)) => {
                            let start = tape.text.len();
                            let _ = write!(tape.text, "{big}");
                            Node::BigInt(Span {
                                start,
                                end: tape.text.len(),
                            })
                        }
                        NumberAny::Float(f) => Node::Float(f),
                    };
                    tape.nodes.push(node);
                }
            }
            // A value is complete: count it in its container, then go on to the next
            // element or key, closing every container that ends here.
            while let Some(top) = open.last_mut() {
                top.len += 1;
                if top.object {
                    if let Some(key) = jiter.next_key()? {
                        let span = tape.intern(key);
                        tape.nodes.push(Node::Key(span));
                        peek = jiter.peek()?;
                        continue 'value;
                    }
                } else if let Some(next) = jiter.array_step()? {
                    peek = next;
                    continue 'value;
                }
                let Open { at, object, len } = *top;
                open.pop();
                let end = tape.nodes.len();
                tape.nodes[at] = if object {
                    Node::Object { len, end }
                } else {
                    Node::Array { len, end }
                };
            }
            break;
        }
        jiter.finish()?;
        Ok(tape)
    }

    /// The top-level value.
    pub fn root(&self) -> Value<'_> {
        Value { tape: self, at: 0 }
    }

    fn intern(&mut self, s: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// An empty container, filled in when it closes.
    fn push_container(&mut self, object: bool) -> usize {
        let at = self.nodes.len();
        let end = at + 1;
        self.nodes.push(if object {
            Node::Object { len: 0, end }
        } else {
            Node::Array { len: 0, end }
        });
        at
    }

    fn str(&self, span: Span) -> &str {
        &self.text[span.start..span.end]
    }

    /// The index just past the value at `at`.
    fn end_of(&self, at: usize) -> usize {
        match self.nodes[at] {
            Node::Array { end, .. } | Node::Object { end, .. } => end,
            _ => at + 1,
        }
    }
}

/// Why `bytes` (which [`Tape::parse`] refused) are not JSON, with line and column.
///
/// Errors are rare, so the message comes from jiter's own value parser: it reads exactly as
/// it always has, position included.
pub fn describe_invalid(bytes: &[u8]) -> String {
    match JsonValue::parse(bytes, false) {
        Err(e) => {
            let position = e.get_position(bytes);
            format!(
                "invalid JSON at line {} column {}: {}",
                position.line, position.column, e.error_type
            )
        }
        // Not reached: both parsers accept the same documents.
        Ok(_) => "invalid JSON".to_string(),
    }
}

/// One value of a [`Tape`]: a cheap copyable cursor.
#[derive(Clone, Copy, Debug)]
pub struct Value<'t> {
    tape: &'t Tape,
    at: usize,
}

/// What a value is, with its contents borrowed from the tape.
#[derive(Clone, Debug)]
pub enum View<'t> {
    Null,
    Bool(bool),
    Int(i64),
    /// Canonical decimal text of an integer beyond 64 bits.
    BigInt(&'t str),
    Float(f64),
    Str(&'t str),
    Array(Items<'t>),
    Object(Entries<'t>),
}

impl<'t> Value<'t> {
    /// Where the value starts in its document: later values have larger positions.
    pub fn position(self) -> usize {
        self.at
    }

    pub fn view(self) -> View<'t> {
        let tape = self.tape;
        let first = self.at + 1;
        match tape.nodes[self.at] {
            Node::Null => View::Null,
            Node::Bool(b) => View::Bool(b),
            Node::Int(i) => View::Int(i),
            Node::BigInt(span) => View::BigInt(tape.str(span)),
            Node::Float(f) => View::Float(f),
            Node::Str(span) | Node::Key(span) => View::Str(tape.str(span)),
            Node::Array { len, .. } => View::Array(Items {
                tape,
                next: first,
                left: len,
            }),
            Node::Object { len, .. } => View::Object(Entries {
                tape,
                next: first,
                left: len,
            }),
        }
    }
}

/// The elements of an array, in order.
#[derive(Clone, Debug)]
pub struct Items<'t> {
    tape: &'t Tape,
    next: usize,
    left: usize,
}

impl<'t> Iterator for Items<'t> {
    type Item = Value<'t>;

    fn next(&mut self) -> Option<Value<'t>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.next;
        self.next = self.tape.end_of(at);
        Some(Value {
            tape: self.tape,
            at,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Items<'_> {}

/// The entries of an object in document order, duplicate keys included.
#[derive(Clone, Debug)]
pub struct Entries<'t> {
    tape: &'t Tape,
    next: usize,
    left: usize,
}

impl<'t> Iterator for Entries<'t> {
    type Item = (&'t str, Value<'t>);

    fn next(&mut self) -> Option<(&'t str, Value<'t>)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let tape = self.tape;
        let key = match tape.nodes[self.next] {
            Node::Key(span) => tape.str(span),
            // Not reached: the parser writes a key before every entry's value.
            _ => "",
        };
        let at = self.next + 1;
        self.next = tape.end_of(at);
        Some((key, Value { tape, at }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entries<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tape read back as a jiter value, to check it against jiter's own parse.
    fn to_value(v: Value<'_>) -> JsonValue<'static> {
        use std::sync::Arc;
        match v.view() {
            View::Null => JsonValue::Null,
            View::Bool(b) => JsonValue::Bool(b),
            View::Int(i) => JsonValue::Int(i),
            View::BigInt(text) => JsonValue::BigInt(text.parse().unwrap()),
            View::Float(f) => JsonValue::Float(f),
            View::Str(s) => JsonValue::Str(s.to_string().into()),
            View::Array(items) => JsonValue::Array(Arc::new(items.map(to_value).collect())),
            View::Object(entries) => JsonValue::Object(Arc::new(
                entries
                    .map(|(k, v)| (k.to_string().into(), to_value(v)))
                    .collect(),
            )),
        }
    }

    fn same_as_jiter(text: &str) {
        let bytes = text.as_bytes();
        match (Tape::parse(bytes), JsonValue::parse(bytes, false)) {
            (Ok(tape), Ok(value)) => assert_eq!(to_value(tape.root()), value, "{text}"),
            (Err(_), Err(_)) => {}
            (tape, value) => panic!("{text}: tape {tape:?}, jiter {value:?}"),
        }
    }

    #[test]
    fn reads_back_what_jiter_reads() {
        for text in [
            r#"{"a": [1, 2.5, -0, 1e3, 123456789012345678901234567890, -98765432109876543210], "b": {"c": null, "d": [true, false, [], {}], "c": "dup"}}"#,
            r#"  "esc\"aped \u00e9 \ud83d\ude00 \n"  "#,
            "[[[]], [{}], {\"x\": [[1], [2, [3]]]}, \"\"]",
            "0",
            "[1, 2,]",
            "{\"a\" 1}",
            "[1] x",
            "",
            "   ",
            "nul",
            "[\"unterminated",
            "{\"a\": NaN}",
            "[01]",
            "x",
            "[1e400, -1e-400, 9223372036854775807, 9223372036854775808, -9223372036854775809]",
        ] {
            same_as_jiter(text);
        }
    }

    #[test]
    fn refuses_the_nesting_jiter_refuses() {
        for depth in [199, 200, 201, 202] {
            same_as_jiter(&format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
            same_as_jiter(&format!("{}[]{}", "[".repeat(depth), "]".repeat(depth)));
            same_as_jiter(&format!(
                "{}1{}",
                "{\"k\":".repeat(depth),
                "}".repeat(depth)
            ));
            same_as_jiter(&format!(
                "{}{{}}{}",
                "{\"k\":".repeat(depth),
                "}".repeat(depth)
            ));
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        let bytes = b"{\n  \"a\": [1, 2,]\n}";
        assert!(Tape::parse(bytes).is_err());
        assert_eq!(
            describe_invalid(bytes),
            "invalid JSON at line 2 column 14: trailing comma"
        );
    }
}
