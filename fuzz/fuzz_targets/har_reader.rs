//! The HAR traffic reader on arbitrary bytes under a small entry bound: it never panics
//! and always ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadowdiff::traffic::har::HarReader;
use shadowdiff::traffic::EntryBound;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let bound = EntryBound::for_max_body(1024);
    let reader = HarReader::spawn(Path::new("f.har"), std::io::Cursor::new(data.to_vec()), bound);
    for item in reader {
        if let Ok(entry) = item {
            let _ = entry.request.uri.path();
        }
    }
});
