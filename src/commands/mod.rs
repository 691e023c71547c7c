//! The subcommands' glue that lives with the binary, not in the library: each reads its
//! clap arguments, calls the library with typed values and prints the result. Still in
//! the library: serve's and replay's settings (`config::ServeConfig::from_args`,
//! `replay::ReplayOptions::from_args`), which take clap's structs (issue 14).

pub mod demo;
pub mod diff;
pub mod replay;
pub mod report;
