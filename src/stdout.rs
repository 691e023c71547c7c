//! Standard output for the commands that print (report, gate, show, diff, demo, replay,
//! config check). A reader that stops early (`shadowdiff report | head`) closes the pipe;
//! that is its choice, not a failure of the command: as ripgrep does, the write is
//! reported as done, and the command's own verdict (the gate's exit status) stands.
//! `println!` would panic there instead: Rust ignores SIGPIPE, so the write fails.

use std::io::Write;

/// Writes `text` to standard output and flushes it. A broken pipe is success.
pub fn write(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    quiet_on_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
}

/// A broken pipe as success, any other error as it is.
pub fn quiet_on_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
