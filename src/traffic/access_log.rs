//! Web server access logs: nginx's and Apache's "combined" (and "common") format, and
//! Envoy's default format. One request per line; what a log keeps of a request is its
//! request line, its start time and a few headers, so that is all that is replayed.
//!
//! - nginx `log_format combined` (<https://nginx.org/en/docs/http/ngx_http_log_module.html>):
//!   `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//!   "$http_referer" "$http_user_agent"`; Apache's `LogFormat "%h %l %u %t \"%r\" %>s %b
//!   \"%{Referer}i\" \"%{User-agent}i\"" combined`
//!   (<https://httpd.apache.org/docs/current/logs.html#combined>) writes the same line, and
//!   "common" is the same without the last two fields. Fields after the user agent (the
//!   `"$http_x_forwarded_for"` of nginx's stock `main`, ...) are ignored; so are extra
//!   fields before the time (Apache's `vhost_combined` starts with `%v:%p`).
//! - Envoy's default format
//!   (<https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage#default-format-string>):
//!   `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//!   %RESPONSE_CODE% %RESPONSE_FLAGS% ... "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
//!   "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" ...`. Newer releases put
//!   `%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
//!   "%UPSTREAM_TRANSPORT_FAILURE_REASON%"` before the byte counts and more fields after
//!   `"%UPSTREAM_HOST%"`, so the user agent and authority are found as the 2nd and 4th of
//!   the first run of (at least four) consecutive quoted fields, which both layouts share.
//!
//! A log has no request bodies and no headers but those it names, so only methods that
//! carry no body are replayed: GET, HEAD, OPTIONS and TRACE (RFC 9110 §9.2.1's safe
//! methods). A line with another method is read, checked, and handed on marked
//! [`SkipReason::BodyNotRecorded`]: sending a POST without its body would not be the
//! request that was made. The path and query are sent exactly as logged (servers log the
//! raw request target, still percent-encoded) and pass [`recorded_target`] like every
//! format's. Headers: `User-Agent` (and `Referer`) where logged, and `Host` from Envoy's
//! `:authority`; a logged `-` is an absent header.

use super::lines::LineEntries;
use super::{recorded_target, EntryBound, TrafficEntry, TrafficError};
use crate::exchange::{RecordedRequest, SkipReason};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::io::BufRead;
use std::path::Path;

/// Which layout the lines of a log follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// nginx / Apache combined, or common.
    Combined,
    /// Envoy's default format string.
    Envoy,
}

/// What one log line holds that a replay uses.
#[derive(Debug)]
pub struct LoggedRequest {
    /// The start time, RFC 3339.
    pub ts: String,
    pub request: RecordedRequest,
    /// Set when the method may carry a body, which no access log keeps.
    pub skip: Option<SkipReason>,
}

/// Methods that carry no body (RFC 9110 §9.2.1, safe methods), so a log line has all of
/// such a request that matters.
fn bodiless(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Parses one line (without its newline) of the given dialect.
pub fn parse_line(dialect: Dialect, line: &[u8]) -> Result<LoggedRequest, String> {
    let line = std::str::from_utf8(line)
        .map_err(|_| "the line is not UTF-8 (servers escape other bytes as \\xHH)".to_string())?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    match dialect {
        Dialect::Combined => combined(line),
        Dialect::Envoy => envoy(line),
    }
}

fn combined(line: &str) -> Result<LoggedRequest, String> {
    const SHAPE: &str = "not a combined/common access log line (HOST IDENT USER [TIME] \"REQUEST\" STATUS BYTES ...)";
    let open = line.find(" [").ok_or(SHAPE)?;
    if line[..open].split_ascii_whitespace().count() < 3 {
        return Err(SHAPE.into());
    }
    let mut fields = Fields::new(&line[open + 1..]);
    let time = fields.bracketed().ok_or(SHAPE)?;
    let ts = chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z")
        .map_err(|e| {
            format!(
                "time [{}] is not dd/Mon/yyyy:HH:MM:SS +zzzz: {e}",
                shown(time)
            )
        })?
        .to_rfc3339();
    let request_line = fields.quoted()?.ok_or(SHAPE)?;
    let status = fields.bare().ok_or(SHAPE)?;
    if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("status {:?} is not a 3-digit code", shown(status)));
    }
    let bytes = fields.bare().ok_or(SHAPE)?;
    if bytes != "-" && !bytes.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "body bytes {:?} are neither a number nor -",
            shown(bytes)
        ));
    }
    let (method, target) = request_line_parts(&request_line)?;
    let mut headers = HeaderMap::new();
    // Combined adds referer and user agent; common ends here. Later fields are ignored.
    if let Ok(Some(referer)) = fields.quoted() {
        add_header(&mut headers, http::header::REFERER, &referer);
        if let Ok(Some(agent)) = fields.quoted() {
            add_header(&mut headers, http::header::USER_AGENT, &agent);
        }
    }
    logged(ts, method, target, headers)
}

fn envoy(line: &str) -> Result<LoggedRequest, String> {
    const SHAPE: &str = "not an Envoy default-format line ([START_TIME] \"METHOD PATH PROTOCOL\" RESPONSE_CODE ...)";
    let mut fields = Fields::new(line);
    let time = fields.bracketed().ok_or(SHAPE)?;
    let ts = chrono::DateTime::parse_from_rfc3339(time)
        .map_err(|e| format!("START_TIME [{}] is not ISO 8601: {e}", shown(time)))?
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let request_line = fields.quoted()?.ok_or(SHAPE)?;
    let code = fields.bare().ok_or(SHAPE)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("RESPONSE_CODE {:?} is not a number", shown(code)));
    }
    let (method, target) = request_line_parts(&request_line)?;
    // The first run of consecutive quoted fields is X-FORWARDED-FOR, USER-AGENT,
    // X-REQUEST-ID, :AUTHORITY (module doc); anything unreadable after the code is ignored.
    let mut run = Vec::new();
    while let Some(token) = fields.token() {
        match token {
            Token::Quoted(text) => run.push(text),
            Token::Bare if run.len() >= 4 => break,
            Token::Bare => run.clear(),
        }
    }
    let mut headers = HeaderMap::new();
    if run.len() >= 4 {
        add_header(&mut headers, http::header::USER_AGENT, &run[1]);
        add_header(&mut headers, http::header::HOST, &run[3]);
    }
    logged(ts, method, target, headers)
}

/// The request as replayed: a line whose method may have a body is checked the same way
/// but marked skipped; its target is kept when usable, for the skip's record.
fn logged(
    ts: String,
    method: Method,
    target: &str,
    headers: HeaderMap,
) -> Result<LoggedRequest, String> {
    let skip = (!bodiless(&method)).then_some(SkipReason::BodyNotRecorded);
    let uri = match recorded_target(target) {
        Ok(uri) => uri,
        // CONNECT's `host:port` and the like: never sent, so recorded as the root.
        Err(_) if skip.is_some() => http::Uri::from_static("/"),
        Err(problem) => return Err(problem),
    };
    Ok(LoggedRequest {
        ts,
        request: RecordedRequest {
            method,
            uri,
            headers,
            body: Bytes::new(),
        },
        skip,
    })
}

/// `METHOD TARGET PROTOCOL` (or HTTP/0.9's `METHOD TARGET`), as servers log it.
fn request_line_parts(text: &str) -> Result<(Method, &str), String> {
    if text == "-" || text.is_empty() {
        return Err(
            "the request is logged as \"-\": the server read no request line (nginx logs such connections with 400)"
                .into(),
        );
    }
    let parts: Vec<&str> = text.split(' ').collect();
    let (method, target) = match parts.as_slice() {
        [method, target] => (*method, *target),
        [method, target, protocol] if protocol.starts_with("HTTP/") || *protocol == "-" => {
            (*method, *target)
        }
        _ => {
            return Err(format!(
                "request {:?} is not a request line (METHOD TARGET PROTOCOL)",
                shown(text)
            ))
        }
    };
    if method == "-" || target == "-" {
        // Envoy's line for a connection without a request (a TCP proxy's, a reset).
        return Err(format!(
            "request {:?} names no method and path",
            shown(text)
        ));
    }
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid HTTP method", shown(method)))?;
    Ok((method, target))
}

/// Adds a logged header value, unescaped; `-` (not logged) and values that are not valid
/// header values are left out: they are informative, never worth refusing the line.
fn add_header(headers: &mut HeaderMap, name: HeaderName, logged: &str) {
    if logged == "-" || logged.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_bytes(&unescape(logged)) {
        headers.insert(name, value);
    }
}

/// nginx writes `"`, `\` and bytes outside printable ASCII of a logged string as `\xHH`;
/// Apache writes `\"`, `\\` and `\xhh`. Both decode here; other backslashes are kept.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'"' | b'\\')) => {
                out.push(bytes[i + 1]);
                i += 2;
            }
            (b'\\', Some(b'x')) => match bytes.get(i + 2..i + 4).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 4;
                }
                None => {
                    out.push(b'\\');
                    i += 1;
                }
            },
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(text, 16).ok()
}

/// At most 80 characters of logged text, for messages.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

enum Token {
    Bare,
    Quoted(String),
}

/// The space-separated fields of a log line: bare words, `[bracketed]` times and
/// `"quoted"` strings, in which `\"` and `\\` are escapes (Apache; nginx writes `\x22`).
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Fields<'a> {
        Fields { rest: text }
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn bracketed(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        let inner = self.rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        self.rest = &inner[end + 1..];
        Some(&inner[..end])
    }

    fn bare(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        if self.rest.is_empty() || self.rest.starts_with('"') {
            return None;
        }
        let end = self.rest.find(' ').unwrap_or(self.rest.len());
        let word = &self.rest[..end];
        self.rest = &self.rest[end..];
        Some(word)
    }

    /// The next quoted field with its escapes kept as logged, `None` when the next field
    /// is not quoted; an unterminated one is an error.
    fn quoted(&mut self) -> Result<Option<String>, String> {
        self.skip_spaces();
        let Some(inner) = self.rest.strip_prefix('"') else {
            return Ok(None);
        };
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    let text = inner[..i].to_string();
                    self.rest = &inner[i + 1..];
                    return Ok(Some(text));
                }
                _ => i += 1,
            }
        }
        Err("a quoted field has no closing quote".into())
    }

    fn token(&mut self) -> Option<Token> {
        self.skip_spaces();
        if self.rest.starts_with('"') {
            return self.quoted().ok().flatten().map(Token::Quoted);
        }
        self.bare().map(|_| Token::Bare)
    }
}

/// Reads an access log line by line ([`LineEntries`]); blank lines are ignored.
pub struct AccessLogReader<R> {
    dialect: Dialect,
    lines: LineEntries<R>,
}

impl<R: BufRead> AccessLogReader<R> {
    pub fn new(path: &Path, dialect: Dialect, reader: R, bound: EntryBound) -> AccessLogReader<R> {
        AccessLogReader {
            dialect,
            lines: LineEntries::new(path, reader, bound),
        }
    }
}

impl<R: BufRead> Iterator for AccessLogReader<R> {
    type Item = Result<TrafficEntry, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        let dialect = self.dialect;
        self.lines.next_with(|text, position| {
            parse_line(dialect, text).map(|logged| TrafficEntry {
                position,
                ts: Some(logged.ts),
                request: logged.request,
                skip: logged.skip,
                response: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::Position;
    use proptest::prelude::*;

    fn combined_ok(line: &str) -> LoggedRequest {
        parse_line(Dialect::Combined, line.as_bytes()).unwrap()
    }

    #[test]
    fn reads_combined_and_common_lines() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=%20b HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;
        let logged = combined_ok(line);
        assert_eq!(logged.ts, "2000-10-10T13:55:36-07:00");
        assert_eq!(logged.request.method, Method::GET);
        assert_eq!(logged.request.uri, "/apache_pb.gif?a=%20b");
        assert_eq!(
            logged.request.headers["user-agent"],
            "Mozilla/4.08 [en] (Win98; I ;Nav)"
        );
        assert_eq!(
            logged.request.headers["referer"],
            "http://www.example.com/start.html"
        );
        assert!(logged.skip.is_none());

        let common = combined_ok(r#"::1 - - [01/Jan/2026:00:00:00 +0000] "HEAD / HTTP/1.1" 304 -"#);
        assert_eq!(common.request.method, Method::HEAD);
        assert!(common.request.headers.is_empty());

        // nginx's `main` adds x-forwarded-for; vhost_combined adds a field in front.
        let trailing = combined_ok(
            r#"shop.example:443 10.0.0.1 - - [01/Jan/2026:00:00:01 +0100] "GET /a HTTP/2.0" 200 5 "-" "curl/8.0 \"x\"" "10.1.1.1""#,
        );
        assert_eq!(trailing.ts, "2026-01-01T00:00:01+01:00");
        assert!(trailing.request.headers.get("referer").is_none());
        assert_eq!(trailing.request.headers["user-agent"], "curl/8.0 \"x\"");
    }

    #[test]
    fn a_method_with_a_body_is_marked_skipped() {
        let post = combined_ok(
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "POST /orders HTTP/1.1" 201 12 "-" "-""#,
        );
        assert_eq!(post.skip, Some(SkipReason::BodyNotRecorded));
        assert_eq!(post.request.uri, "/orders");
        let connect = combined_ok(
            r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "CONNECT h.example:443 HTTP/1.1" 200 0"#,
        );
        assert_eq!(connect.skip, Some(SkipReason::BodyNotRecorded));
        let trace =
            combined_ok(r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "TRACE / HTTP/1.1" 405 0"#);
        assert!(trace.skip.is_none());
    }

    #[test]
    fn unusable_lines_say_why() {
        let cases = [
            (
                r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "-" 400 0 "-" "-""#,
                "logged as \"-\"",
            ),
            (
                r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "\x16\x03\x01" 400 150"#,
                "not a request line",
            ),
            (
                r#"1.2.3.4 - - [32/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1"#,
                "is not dd/Mon",
            ),
            (
                r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 2x0 1"#,
                "3-digit",
            ),
            (
                r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET /a/../../b HTTP/1.1" 200 1"#,
                "refused",
            ),
            (
                r#"1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] "GET /x HTTP/1.1 200 1"#,
                "closing quote",
            ),
            ("hello world", "not a combined"),
        ];
        for (line, expected) in cases {
            let problem = parse_line(Dialect::Combined, line.as_bytes()).unwrap_err();
            assert!(problem.contains(expected), "{line}: {problem}");
        }
    }

    #[test]
    fn reads_old_and_new_envoy_defaults() {
        let old = r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#;
        let logged = parse_line(Dialect::Envoy, old.as_bytes()).unwrap();
        assert_eq!(logged.ts, "2016-04-15T20:17:00.310Z");
        assert_eq!(logged.skip, Some(SkipReason::BodyNotRecorded));
        assert_eq!(logged.request.headers["host"], "locations");
        assert_eq!(logged.request.headers["user-agent"], "nsq2http");
        let new = r#"[2024-01-02T03:04:05.678Z] "GET /search?q=a%2Bb HTTP/1.1" 200 - via_upstream - "-" 0 19 3 2 "-" "curl/8.5.0" "1f0b7c9a" "shop.example" "10.0.0.7:8080" outbound|80||shop 10.0.0.5:41234 10.0.0.6:80 10.0.0.4:52000 - default"#;
        let logged = parse_line(Dialect::Envoy, new.as_bytes()).unwrap();
        assert!(logged.skip.is_none());
        assert_eq!(logged.request.uri, "/search?q=a%2Bb");
        assert_eq!(logged.request.headers["host"], "shop.example");
        assert_eq!(logged.request.headers["user-agent"], "curl/8.5.0");
        // Cut short after the code: no headers, still replayed.
        let short = parse_line(
            Dialect::Envoy,
            br#"[2024-01-02T03:04:05Z] "GET / HTTP/1.1" 200"#,
        )
        .unwrap();
        assert!(short.request.headers.is_empty());
        for bad in [
            &br#"[yesterday] "GET / HTTP/1.1" 200"#[..],
            br#"[2024-01-02T03:04:05Z] "- - -" 0"#,
            br#"[2024-01-02T03:04:05Z] "GET / HTTP/1.1" OK"#,
            b"\xff\xfe",
        ] {
            assert!(parse_line(Dialect::Envoy, bad).is_err());
        }
    }

    #[test]
    fn the_reader_numbers_lines_and_bounds_them() {
        let text = concat!(
            "1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"GET /a HTTP/1.1\" 200 1\n",
            "\n",
            "1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"-\" 400 0\r\n",
            "1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\" 200 1\n",
        );
        let bound = EntryBound {
            bytes: 100,
            max_body: 0,
            responses: false,
        };
        let out: Vec<_> = AccessLogReader::new(
            Path::new("a.log"),
            Dialect::Combined,
            text.as_bytes(),
            bound,
        )
        .collect();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().position, Position::Line(1));
        assert!(out[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("a.log:3: the request is logged"));
        assert!(out[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("a.log:4: the line is longer"));
    }

    proptest! {
        #[test]
        fn no_line_panics(line in proptest::collection::vec(any::<u8>(), 0..200),
                          text in "[ -~]{0,120}") {
            for dialect in [Dialect::Combined, Dialect::Envoy] {
                let _ = parse_line(dialect, &line);
                let _ = parse_line(dialect, text.as_bytes());
                let prefixed = format!("1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"{text}");
                let _ = parse_line(dialect, prefixed.as_bytes());
                let prefixed = format!("[2024-01-02T03:04:05Z] \"{text}");
                let _ = parse_line(dialect, prefixed.as_bytes());
            }
        }
    }
}
