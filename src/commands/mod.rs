//! The subcommands' glue that lives with the binary, not in the library: each reads its
//! clap arguments, calls the library with typed values and prints the result. Moving the
//! rest here (report, gate, show, demo, replay's report, config check) is issue 14's
//! next step.

pub mod diff;
