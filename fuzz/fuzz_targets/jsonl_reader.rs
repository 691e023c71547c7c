//! The JSONL traffic reader on arbitrary bytes under a small line bound: it never panics,
//! and every request it accepts writes back to a line that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadowdiff::traffic::jsonl::{parse_line, to_line, JsonLinesReader};
use shadowdiff::traffic::EntryBound;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let bound = EntryBound::for_max_body(1024);
    let reader = std::io::BufReader::with_capacity(64, data);
    for item in JsonLinesReader::new(Path::new("f.jsonl"), reader, bound) {
        let Ok(entry) = item else {
            continue;
        };
        let line = to_line(entry.ts.as_deref(), &entry.request);
        let (ts, back) = parse_line(line.as_bytes()).expect("a written line reads back");
        assert_eq!(ts, entry.ts);
        assert_eq!(back.method, entry.request.method);
        assert_eq!(back.uri, entry.request.uri);
        assert_eq!(back.body, entry.request.body);
        assert_eq!(back.headers.len(), entry.request.headers.len());
    }
});
