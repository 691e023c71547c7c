//! shadowdiff: shadow production HTTP traffic to a secondary during a migration and audit
//! the difference.
//!
//! The client always talks to the **primary** through [`proxy`]; a sampled copy of each
//! request goes to the **secondary**. Both responses flow as an [`exchange::Exchange`] into
//! the `pipeline`, which compares them off the hot path ([`compare`]) and hands the result
//! to the store's single writer ([`store`]: an SQLite file, or PostgreSQL for a fleet).
//! [`report`] turns stored results into verdicts.
//!
//! # Layout
//!
//! Modules without `pub` are the library's own; what callers outside need of them is
//! re-exported where it belongs.
//!
//! - `accept`: accepting TCP connections, with the one error policy (backoff).
//! - `admin`: the admin listener: `/metrics`, `/healthz`, `/status`, and the runtime
//!   changes `/shadow/*` (behind `--admin-token`) that `shadowdiff ctl` calls.
//! - `dashboard`: the live page at the admin listener's `/` (routes, sparklines, latest
//!   examples opening into the side-by-side diff), read from the store; behind the token.
//! - `budget`: the one byte budget for everything held for shadows (`--max-shadow-memory`).
//! - [`config`]: serve's settings per component (listener, each leg, shadow, store,
//!   admin, record): flags, environment and TOML file merged by one path and validated
//!   once. The command line itself (clap) is the binary's: `src/cli.rs`, with each
//!   subcommand's glue in `src/commands/`; the library takes typed settings only.
//! - [`demo`]: two embedded APIs (primary and "migrated" secondary) and a traffic mix.
//! - [`exchange`]: the values that flow: recorded request, captured response, outcomes.
//! - `metrics`: the Prometheus registry and what is counted where.
//! - [`rewrite`]: the `[[rewrite]]` list applied to the secondary's copy of a request
//!   (headers, path, query; values from the environment), and what each one changed.
//! - [`route`]: the route key of a request (`GET /users/{id}`).
//! - [`upstream`]: the one request builder, pooled hyper-util client (HTTP/1.1, HTTP/2 by
//!   ALPN or `h2c://`, rustls) and timeout behind every leg, and the request-target check
//!   that keeps every request inside the base path.
//! - [`proxy`]: the listener (connection cap, head deadline), the per-core serve workers,
//!   the requests refused with 400, the primary leg, the shadow leg and its admission
//!   rules, the hot path's bodies.
//! - [`redact`]: secrets (headers, query, body fields, URL passwords) replaced before
//!   anything reaches the disk or the logs.
//! - `noise`: what the baseline teaches: per-request and per-route noisy paths.
//! - `pipeline`: bounded hand-off from the hot path to the compare thread and the store.
//! - [`replay`]: a traffic file sent to both upstreams, into the same pipeline as serve.
//! - [`compare`]: decides whether two responses mean the same thing, and where they differ.
//! - [`stdout`]: what the commands print; a reader that stops early is not an error.
//! - [`store`]: where results go (`sqlite:PATH` or `postgres://…`), both engines' schemas
//!   and migrations, the writer thread and its sinks, read queries of either engine, and
//!   `store copy`/`prune`/`migrate`.
//! - [`report`]: one report model rendered as text, JSON, markdown, HTML and JUnit; the gate
//!   verdict and `show`; `report::diffview`, two bodies side by side as a person reads
//!   them (pretty-printed, sorted keys, changes and differing paths marked, folded), shared
//!   by `show`, the HTML report and the dashboard.
//! - [`suggest`]: compare rules proposed from stored differences (ignore, mask, unordered,
//!   tolerance), with their evidence, and what looks like a real change.
//! - [`wildcard`]: the segment matcher (`*`, `**`) behind route patterns and compare paths.
//! - [`traffic`]: traffic files (JSONL, HAR, nginx/Apache/Envoy access logs, GoReplay
//!   `.gor`) read as streams, each format detected or named, and the JSONL recorder.
#![forbid(unsafe_code)]

mod accept;
mod admin;
mod budget;
pub mod compare;
pub mod config;
mod dashboard;
pub mod demo;
pub mod exchange;
mod metrics;
mod noise;
mod pipeline;
pub mod proxy;
pub mod redact;
pub mod replay;
pub mod report;
pub mod rewrite;
pub mod route;
pub mod stdout;
pub mod store;
pub mod suggest;
pub mod traffic;
pub mod upstream;
pub mod wildcard;

pub use config::ServeConfig;
pub use proxy::{run, run_with_admin};
