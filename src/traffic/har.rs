//! HAR 1.2 logs, as browsers' developer tools and common proxies export them: every
//! entry's request, in file order.
//!
//! A HAR file is one JSON document, so it is read by a streaming deserializer on its own
//! thread that hands entries over one at a time through a small bounded channel: only one
//! entry is in memory at once, whatever the size of the log.

use super::{jsonl::check_timestamp, origin_form, Position, TrafficEntry, TrafficError};
use crate::exchange::RecordedRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    started_date_time: Option<String>,
    request: Request,
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
    pub fn spawn(path: &Path, reader: impl Read + Send + 'static) -> HarReader {
        let (tx, rx) = mpsc::sync_channel(256);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("shadowdiff-har".into())
            .spawn(move || parse(path, reader, tx))
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

fn parse(path: PathBuf, reader: impl Read, tx: Sink) {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = State {
        path: &path,
        tx: &tx,
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
    let problem = match result {
        Err(e) => Some(format!("not a HAR file: {e}")),
        Ok(()) if !state.saw_entries => Some("not a HAR file: no \"log.entries\" array".into()),
        Ok(()) => None,
    };
    if let Some(problem) = problem {
        let _ = tx.send(Err(TrafficError::Unreadable {
            path: path.clone(),
            problem,
        }));
    }
}

struct State<'a> {
    path: &'a Path,
    tx: &'a Sink,
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
            .map(|(ts, request)| TrafficEntry {
                position,
                ts,
                request,
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

fn entry_of(value: serde_json::Value) -> Result<(Option<String>, RecordedRequest), String> {
    let entry: Entry = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if let Some(ts) = &entry.started_date_time {
        check_timestamp(ts)?;
    }
    let request = entry.request;
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid HTTP method", request.method))?;
    let uri = origin_form(&request.url)?;
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
    ))
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
                map.next_value::<IgnoredAny>()?;
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
                map.next_value::<IgnoredAny>()?;
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
        while let Some(value) = seq.next_element::<serde_json::Value>()? {
            if !self.0.deliver(value) {
                return Err(serde::de::Error::custom(STOPPED));
            }
        }
        Ok(())
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

    #[test]
    fn reads_every_entry_in_order() {
        let out: Vec<_> = HarReader::spawn(Path::new("t.har"), HAR.as_bytes()).collect();
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
        let out: Vec<_> = HarReader::spawn(Path::new("t.har"), &b"[1,2]"[..]).collect();
        assert_eq!(out.len(), 1);
        assert!(!out[0].as_ref().unwrap_err().is_skippable());
        let out: Vec<_> = HarReader::spawn(Path::new("t.har"), &b"{\"log\":{}}"[..]).collect();
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("log.entries"));
    }
}
