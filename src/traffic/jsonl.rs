//! The JSON Lines traffic format: one request per line.
//!
//! ```json
//! {"method":"GET","path":"/users/1?x=2","headers":[["accept","application/json"]],"ts":"2026-01-02T03:04:05Z"}
//! {"method":"POST","url":"https://api.example.com/orders","headers":{"content-type":"application/json"},"body":"{\"sku\":1}"}
//! ```
//!
//! Headers are an object, or an array of `[name, value]` pairs so that repeated names and
//! their order survive; the recorder always writes pairs. A body is `body` (UTF-8 text) or
//! `body_base64` (any bytes). Unknown keys are ignored, so files written by later versions
//! still replay.
//!
//! `serve --record-responses` adds the primary's answer beside the request, in the same
//! shape: `"response": {"status": 200, "headers": [...], "body": "...", "latency_ms": 4.2}`,
//! which `replay --against-recorded` compares the secondary with.

use super::lines::LineEntries;
use super::{recorded_target, EntryBound, TrafficEntry, TrafficError};
use crate::exchange::RecordedRequest;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::Path;

#[derive(Deserialize)]
struct LineIn {
    method: String,
    path: Option<String>,
    url: Option<String>,
    headers: Option<serde_json::Value>,
    body: Option<String>,
    body_base64: Option<String>,
    ts: Option<String>,
    response: Option<ResponseIn>,
}

#[derive(Deserialize)]
struct ResponseIn {
    status: u16,
    headers: Option<serde_json::Value>,
    body: Option<String>,
    body_base64: Option<String>,
    latency_ms: Option<f64>,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    status: u16,
    headers: Vec<(&'a str, std::borrow::Cow<'a, str>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    latency_ms: f64,
}

#[derive(Serialize)]
struct LineOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, std::borrow::Cow<'a, str>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseOut<'a>>,
}

/// Headers as the recorder writes them: `[name, value]` pairs, values lossily UTF-8.
fn pairs_out(headers: &HeaderMap) -> Vec<(&str, std::borrow::Cow<'_, str>)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes())))
        .collect()
}

/// A body as `body` when it is UTF-8, else `body_base64`, so that it round-trips.
fn body_out(body: &[u8]) -> (Option<&str>, Option<String>) {
    if body.is_empty() {
        return (None, None);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (Some(text), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    }
}

/// One request and the primary's response as a JSONL line (`--record-responses`).
pub fn to_line_with_response(
    ts: Option<&str>,
    request: &RecordedRequest,
    response: &crate::exchange::Captured,
) -> String {
    let (body, body_base64) = body_out(&response.body);
    let response = ResponseOut {
        status: response.status.as_u16(),
        headers: pairs_out(&response.headers),
        body,
        body_base64,
        latency_ms: (response.latency.as_secs_f64() * 1e6).round() / 1e3,
    };
    line_of(ts, request, Some(response))
}

/// One request as a JSONL line (without the newline). Header values that are not UTF-8
/// are written lossily; bodies that are not UTF-8 go to `body_base64`, so they round-trip.
pub fn to_line(ts: Option<&str>, request: &RecordedRequest) -> String {
    line_of(ts, request, None)
}

fn line_of(
    ts: Option<&str>,
    request: &RecordedRequest,
    response: Option<ResponseOut<'_>>,
) -> String {
    let headers = pairs_out(&request.headers);
    let (body, body_base64) = body_out(&request.body);
    let line = LineOut {
        ts,
        method: request.method.as_str(),
        path: request
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        headers,
        body,
        body_base64,
        response,
    };
    serde_json::to_string(&line).expect("a JSONL line always serializes")
}

/// Parses one line's text into a request; the error says what is wrong, without position.
pub fn parse_line(text: &[u8]) -> Result<(Option<String>, RecordedRequest), String> {
    parse_record(text).map(|(ts, request, _)| (ts, request))
}

/// A line's request, its time, and the primary's response when the line holds one.
pub fn parse_record(text: &[u8]) -> Result<Record, String> {
    if text.trim_ascii_start().first() != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    let line: LineIn = serde_json::from_slice(text).map_err(|e| without_line_number(&e))?;
    let method = Method::from_bytes(line.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid HTTP method", line.method))?;
    let target = match (line.path, line.url) {
        (Some(path), None) => path,
        (None, Some(url)) => url,
        (Some(_), Some(_)) => return Err("both \"path\" and \"url\" are set; use one".into()),
        (None, None) => return Err("missing \"path\" or \"url\"".into()),
    };
    let uri = recorded_target(&target)?;
    let headers = headers_in(line.headers, "")?;
    let body = body_in(line.body, line.body_base64, "")?;
    if let Some(ts) = &line.ts {
        check_timestamp(ts)?;
    }
    let response = match line.response {
        None => None,
        Some(r) => {
            let status = http::StatusCode::from_u16(r.status)
                .map_err(|_| format!("\"response\": status {} is not an HTTP status", r.status))?;
            let latency = match r.latency_ms {
                None => std::time::Duration::ZERO,
                Some(ms) if ms.is_finite() && ms >= 0.0 => {
                    std::time::Duration::try_from_secs_f64(ms / 1e3).unwrap_or_default()
                }
                Some(ms) => return Err(format!("\"response\": latency_ms {ms} is not a duration")),
            };
            Some(crate::exchange::Captured {
                status,
                headers: headers_in(r.headers, "response: ")?,
                trailers: HeaderMap::new(),
                body: body_in(r.body, r.body_base64, "response: ")?,
                latency,
            })
        }
    };
    Ok((
        line.ts,
        RecordedRequest {
            method,
            uri,
            headers,
            body,
        },
        response,
    ))
}

/// What [`parse_record`] reads from a line: time, request, recorded response.
pub type Record = (
    Option<String>,
    RecordedRequest,
    Option<crate::exchange::Captured>,
);

fn headers_in(value: Option<serde_json::Value>, part: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let pairs = match value {
        None => Vec::new(),
        Some(value) => header_pairs(value).map_err(|e| format!("{part}{e}"))?,
    };
    for (name, value) in pairs {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{part}header name {name:?} is not valid"))?;
        let header_value = HeaderValue::from_str(&value)
            .map_err(|_| format!("{part}value of header {name:?} is not a valid header value"))?;
        headers.append(header_name, header_value);
    }
    Ok(headers)
}

fn body_in(text: Option<String>, encoded: Option<String>, part: &str) -> Result<Bytes, String> {
    Ok(match (text, encoded) {
        (Some(_), Some(_)) => {
            return Err(format!("{part}both \"body\" and \"body_base64\" are set"))
        }
        (Some(text), None) => Bytes::from(text),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(Bytes::from)
            .map_err(|e| format!("{part}\"body_base64\" is not valid base64: {e}"))?,
        (None, None) => Bytes::new(),
    })
}

/// `headers` as an object of strings, or an array of `[name, value]` string pairs.
fn header_pairs(value: serde_json::Value) -> Result<Vec<(String, String)>, String> {
    use serde_json::Value;
    const SHAPE: &str =
        "\"headers\" must be an object of strings or an array of [name, value] string pairs";
    match value {
        Value::Object(map) => map
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(value) => Ok((name, value)),
                _ => Err(format!("{SHAPE}; the value of {name:?} is not a string")),
            })
            .collect(),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Array(pair) => match <[Value; 2]>::try_from(pair) {
                    Ok([Value::String(name), Value::String(value)]) => Ok((name, value)),
                    _ => Err(format!("{SHAPE}; item {i} is not one")),
                },
                _ => Err(format!("{SHAPE}; item {i} is not one")),
            })
            .collect(),
        _ => Err(SHAPE.to_string()),
    }
}

/// serde_json says "at line 1 column 9"; within one line of a file only the column helps.
fn without_line_number(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&suffix) {
        Some(problem) if error.column() > 0 => format!("{problem} (column {})", error.column()),
        Some(problem) => problem.to_string(),
        None => message,
    }
}

/// `ts` is informative only, but a malformed one usually means a malformed exporter.
pub(crate) fn check_timestamp(ts: &str) -> Result<(), String> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|_| ())
        .map_err(|e| format!("\"ts\" {ts:?} is not an RFC 3339 timestamp: {e}"))
}

/// Reads a JSONL file line by line ([`LineEntries`]): memory stays at the longest line, and
/// a line longer than the [`EntryBound`] is refused while it streams.
pub struct JsonLinesReader<R> {
    lines: LineEntries<R>,
}

impl<R: BufRead> JsonLinesReader<R> {
    pub fn new(path: &Path, reader: R, bound: EntryBound) -> JsonLinesReader<R> {
        JsonLinesReader {
            lines: LineEntries::new(path, reader, bound),
        }
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        let responses = self.lines.keeps_responses();
        self.lines.next_with(|text, position| {
            parse_record(text).map(|(ts, request, response)| TrafficEntry {
                position,
                ts,
                request,
                skip: None,
                response: response.filter(|_| responses),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::Position;

    fn entries(text: &str) -> Vec<Result<TrafficEntry, TrafficError>> {
        let bound = EntryBound::for_max_body(1024 * 1024);
        JsonLinesReader::new(Path::new("t.jsonl"), text.as_bytes(), bound).collect()
    }

    #[test]
    fn a_line_over_the_bound_is_refused_and_the_next_line_still_read() {
        let bound = EntryBound {
            bytes: 64,
            max_body: 1,
            responses: false,
        };
        let long = format!("{{\"method\":\"GET\",\"path\":\"/{}\"}}", "a".repeat(200));
        let exact = format!("{{\"method\":\"GET\",\"path\":\"/{}\"}}", "b".repeat(37));
        assert_eq!(exact.len(), 64);
        let text = format!("{long}\n{exact}\n{long}");
        // A tiny read buffer, so the long line spans many fills.
        let reader = std::io::BufReader::with_capacity(7, text.as_bytes());
        let out: Vec<_> = JsonLinesReader::new(Path::new("t.jsonl"), reader, bound).collect();
        assert_eq!(out.len(), 3);
        let first = out[0].as_ref().unwrap_err();
        assert!(first.is_skippable());
        assert_eq!(
            first.to_string(),
            "t.jsonl:1: the line is longer than 64 bytes, the bound for max-body 1 (6 × max-body + 2 MiB)"
        );
        assert_eq!(out[1].as_ref().unwrap().position, Position::Line(2));
        assert!(out[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("t.jsonl:3: the line"));
    }

    #[test]
    fn reads_paths_urls_header_forms_and_bodies() {
        let out = entries(concat!(
            r#"{"method":"GET","path":"/a?x=1","headers":[["x-a","1"],["x-a","2"]]}"#,
            "\n\n",
            r#"{"method":"POST","url":"https://h.example/b/c?d","headers":{"content-type":"text/plain"},"body":"hi","ts":"2026-01-02T03:04:05+02:00"}"#,
            "\n",
            r#"{"method":"PUT","path":"/bin","body_base64":"AAH/"}"#,
        ));
        assert_eq!(out.len(), 3);
        let a = out[0].as_ref().unwrap();
        assert_eq!(a.request.uri, "/a?x=1");
        assert_eq!(a.request.headers.get_all("x-a").iter().count(), 2);
        let b = out[1].as_ref().unwrap();
        assert_eq!(b.position, Position::Line(3));
        assert_eq!(b.request.uri, "/b/c?d");
        assert_eq!(b.request.body, "hi");
        let c = out[2].as_ref().unwrap();
        assert_eq!(&c.request.body[..], &[0u8, 1, 255]);
    }

    #[test]
    fn invalid_lines_name_line_and_problem() {
        let out = entries("{\"method\":\"GET\"}\nnot json\n{\"method\":\"G T\",\"path\":\"/\"}\n");
        let messages: Vec<String> = out
            .into_iter()
            .map(|r| r.err().unwrap().to_string())
            .collect();
        assert!(
            messages[0].starts_with("t.jsonl:1: missing \"path\""),
            "{}",
            messages[0]
        );
        assert!(messages[1].starts_with("t.jsonl:2: "), "{}", messages[1]);
        assert!(
            messages[2].contains("not a valid HTTP method"),
            "{}",
            messages[2]
        );
    }

    #[test]
    fn a_written_line_reads_back_identically() {
        let mut headers = HeaderMap::new();
        headers.append("x-b", HeaderValue::from_static("2"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-b", HeaderValue::from_static("3"));
        for body in [
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(&[0, 159, 146]),
        ] {
            let request = RecordedRequest {
                method: Method::PATCH,
                uri: "/p/q?r=s%20t".parse().unwrap(),
                headers: headers.clone(),
                body,
            };
            let line = to_line(Some("2026-11-22T01:02:03Z"), &request);
            let (ts, back) = parse_line(line.as_bytes()).unwrap();
            assert_eq!(ts.as_deref(), Some("2026-11-22T01:02:03Z"));
            assert_eq!(back.method, request.method);
            assert_eq!(back.uri, request.uri);
            assert_eq!(back.headers, request.headers);
            assert_eq!(back.body, request.body);
        }
    }
}
