//! The subcommands' glue that lives with the binary, not in the library: each reads its
//! clap arguments (src/cli.rs), calls the library with typed values and prints the result.
//! Serve and `config check` are in main itself: their flags become `config::Overrides`
//! in `cli::ServeArgs`, and the library does the rest.

pub mod ctl;
pub mod demo;
pub mod diff;
pub mod replay;
pub mod report;
pub mod store;
pub mod suggest;
