//! Every integration test in one binary, as ripgrep's are: one link of the library and
//! its dependencies instead of one per file, and one place to look. Each file is a module
//! named after the area it covers; `support` holds the real servers, the proxy harness,
//! the known store workloads and the replay servers they share.
//!
//! `cargo test --test integration serve_` runs one area.

mod support;

mod baseline_noise;
mod compare_cli;
mod compare_engine;
mod compare_kinds;
mod compare_properties;
mod compare_rename;
mod dashboard_browser;
mod demo_cli;
mod ops_alerts;
mod ops_cli;
mod ops_metrics;
mod ops_tls;
mod parser_properties;
mod pattern_complexity;
mod pg_harness;
mod record_replay;
mod replay_cli;
mod replay_connections;
mod replay_demo;
mod replay_files;
mod replay_formats;
mod replay_limits;
mod replay_recorded;
mod replay_recorder;
mod report_formats;
mod report_gate;
mod report_json;
mod report_views;
mod serve_budget;
mod serve_cli;
mod serve_cutover;
mod serve_h2;
mod serve_hardening;
mod serve_outcomes;
mod serve_passthrough;
mod serve_paths;
mod serve_rewrites;
mod serve_secrets;
mod serve_shadowing;
mod serve_upgrade;
mod shadow_control;
mod store_hardening;
mod store_postgres;
mod store_writer;
mod suggest_cli;
