//! Path patterns through their public API only: compiling any text never panics, and a
//! compiled pattern matches any path without panicking. The first line is the pattern,
//! each further line a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadowdiff::compare::path::{segments, PathPattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let Some(pattern) = lines.next() else {
        return;
    };
    let Ok(pattern) = PathPattern::compile(pattern) else {
        return;
    };
    for path in lines {
        let segs = segments(path);
        let matches = pattern.matches(&segs);
        // Matching exactly implies matching the path or one of its ancestors.
        assert!(!matches || pattern.covers(&segs));
    }
});
