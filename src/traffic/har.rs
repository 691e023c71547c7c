//! HAR 1.2 logs, as browsers' developer tools and common proxies export them: every
//! entry's request, in file order.
//!
//! A HAR file is one JSON document, so it is read by a streaming deserializer on its own
//! thread that hands entries over one at a time through a small bounded channel: only one
//! entry is in memory at once, whatever the size of the log.
//!
//! What is not replayed (an entry's `response`, `timings`, `cache`; `pages`, `creator`) is
//! skipped without being kept. What is kept of one entry (`request`, `startedDateTime`,
//! the keys read to find them) is at most the [`EntryBound`], counted as it is read by a
//! [`Meter`] under the deserializer, which also caps nesting depth everywhere, skipped
//! parts included: serde_json keeps one byte per open bracket of a value it skips.

use super::{
    jsonl::check_timestamp, recorded_target, EntryBound, Position, TrafficEntry, TrafficError,
};
use crate::exchange::RecordedRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;

/// Deepest nesting of arrays and objects accepted anywhere in a HAR file. Real exports
/// nest about 6 deep; serde_json refuses values it keeps at 128.
pub const MAX_DEPTH: u32 = 256;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: Option<String>,
    request: Request,
    /// Kept only for `replay --against-recorded` ([`EntryBound::responses`]).
    response: Option<Response>,
    /// The entry's total time in milliseconds; -1 or absent when unknown.
    time: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    status: i64,
    #[serde(default)]
    headers: Vec<NameValue>,
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    size: Option<i64>,
    text: Option<String>,
    encoding: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    text: Option<String>,
    #[serde(default)]
    params: Vec<Param>,
}

#[derive(Deserialize)]
struct Param {
    name: String,
    value: Option<String>,
}

/// Entries of a HAR file, produced by the parsing thread.
pub struct HarReader {
    rx: mpsc::Receiver<Result<TrafficEntry, TrafficError>>,
}

impl HarReader {
    /// Starts parsing `reader` on its own thread; entries arrive as they are read.
    pub fn spawn(path: &Path, reader: impl Read + Send + 'static, bound: EntryBound) -> HarReader {
        let (tx, rx) = mpsc::sync_channel(256);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("shadowdiff-har".into())
            .spawn(move || parse(path, reader, bound, tx))
            .expect("spawning the HAR reader thread");
        HarReader { rx }
    }
}

impl Iterator for HarReader {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

type Sink = mpsc::SyncSender<Result<TrafficEntry, TrafficError>>;

fn parse(path: PathBuf, reader: impl Read, bound: EntryBound, tx: Sink) {
    let meter = Rc::new(MeterState {
        bound,
        counting: Cell::new(true),
        used: Cell::new(0),
        lexer: Cell::new(Lexer::default()),
        tripped: Cell::new(None),
    });
    let mut de = serde_json::Deserializer::from_reader(Meter {
        inner: reader,
        state: meter.clone(),
    });
    let mut state = State {
        path: &path,
        tx: &tx,
        meter: &meter,
        count: 0,
        saw_entries: false,
        stopped: false,
    };
    let result = Root(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if state.stopped {
        return;
    }
    let problem = match (result, meter.tripped.get()) {
        (Err(_), Some(Trip::TooLong)) => Some(bound.refusal(&match state.count {
            0 if !state.saw_entries => "what precedes \"log.entries\"".to_string(),
            n => format!("entry {}", n + 1),
        })),
        (Err(_), Some(Trip::TooDeep)) => Some(format!(
            "not a HAR file: nested deeper than {MAX_DEPTH} levels"
        )),
        (Err(e), None) => Some(format!("not a HAR file: {e}")),
        (Ok(()), _) if !state.saw_entries => {
            Some("not a HAR file: no \"log.entries\" array".into())
        }
        (Ok(()), _) => None,
    };
    if let Some(problem) = problem {
        let _ = tx.send(Err(TrafficError::Unreadable {
            path: path.clone(),
            problem,
        }));
    }
}

/// Why the [`Meter`] stopped the parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trip {
    TooLong,
    TooDeep,
}

/// Shared by the [`Meter`] and the visitors, on the parsing thread only.
struct MeterState {
    bound: EntryBound,
    /// Off while a value that is not kept is skipped.
    counting: Cell<bool>,
    /// Bytes counted since the current entry began.
    used: Cell<u64>,
    lexer: Cell<Lexer>,
    tripped: Cell<Option<Trip>>,
}

impl MeterState {
    /// Runs `skip` (which reads a value it does not keep) with counting off.
    fn uncounted<T>(&self, skip: impl FnOnce() -> T) -> T {
        self.counting.set(false);
        let out = skip();
        self.counting.set(true);
        out
    }
}

/// Just enough JSON lexing to know the nesting depth: brackets inside strings do not count.
#[derive(Clone, Copy, Debug, Default)]
struct Lexer {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Lexer {
    /// Takes one byte; false when it opens a level deeper than [`MAX_DEPTH`].
    fn step(&mut self, byte: u8) -> bool {
        if self.in_string {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return true;
        }
        match byte {
            b'"' => self.in_string = true,
            b'[' | b'{' => {
                self.depth += 1;
                return self.depth <= MAX_DEPTH;
            }
            b']' | b'}' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        true
    }
}

/// The reader under the deserializer: counts the bytes of kept values against the bound
/// and the nesting depth of everything, and fails the read that goes past either.
struct Meter<R> {
    inner: R,
    state: Rc<MeterState>,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let state = &self.state;
        let mut lexer = state.lexer.get();
        let deep = !buf[..n].iter().all(|&b| lexer.step(b));
        state.lexer.set(lexer);
        if state.counting.get() {
            state.used.set(state.used.get() + n as u64);
        }
        let trip = if deep {
            Some(Trip::TooDeep)
        } else if state.used.get() > state.bound.bytes {
            Some(Trip::TooLong)
        } else {
            None
        };
        if let Some(trip) = trip {
            state.tripped.set(Some(trip));
            return Err(std::io::Error::other("HAR entry over its bound"));
        }
        Ok(n)
    }
}

struct State<'a> {
    path: &'a Path,
    tx: &'a Sink,
    meter: &'a MeterState,
    count: u64,
    saw_entries: bool,
    /// The consumer went away: stop reading without reporting an error.
    stopped: bool,
}

impl State<'_> {
    fn deliver(&mut self, value: serde_json::Value) -> bool {
        self.count += 1;
        let position = Position::Entry(self.count);
        let item = entry_of(value)
            .map(|(ts, request, response)| TrafficEntry {
                position,
                ts,
                request,
                skip: None,
                response,
            })
            .map_err(|problem| TrafficError::Invalid {
                path: self.path.to_path_buf(),
                position,
                problem,
            });
        if self.tx.send(item).is_err() {
            self.stopped = true;
        }
        !self.stopped
    }
}

/// An entry's time, request, and response when one was kept and recorded whole.
type EntryRead = (
    Option<String>,
    RecordedRequest,
    Option<crate::exchange::Captured>,
);

fn entry_of(value: serde_json::Value) -> Result<EntryRead, String> {
    let entry: Entry = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let response = match entry.response {
        Some(response) => response_of(response, entry.time)?,
        None => None,
    };
    if let Some(ts) = &entry.started_date_time {
        check_timestamp(ts)?;
    }
    let request = entry.request;
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid HTTP method", request.method))?;
    let uri = recorded_target(&request.url)?;
    let mut headers = HeaderMap::new();
    for NameValue { name, value } in request.headers {
        // HTTP/2 exports list pseudo-headers (":authority"); they are not headers to send.
        if name.starts_with(':') {
            continue;
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid"))?;
        let header_value = HeaderValue::from_str(&value)
            .map_err(|_| format!("value of header {name:?} is not a valid header value"))?;
        headers.append(header_name, header_value);
    }
    let body = match request.post_data {
        None => Bytes::new(),
        Some(PostData {
            text: Some(text), ..
        }) => Bytes::from(text),
        Some(PostData { text: None, params }) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for p in &params {
                form.append_pair(&p.name, p.value.as_deref().unwrap_or(""));
            }
            Bytes::from(form.finish())
        }
    };
    Ok((
        entry.started_date_time,
        RecordedRequest {
            method,
            uri,
            headers,
            body,
        },
        response,
    ))
}

/// The recorded answer of an entry, `None` when the log holds none to compare with: status
/// 0 (the browser's "no response": blocked, failed, cancelled), or a body the exporter did
/// not keep (`content.size` above 0 without `content.text`), which would otherwise read as
/// an empty body and a false mismatch.
fn response_of(
    response: Response,
    time: Option<f64>,
) -> Result<Option<crate::exchange::Captured>, String> {
    if response.status == 0 {
        return Ok(None);
    }
    let status = u16::try_from(response.status)
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("response status {} is not an HTTP status", response.status))?;
    let content = response.content.unwrap_or(Content {
        size: None,
        text: None,
        encoding: None,
    });
    let body = match (content.text, content.encoding.as_deref()) {
        (None, _) if content.size.is_some_and(|n| n > 0) => return Ok(None),
        (None, _) => Bytes::new(),
        (Some(text), Some(encoding)) if encoding.eq_ignore_ascii_case("base64") => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Bytes::from)
                .map_err(|e| format!("response content is not valid base64: {e}"))?
        }
        (Some(_), Some(encoding)) => {
            return Err(format!(
                "response content encoding {encoding:?} is not base64"
            ))
        }
        (Some(text), None) => Bytes::from(text),
    };
    let mut headers = HeaderMap::new();
    for NameValue { name, value } in response.headers {
        if name.starts_with(':') {
            continue;
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("response header name {name:?} is not valid"))?;
        // HAR 1.2 section "content": `text` is the decoded body, so the framing and
        // encoding headers of the wire no longer describe it.
        if [
            http::header::CONTENT_ENCODING,
            http::header::CONTENT_LENGTH,
            http::header::TRANSFER_ENCODING,
        ]
        .contains(&header_name)
        {
            continue;
        }
        let header_value = HeaderValue::from_str(&value).map_err(|_| {
            format!("value of response header {name:?} is not a valid header value")
        })?;
        headers.append(header_name, header_value);
    }
    let latency = time
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .and_then(|ms| std::time::Duration::try_from_secs_f64(ms / 1e3).ok())
        .unwrap_or_default();
    Ok(Some(crate::exchange::Captured {
        status,
        headers,
        trailers: HeaderMap::new(),
        body,
        latency,
    }))
}

/// Error used to abandon the document once the consumer stopped listening.
const STOPPED: &str = "reader stopped";

struct Root<'s, 'a>(&'s mut State<'a>);
struct Log<'s, 'a>(&'s mut State<'a>);
struct Entries<'s, 'a>(&'s mut State<'a>);

impl<'de> DeserializeSeed<'de> for Root<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR object with a \"log\" key")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                map.next_value_seed(Log(&mut *self.0))?;
            } else {
                self.0.meter.uncounted(|| map.next_value::<IgnoredAny>())?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Log<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Log<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR \"log\" object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                self.0.saw_entries = true;
                map.next_value_seed(Entries(&mut *self.0))?;
            } else {
                self.0.meter.uncounted(|| map.next_value::<IgnoredAny>())?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Entries<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of HAR entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.meter.used.set(0);
            let Some(value) = seq.next_element_seed(Kept(self.0.meter))? else {
                return Ok(());
            };
            if !self.0.deliver(value) {
                return Err(serde::de::Error::custom(STOPPED));
            }
        }
    }
}

/// One entry, keeping only what is replayed: `request` and `startedDateTime` of an object
/// (the rest is skipped uncounted); any other JSON value is kept as it is, for
/// [`entry_of`] to refuse with serde's message.
struct Kept<'m>(&'m MeterState);

impl<'de> DeserializeSeed<'de> for Kept<'_> {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Kept<'_> {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a HAR entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let kept_too = self.0.bound.responses && (key == "response" || key == "time");
            if key == "request" || key == "startedDateTime" || kept_too {
                let value = map.next_value::<serde_json::Value>()?;
                kept.insert(key, value);
            } else {
                self.0.uncounted(|| map.next_value::<IgnoredAny>())?;
            }
        }
        Ok(serde_json::Value::Object(kept))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        self.0.uncounted(|| {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok::<(), A::Error>(())
        })?;
        Ok(serde_json::Value::Array(Vec::new()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAR: &str = r#"{"log":{"version":"1.2","creator":{"name":"t","version":"1"},
      "pages":[],
      "entries":[
        {"startedDateTime":"2026-01-01T00:00:00.000Z","request":{"method":"GET","url":"http://x/a?b=1","httpVersion":"HTTP/2","headers":[{"name":":authority","value":"x"},{"name":"accept","value":"*/*"}],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},"response":{}},
        {"request":{"method":"POST","url":"http://x/form","headers":[],"postData":{"mimeType":"application/x-www-form-urlencoded","params":[{"name":"a b","value":"c&d"},{"name":"e"}]}}},
        {"request":{"method":"POST","url":"http://x/json","headers":[],"postData":{"mimeType":"application/json","text":"{\"k\":1}"}}},
        {"request":{"url":"http://x/nomethod"}}
      ]}}"#;

    fn bound() -> EntryBound {
        EntryBound::for_max_body(1024 * 1024)
    }

    fn read(text: String, bytes: u64) -> Vec<Result<TrafficEntry, TrafficError>> {
        let bound = EntryBound {
            bytes,
            max_body: 1,
            responses: false,
        };
        HarReader::spawn(Path::new("t.har"), std::io::Cursor::new(text), bound).collect()
    }

    fn har_of(entries: &[String]) -> String {
        format!("{{\"log\":{{\"entries\":[{}]}}}}", entries.join(","))
    }

    fn entry(path: &str, response: &str) -> String {
        format!(
            "{{\"request\":{{\"method\":\"GET\",\"url\":\"http://x{path}\"}},\"response\":{response}}}"
        )
    }

    #[test]
    fn an_entry_over_the_bound_is_refused_naming_it_and_skipped_parts_are_not_counted() {
        let big_response = format!("{{\"content\":{{\"text\":\"{}\"}}}}", "r".repeat(10_000));
        let long_path = format!("/{}", "p".repeat(300));
        let out = read(
            har_of(&[
                entry("/a", &big_response),
                entry("/b", "{}"),
                entry(&long_path, "{}"),
                entry("/never", "{}"),
            ]),
            200,
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap().request.uri, "/a");
        assert_eq!(out[1].as_ref().unwrap().request.uri, "/b");
        let err = out[2].as_ref().unwrap_err();
        assert!(!err.is_skippable());
        assert_eq!(
            err.to_string(),
            "t.har: entry 3 is longer than 200 bytes, the bound for max-body 1 (6 × max-body + 2 MiB)"
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_even_where_skipped() {
        let depth = MAX_DEPTH as usize + 1;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let out = read(har_of(&[entry("/a", &deep)]), 1 << 20);
        let err = out.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(err.contains("nested deeper than 256 levels"), "{err}");
        // Brackets inside strings are text, not nesting.
        let text = format!("\"{}\"", "[".repeat(depth));
        let out = read(har_of(&[entry("/a", &text)]), 1 << 20);
        assert_eq!(out.len(), 1);
        assert!(out[0].is_ok(), "{out:?}");
    }

    #[test]
    fn an_entry_that_is_not_an_object_is_one_invalid_entry() {
        let out = read(
            har_of(&["5".into(), "[1,[2]]".into(), entry("/a", "{}")]),
            1 << 20,
        );
        assert_eq!(out.len(), 3);
        assert!(out[0].as_ref().unwrap_err().is_skippable());
        assert!(out[1].as_ref().unwrap_err().is_skippable());
        assert_eq!(out[2].as_ref().unwrap().request.uri, "/a");
    }

    #[test]
    fn reads_every_entry_in_order() {
        let out: Vec<_> = HarReader::spawn(Path::new("t.har"), HAR.as_bytes(), bound()).collect();
        assert_eq!(out.len(), 4);
        let a = out[0].as_ref().unwrap();
        assert_eq!(a.request.uri, "/a?b=1");
        assert_eq!(a.request.headers.len(), 1);
        assert_eq!(out[1].as_ref().unwrap().request.body, "a+b=c%26d&e=");
        assert_eq!(out[2].as_ref().unwrap().request.body, "{\"k\":1}");
        let err = out[3].as_ref().unwrap_err().to_string();
        assert!(
            err.starts_with("t.har:entry 4: missing field `method`"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_har_is_unreadable() {
        let out: Vec<_> = HarReader::spawn(Path::new("t.har"), &b"[1,2]"[..], bound()).collect();
        assert_eq!(out.len(), 1);
        assert!(!out[0].as_ref().unwrap_err().is_skippable());
        let out: Vec<_> =
            HarReader::spawn(Path::new("t.har"), &b"{\"log\":{}}"[..], bound()).collect();
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("log.entries"));
    }
}
