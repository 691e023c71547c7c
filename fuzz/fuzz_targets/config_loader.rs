//! The config loader on arbitrary text: TOML parsing, merging over defaults, validation
//! into serve settings and compiling the compare rules never panic; bad input is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shadowdiff::compare::Comparator;
use shadowdiff::config::{FileConfig, Overrides, ServeConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One file per fuzzing process, rewritten for each input: the loader reads a path.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("shadowdiff-fuzz-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = FileConfig::parse(Path::new("f.toml"), text);
    let path = scratch();
    std::fs::write(path, text).expect("the scratch config file is writable");
    if let Ok(config) = ServeConfig::load(&Overrides::over_file(Some(path.clone()))) {
        let _ = config.effective(&[]);
        if let Ok(engine) = Comparator::new(&config.rules) {
            let _ = engine.rule_ids();
        }
    }
});
