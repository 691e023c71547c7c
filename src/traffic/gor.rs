//! GoReplay's `.gor` files (`gor --output-file`): every request payload, with its
//! capture time.
//!
//! The layout, as GoReplay writes and reads it (`protocol.go`, `output_file.go`,
//! `input_file.go` in github.com/buger/goreplay): each payload is a header line
//! `TYPE ID TIMESTAMP LATENCY` then the raw HTTP/1 message, and every payload is followed
//! by `\n🐵🙈🙉\n`, so the separator is a line of its own and the newline before it belongs
//! to it. TYPE is `1` for a request, `2` for the original response, `3` for a response to
//! a replay; TIMESTAMP is nanoseconds since 1970 (a request's start), LATENCY may be
//! absent in old files. Only requests are replayed: responses are passed over (not counted
//! as requests, as `gor` itself pairs them only by ID).
//!
//! A payload is held whole while it is parsed, at most the [`EntryBound`]: one longer is
//! refused as invalid while it streams (its lines are read past, not kept), and reading
//! goes on at the next separator. Positions are the payload's first line, so a message
//! reads `capture.gor:41: ...`. The body is framed as HTTP/1.1 frames it (RFC 9112 §6):
//! chunked is decoded, Content-Length taken exactly; a capture cut short is invalid
//! rather than replayed with part of its body.

use super::lines::{BoundedLines, Line};
use super::{recorded_target, EntryBound, Position, TrafficEntry, TrafficError};
use crate::exchange::RecordedRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The line between payloads (GoReplay's `payloadSeparator` without its newlines).
pub const SEPARATOR: &[u8] = "🐵🙈🙉".as_bytes();

/// Most header fields one recorded request may have; hyper's server default is 100.
const MAX_HEADERS: usize = 128;

/// Parses one payload (header line and message). `Ok(None)` for a response payload.
pub fn parse_payload(payload: &[u8]) -> Result<Option<(String, RecordedRequest)>, String> {
    let Some(end) = memchr::memchr(b'\n', payload) else {
        return Err("the payload has no header line (TYPE ID TIMESTAMP LATENCY)".into());
    };
    let meta = std::str::from_utf8(&payload[..end])
        .map_err(|_| "the payload's header line is not text".to_string())?;
    let meta = meta.strip_suffix('\r').unwrap_or(meta);
    let fields: Vec<&str> = meta.split(' ').collect();
    match fields.first().copied() {
        Some("1") => {}
        Some("2" | "3") => return Ok(None),
        _ => {
            return Err(format!(
                "payload header {meta:?} does not start with type 1 (request), 2 (response) or 3 (replayed response)"
            ))
        }
    }
    let (Some(id), Some(nanos)) = (fields.get(1), fields.get(2)) else {
        return Err(format!(
            "payload header {meta:?} is not TYPE ID TIMESTAMP LATENCY"
        ));
    };
    if id.is_empty() {
        return Err("the payload's ID is empty".into());
    }
    let ts = nanos
        .parse::<i64>()
        .ok()
        .map(chrono::DateTime::from_timestamp_nanos)
        .ok_or_else(|| format!("timestamp {nanos:?} is not nanoseconds since 1970"))?
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    Ok(Some((ts, request(&payload[end + 1..])?)))
}

/// A raw HTTP/1 request, head and body.
fn request(message: &[u8]) -> Result<RecordedRequest, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let head = match parsed.parse(message) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => {
            return Err("the request head is incomplete (a truncated capture?)".into())
        }
        Err(e) => return Err(format!("not an HTTP/1 request: {e}")),
    };
    let method = parsed.method.unwrap_or_default();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("method {method:?} is not a valid HTTP method"))?;
    let uri = recorded_target(parsed.path.unwrap_or_default())?;
    let mut headers = HeaderMap::new();
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| format!("header name {:?} is not valid", field.name))?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| {
            format!(
                "value of header {:?} is not a valid header value",
                field.name
            )
        })?;
        headers.append(name, value);
    }
    let body = body(&headers, &message[head..])?;
    Ok(RecordedRequest {
        method,
        uri,
        headers,
        body,
    })
}

/// The body as RFC 9112 §6 frames it: chunked, else Content-Length, else none. Bytes left
/// over are an error: they are a second request or a broken capture, never this body.
fn body(headers: &HeaderMap, rest: &[u8]) -> Result<Bytes, String> {
    let codings: Vec<&str> = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        if !last.eq_ignore_ascii_case("chunked") || codings.len() > 1 {
            return Err(format!(
                "Transfer-Encoding {:?} is not plain chunked",
                codings.join(", ")
            ));
        }
        return dechunk(rest).map(Bytes::from);
    }
    let lengths: Vec<&[u8]> = headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let Some(first) = lengths.first() else {
        if rest.is_empty() {
            return Ok(Bytes::new());
        }
        return Err(format!(
            "{} bytes follow a request head that has neither Content-Length nor a chunked body",
            rest.len()
        ));
    };
    if lengths.iter().any(|l| l != first) {
        return Err("the request has conflicting Content-Length fields".into());
    }
    let length = std::str::from_utf8(first)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| "Content-Length is not a number".to_string())?;
    let have = rest.len() as u64;
    if have < length {
        return Err(format!(
            "the body is {have} bytes, shorter than its Content-Length {length} (a truncated capture?)"
        ));
    }
    if have > length {
        return Err(format!(
            "{} bytes follow the body of Content-Length {length}",
            have - length
        ));
    }
    Ok(Bytes::copy_from_slice(rest))
}

/// Decodes a chunked body; trailer fields are dropped (replay sends a framed body).
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    const SHORT: &str = "the chunked body ends early (a truncated capture?)";
    let mut out = Vec::new();
    loop {
        let (used, size) = match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Err(SHORT.into()),
            Err(_) => return Err("a chunk size line is not valid".into()),
        };
        data = &data[used..];
        if size == 0 {
            break;
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= data.len())
            .ok_or(SHORT)?;
        out.extend_from_slice(&data[..size]);
        data = data[size..]
            .strip_prefix(b"\r\n")
            .ok_or("a chunk's data does not end with CRLF")?;
    }
    // Trailer fields, then the empty line; a capture ending right after `0\r\n` is taken.
    if !data.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(data, &mut fields) {
            Ok(httparse::Status::Complete((used, _))) => data = &data[used..],
            Ok(httparse::Status::Partial) => return Err(SHORT.into()),
            Err(e) => return Err(format!("the chunked body's trailer is not valid: {e}")),
        }
    }
    if !data.is_empty() {
        return Err(format!("{} bytes follow the chunked body", data.len()));
    }
    Ok(out)
}

/// Reads a `.gor` file payload by payload, lines through [`BoundedLines`], one payload's
/// bytes held at a time.
pub struct GorReader<R> {
    path: PathBuf,
    lines: BoundedLines<R>,
    bound: EntryBound,
    payload: Vec<u8>,
    done: bool,
}

impl<R: BufRead> GorReader<R> {
    pub fn new(path: &Path, reader: R, bound: EntryBound) -> GorReader<R> {
        GorReader {
            path: path.to_path_buf(),
            lines: BoundedLines::new(reader, bound),
            bound,
            payload: Vec::new(),
            done: false,
        }
    }

    /// The next payload into `payload`: its first line's number and whether it went over
    /// the bound; `None` at the end of the file.
    fn read_payload(&mut self) -> Result<Option<(u64, bool)>, TrafficError> {
        self.payload.clear();
        let bound = usize::try_from(self.bound.bytes).unwrap_or(usize::MAX);
        let (mut first, mut too_long, mut separated) = (None, false, false);
        loop {
            let line = self
                .lines
                .read_line()
                .map_err(|e| TrafficError::Unreadable {
                    path: self.path.clone(),
                    problem: format!("after line {}: {e}", self.lines.number()),
                })?;
            match line {
                Line::End => {
                    self.done = true;
                    break;
                }
                Line::Read if self.lines.text() == SEPARATOR => {
                    if first.is_some() {
                        separated = true;
                        break;
                    }
                    // Nothing before it (the file's start, two separators): no payload.
                    continue;
                }
                Line::Read if first.is_none() && self.lines.text().trim_ascii().is_empty() => {
                    continue
                }
                Line::Read => {
                    first.get_or_insert(self.lines.number());
                    let text = self.lines.text();
                    if too_long || self.payload.len() + text.len() + 1 > bound {
                        too_long = true;
                        self.payload = Vec::new();
                    } else {
                        self.payload.extend_from_slice(text);
                        if self.lines.ended_with_newline() {
                            self.payload.push(b'\n');
                        }
                    }
                }
                Line::TooLong => {
                    first.get_or_insert(self.lines.number());
                    too_long = true;
                    self.payload = Vec::new();
                }
            }
        }
        // The newline before the separator is the separator's; a file that ends without
        // one (GoReplay always writes it) keeps all its bytes.
        if separated && self.payload.last() == Some(&b'\n') {
            self.payload.pop();
        }
        Ok(first.map(|line| (line, too_long)))
    }
}

impl<R: BufRead> Iterator for GorReader<R> {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (line, too_long) = match self.read_payload() {
                Ok(Some(found)) => found,
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let position = Position::Line(line);
            let invalid = |problem| TrafficError::Invalid {
                path: self.path.clone(),
                position,
                problem,
            };
            if too_long {
                return Some(Err(invalid(self.bound.refusal("the payload"))));
            }
            match parse_payload(&self.payload) {
                Ok(Some((ts, request))) => {
                    return Some(Ok(TrafficEntry {
                        position,
                        ts: Some(ts),
                        request,
                        skip: None,
                        response: None,
                    }))
                }
                Ok(None) => continue,
                Err(problem) => return Some(Err(invalid(problem))),
            }
        }
        None
    }
}

/// Request payloads of a `.gor` file, counted by their header lines without keeping one.
pub(crate) fn count<R: BufRead>(reader: R, bound: EntryBound) -> Option<u64> {
    let mut lines = BoundedLines::new(reader, bound);
    let (mut count, mut at_start) = (0, true);
    loop {
        match lines.read_line().ok()? {
            Line::End => return Some(count),
            Line::Read if lines.text() == SEPARATOR => at_start = true,
            Line::Read if at_start && !lines.text().trim_ascii().is_empty() => {
                count += u64::from(lines.text().starts_with(b"1 "));
                at_start = false;
            }
            Line::Read => {}
            Line::TooLong => at_start = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEP: &str = "\n🐵🙈🙉\n";

    fn read(text: &str, bound: EntryBound) -> Vec<Result<TrafficEntry, TrafficError>> {
        GorReader::new(Path::new("c.gor"), text.as_bytes(), bound).collect()
    }

    fn bound() -> EntryBound {
        EntryBound::for_max_body(1024 * 1024)
    }

    #[test]
    fn reads_requests_skips_responses_and_decodes_bodies() {
        let file = [
            "1 a1 1700000000123456789 0\nGET /a?x=%20 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
            "2 a1 1700000000200000000 1000\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "1 b2 1700000001000000000 0\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe\nlo",
            "1 c3 1700000002000000000\nPUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
            "3 c3 1700000002500000000 5\nHTTP/1.1 204 No Content\r\n\r\n",
        ]
        .join(SEP)
            + SEP;
        let out: Vec<_> = read(&file, bound())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].position, Position::Line(1));
        assert_eq!(out[0].ts.as_deref(), Some("2023-11-14T22:13:20.123456789Z"));
        assert_eq!(out[0].request.uri, "/a?x=%20");
        assert_eq!(out[0].request.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(out[1].request.body, "he\nlo");
        assert_eq!(out[1].position, Position::Line(15));
        assert_eq!(out[2].request.body, "abcde");
        assert_eq!(out[2].ts.as_deref(), Some("2023-11-14T22:13:22Z"));
        assert_eq!(count(file.as_bytes(), bound()), Some(3));
    }

    #[test]
    fn bad_payloads_name_their_first_line_and_reading_goes_on() {
        let file = [
            "9 x 1 0\nGET / HTTP/1.1\r\n\r\n",
            "1 x notatime 0\nGET / HTTP/1.1\r\n\r\n",
            "1 x 1 0\nPOST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            "1 x 1 0\nGET /../etc HTTP/1.1\r\n\r\n",
            "1 x 1 0\nGET / HTTP/1.1\r\nHost: h\r\n",
            "1 x 1 0\nGET / HTTP/1.1\r\n\r\nextra",
            "1 x 1 0\nGET /ok HTTP/1.1\r\n\r\n",
        ]
        .join(SEP);
        let out = read(&file, bound());
        let messages: Vec<String> = out
            .iter()
            .map(|r| match r {
                Ok(e) => format!("ok {}", e.request.uri),
                Err(e) => e.to_string(),
            })
            .collect();
        let expected = [
            "c.gor:1: payload header",
            "c.gor:6: timestamp",
            "c.gor:11: the body is 5 bytes",
            "c.gor:17: \"/../etc\" is refused",
            "c.gor:22: the request head is incomplete",
            "c.gor:27: 5 bytes follow",
            "ok /ok",
        ];
        assert_eq!(messages.len(), expected.len(), "{messages:?}");
        for (message, expected) in messages.iter().zip(expected) {
            assert!(message.starts_with(expected), "{message} / {expected}");
        }
    }

    #[test]
    fn a_payload_over_the_bound_is_refused_and_the_next_read() {
        let big = format!(
            "1 x 1 0\nPOST / HTTP/1.1\r\nContent-Length: 300\r\n\r\n{}",
            "a\n".repeat(150)
        );
        let file = format!("{big}{SEP}1 y 2 0\nGET /next HTTP/1.1\r\n\r\n{SEP}");
        let tiny = EntryBound {
            bytes: 100,
            max_body: 0,
            responses: false,
        };
        let out = read(&file, tiny);
        assert_eq!(out.len(), 2);
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("c.gor:1: the payload is longer than 100 bytes"));
        assert_eq!(out[1].as_ref().unwrap().request.uri, "/next");
    }

    proptest! {
        #[test]
        fn no_payload_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                             text in "[ -~\r\n]{0,200}") {
            let _ = parse_payload(&bytes);
            let _ = parse_payload(format!("1 a 1 0\n{text}").as_bytes());
            let _ = parse_payload(format!("1 a 1 0\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{text}").as_bytes());
            let file = format!("{text}{SEP}{text}");
            let _: Vec<_> = GorReader::new(Path::new("p.gor"), file.as_bytes(), bound()).collect();
        }
    }
}
