//! Command-line definitions, and nothing else: parsing into typed settings happens in
//! [`shadowdiff::config`], so the same checks apply to flags, environment and files.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use shadowdiff::config::Overrides;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "shadowdiff",
    version,
    about = "Shadow HTTP traffic to a secondary and audit the differences",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format.
    #[arg(long, global = true, value_name = "FORMAT", value_enum, env = "SHADOWDIFF_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `debug` or `info,shadowdiff=debug`; RUST_LOG is used when absent.
    /// [default: info]
    #[arg(
        long,
        global = true,
        value_name = "FILTER",
        env = "SHADOWDIFF_LOG_LEVEL"
    )]
    pub log_level: Option<String>,
}

// Parsed once per process; boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Proxy to the primary, shadow sampled requests to the secondary, store the differences.
    Serve(ServeArgs),
    /// Summarize a store as a migration-consistency report.
    Report(ReportArgs),
    /// Pass or fail against mismatch and error thresholds (exit 0 pass, 1 fail, 2 error).
    Gate(GateArgs),
    /// Print one stored mismatch in full: request, both responses, differences, body diff.
    Show(ShowArgs),
    /// Run the whole product on embedded demo APIs: no arguments, no network.
    Demo(DemoArgs),
    /// Compare two files (bare bodies or captured responses) with the compare engine;
    /// exit 0 when they match, 1 when they differ, 2 on error.
    Diff(DiffArgs),
    /// Send recorded traffic (JSONL or HAR) to both upstreams and store the differences.
    Replay(ReplayArgs),
    /// Propose compare rules (ignore, mask, unordered, tolerance) from stored mismatches,
    /// as a config file `--config` takes; meaningful-looking changes are listed apart.
    Suggest(SuggestArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Move, trim and upgrade stores: copy one into another, prune old data, migrate.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Change a running serve through its admin listener: pause, resume, sampling.
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The serve's admin listener.
    #[arg(
        long,
        value_name = "ADDR",
        env = "SHADOWDIFF_ADMIN",
        default_value = "127.0.0.1:9090"
    )]
    pub admin: String,
    /// Its --admin-token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SHADOWDIFF_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub action: CtlAction,
}

#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// Stop shadowing (requests are still proxied; skips counted as `paused`).
    Pause,
    /// Shadow again.
    Resume,
    /// Override the share shadowed, over the file, until `unsample` or a restart.
    Sample {
        /// 0 to 1, or a percentage (10%).
        rate: String,
        /// Only for this route pattern, e.g. 'GET /users/{id}'.
        #[arg(long, value_name = "PATTERN")]
        route: Option<String>,
    },
    /// Drop every sampling override: the file's shares apply again.
    Unsample,
    /// Print /status.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Merge every run of one store into another (e.g. a sidecar's SQLite file into the
    /// central PostgreSQL); copying again adds only what is new.
    Copy(StoreCopyArgs),
    /// Remove what is older than a span from a store; the counts of what remains stay exact.
    Prune(StorePruneArgs),
    /// Apply every pending schema step, also those serve never applies on its own.
    Migrate(StoreMigrateArgs),
}

#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The store to read: sqlite:PATH (or a path) or postgres://…
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The store to merge into: sqlite:PATH (or a path) or postgres://…
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct StorePruneArgs {
    /// The store: sqlite:PATH (or a path) or postgres://…
    #[arg(long, value_name = "URL", env = "SHADOWDIFF_STORE")]
    pub store: String,
    /// Remove what happened before this span ago, e.g. 30d, 12h.
    #[arg(long, value_name = "DURATION")]
    pub older_than: String,
}

#[derive(Debug, Args)]
pub struct StoreMigrateArgs {
    /// The store: sqlite:PATH (or a path) or postgres://…
    #[arg(long, value_name = "URL", env = "SHADOWDIFF_STORE")]
    pub store: String,
}

/// `serve`'s flags, declared once in [`serve_flags`] and read by key into the library's
/// [`Overrides`]: a flag's long name is its key in the config file, and flags, their
/// `SHADOWDIFF_*` variables and the file meet in one merge ([`shadowdiff::config`]).
#[derive(Clone, Debug, Default)]
pub struct ServeArgs {
    pub overrides: Overrides,
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<ServeArgs, clap::Error> {
        let mut overrides = Overrides::new();
        for arg in serve_flags() {
            let key = arg.get_id().as_str();
            // Defaults are the config's to decide, after the file.
            if !matches!(
                matches.value_source(key),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            if key == "config" {
                overrides.config_file = matches.get_one::<PathBuf>(key).cloned();
            } else if arg.get_action().takes_values() {
                if let Some(value) = matches.get_one::<String>(key) {
                    overrides.set(key, value.clone());
                }
            } else if let Some(on) = matches.get_one::<bool>(key) {
                overrides.set(key, on.to_string());
            }
        }
        Ok(ServeArgs { overrides })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ServeArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        command.args(serve_flags())
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        ServeArgs::augment_args(command)
    }
}

/// A serve setting that takes a value.
fn setting(key: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    flag(key, help).value_name(value_name)
}

/// A serve setting that is on or off; its variable takes what people write for a
/// boolean (`1`, `yes`, `on`, `true`, and their opposites).
fn switch(key: &'static str, help: &'static str) -> Arg {
    flag(key, help)
        .action(ArgAction::SetTrue)
        .value_parser(clap::builder::BoolishValueParser::new())
}

/// `--KEY`, with its `SHADOWDIFF_*` variable.
fn flag(key: &'static str, help: &'static str) -> Arg {
    Arg::new(key)
        .long(key)
        .env(format!(
            "SHADOWDIFF_{}",
            key.replace('-', "_").to_ascii_uppercase()
        ))
        .help(help)
}

/// Every flag of `serve`; each is optional: a missing flag falls back to its environment
/// variable, then the config file, then the default.
pub fn serve_flags() -> Vec<Arg> {
    vec![
        setting("config", "FILE", "TOML file with the same keys as the flags, plus compare rules.")
            .value_parser(clap::value_parser!(PathBuf)),
        setting("listen", "ADDR", "Address to accept clients on (HTTP/1.1 and cleartext HTTP/2). [default: 127.0.0.1:8080]"),
        setting("primary", "URL", "The system of record; clients get its responses."),
        setting("secondary", "URL", "The system being migrated to; receives copies of sampled requests."),
        setting("answer-from", "LEG", "Which leg's responses the clients get: `primary`, or `secondary` after a cutover (the primary is then the shadow, so verification goes on and rolling back is this flag). [default: primary]"),
        setting("baseline", "URL", "A second instance of the primary's version (or `self`: the primary again, safe methods only): where primary and baseline differ is noise, not a mismatch. Gets the secondary's admission, timeout and connect settings."),
        setting("noise-window", "N", "Comparisons per route the baseline's noise memory spans. [default: 200]"),
        setting("noise-threshold", "RATE", "Share of a route's comparisons in which primary and baseline must differ at a path for it to be noise on the route. [default: 1%]"),
        setting("noise-relative", "RATE", "Largest relative gap between the secondary's and the baseline's difference rates at a path for it to be noise on the route. [default: 20%]"),
        setting("baseline-max-inflight", "N", "With --baseline self: the primary's extra copies in flight at once; beyond it a request is compared without a baseline. [default: 32]"),
        setting("db", "PATH", "SQLite file for results, short for --store sqlite:PATH. [default: shadowdiff.db]"),
        setting("store", "URL", "Where results go: sqlite:PATH or postgres://user@host/db (a password in it is never printed or stored). [default: sqlite:shadowdiff.db]"),
        setting("shadow-marker", "NAME", "Header shadow, baseline and replay requests carry (value shadow, baseline or replay), for a secondary to suppress side effects on; a request arriving with it is a loop and not shadowed. [default: x-shadowdiff]"),
        setting("admin-token", "TOKEN", "Bearer token the admin listener's /shadow endpoints (pause, resume, sample) require; needed when --admin is not on loopback."),
        setting("store-backlog", "N", "Records held while the store's database is unreachable, written when it is back; past this the oldest are counted lost. [default: 10000]"),
        setting("instance", "NAME", "This instance's name on its runs, so reports can tell replicas apart. [default: the host name]"),
        setting("sample", "RATE", "Share of requests to shadow: a fraction (0.1) or a percentage (10%). [default: 1]"),
        setting("sample-by", "KEY", "Decide sampling by hashing header:NAME, query:NAME or path, so the same key is always shadowed or never."),
        switch("shadow-writes", "Also shadow POST, PUT, PATCH, DELETE and other unsafe methods."),
        setting("max-body", "SIZE", "Largest body shadowed and compared, e.g. 1MiB, 512KB. [default: 1MiB]"),
        setting("max-shadow-memory", "SIZE", "Memory all shadows together may buffer (request bodies, both responses, exchanges waiting for comparison); beyond it requests are skipped as overload. [default: 256MiB]"),
        setting("secondary-timeout", "DURATION", "Time allowed for the secondary's whole response. [default: 5s]"),
        setting("primary-timeout", "DURATION", "Time allowed for the primary's response headers; past it the client gets 504. [default: 30s]"),
        setting("connect-timeout", "DURATION", "Time allowed for a TCP connect to either upstream; past it the leg fails as a connect error. [default: the leg's own timeout]"),
        setting("max-inflight", "N", "Most shadow requests in flight at once; beyond it requests are skipped as overload. [default: 1024]"),
        switch("preserve-host", "Send the client's Host header to both upstreams instead of each upstream's authority."),
        setting("drain-timeout", "DURATION", "On SIGINT/SIGTERM, how long to wait for shadows in flight. [default: 10s]"),
        setting("header-read-timeout", "DURATION", "Time a client has to send a complete request head (HTTP/1.1) or its connection preface and first request (HTTP/2), TLS handshake included; then the connection is closed. [default: 30s]"),
        setting("max-connections", "N", "Most client connections open at once; at the cap, accepting pauses until one closes. [default: the open-file limit less a reserve, see docs/SECURITY.md]"),
        setting("examples-per-signature", "N", "Mismatches kept with full request and bodies per (route, set of differing paths); later ones keep only their differences. [default: 20]"),
        setting("max-db-size", "SIZE", "Stop keeping examples once the store reaches this size, e.g. 2GiB (counts continue)."),
        setting("record", "FILE", "Append every shadowed request to this JSON Lines traffic file, for `replay`."),
        setting("record-max-size", "SIZE", "Rotate the traffic file when it would grow past this size (FILE.1, FILE.2, ...). [default: 100MiB]"),
        switch("record-responses", "With --record: write the primary's response (redacted like the request) beside each request, so `replay --against-recorded` can compare the secondary with it once the primary is gone."),
        switch("record-secrets", "Keep secrets (Authorization, Cookie, secret query parameters and body fields, see `[redact]`) in the traffic file instead of redacting them."),
        setting("admin", "ADDR", "Admin listener for /metrics, /healthz and /status, or `off`; never the proxy's own listener. [default: 127.0.0.1:9090]"),
        setting("max-route-labels", "N", "Distinct route labels in metrics; later routes are counted under `other`. [default: 200]"),
        setting("breaker-threshold", "N", "Consecutive secondary errors or timeouts that open the circuit breaker and pause shadowing; 0 disables it. [default: 20]"),
        setting("breaker-cooldown", "DURATION", "First pause once the breaker opens; doubles up to 5m while probes keep failing. [default: 10s]"),
        setting("tls-cert", "FILE", "PEM certificate chain: serve clients over TLS (needs --tls-key).").requires("tls-key"),
        setting("tls-key", "FILE", "PEM private key of --tls-cert.").requires("tls-cert"),
        setting("secondary-ca", "FILE", "PEM CA certificate(s) trusted for the secondary, on top of the system roots."),
        switch("insecure-secondary", "Accept any certificate from the secondary. For test environments only."),
    ]
}

/// `replay --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum TrafficFormat {
    /// By file name, else by the first non-blank line.
    #[default]
    Auto,
    /// JSON Lines, as `serve --record` writes.
    Jsonl,
    /// HAR 1.2.
    Har,
    /// nginx/Apache combined or common.
    AccessLog,
    /// Envoy's default access log format.
    Envoy,
    /// GoReplay `.gor` capture.
    Gor,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `shadowdiff config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (with the SHADOWDIFF_* environment) and print the effective
    /// settings; exit 2 naming what is wrong.
    Check(ConfigCheckArgs),
}

#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The TOML file serve would read with --config.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `show --color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When standard output is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// The formats `report` renders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A terminal table.
    Text,
    /// The whole report model.
    #[default]
    Json,
    /// For a pull-request comment or a CI job summary.
    Markdown,
    /// One self-contained page with a chart and side-by-side diffs.
    Html,
    /// One testcase per route, failing where the route breaks a threshold.
    Junit,
}

/// Which stores and which part of them a report or gate reads.
#[derive(Clone, Debug, Default, Args)]
#[group(skip)]
#[command(group = clap::ArgGroup::new("stores").required(true).multiple(true))]
pub struct StoreSelection {
    /// SQLite store written by serve or replay; repeat to merge several proxy instances.
    #[arg(long, value_name = "PATH", group = "stores")]
    pub db: Vec<PathBuf>,
    /// Store to read: sqlite:PATH or postgres://user@host/db; repeatable, also with --db.
    #[arg(long, value_name = "URL", env = "SHADOWDIFF_STORE", group = "stores")]
    pub store: Vec<String>,
    /// Only runs of this instance (`serve --instance`, default the host name).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Only what happened in this recent span, e.g. 1h, 30m.
    #[arg(long, value_name = "DURATION", conflicts_with = "run")]
    pub since: Option<String>,
    /// Only this run (ids are listed in the report's runs).
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
    /// Only routes this pattern picks, e.g. 'GET /users/*' ('*' one segment or within one,
    /// '**' any number, method optional).
    #[arg(long, value_name = "PATTERN")]
    pub route: Option<String>,
}

/// Pass/fail thresholds; a rate is a fraction (0.01) or a percentage (1%). A rate equal to
/// its threshold passes.
#[derive(Clone, Debug, Default, Args)]
pub struct ThresholdArgs {
    /// Highest mismatch rate allowed on any route.
    #[arg(long, value_name = "RATE")]
    pub max_mismatch_rate: Option<String>,
    /// Highest mismatch rate of routes matching PATTERN (first match wins over
    /// --max-mismatch-rate), e.g. 'GET /search*=0.1'. Repeatable.
    #[arg(long, value_name = "PATTERN=RATE")]
    pub route_max: Vec<String>,
    /// Highest error rate (errors / (compared + errors)) allowed on any route.
    #[arg(long, value_name = "RATE")]
    pub max_error_rate: Option<String>,
    /// Fewer comparisons than this in total is a failure: too little evidence.
    #[arg(long, value_name = "N")]
    pub min_compared: Option<u64>,
    /// Most the secondary may be slower than the primary on any route at a percentile,
    /// e.g. p99=1.5 (the secondary's p99 at most 1.5x the primary's). Repeatable for p50,
    /// p95, p99.
    #[arg(long, value_name = "pQ=RATIO")]
    pub max_latency_ratio: Vec<String>,
    /// The same for routes matching PATTERN (first match wins, over --max-latency-ratio
    /// for its percentile), e.g. 'GET /search/*=p99:2'. Repeatable.
    #[arg(long, value_name = "PATTERN=pQ:RATIO")]
    pub route_max_latency_ratio: Vec<String>,
}

#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub stores: StoreSelection,
    /// Output format.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Examples listed per route.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub examples: usize,
    /// Text format: every column at full width, however wide (default: fit 100 columns).
    #[arg(long)]
    pub wide: bool,
    /// With any threshold, report also gates: exit 1 when one is broken.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

#[derive(Clone, Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    pub stores: StoreSelection,
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

#[derive(Clone, Debug, Args)]
pub struct SuggestArgs {
    #[command(flatten)]
    pub stores: StoreSelection,
    /// Write the config to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct ShowArgs {
    /// Mismatch id, as listed in a report's examples.
    #[arg(value_name = "ID")]
    pub id: i64,
    /// SQLite store holding the mismatch.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    pub db: Option<PathBuf>,
    /// Store holding the mismatch: sqlite:PATH or postgres://user@host/db.
    #[arg(long, value_name = "URL", env = "SHADOWDIFF_STORE")]
    pub store: Option<String>,
    /// Colour the side-by-side bodies. The view is COLUMNS wide (100 without it).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The primary's side: a body (JSON or text) or a captured response as JSON
    /// `{"status": 200, "headers": {...}, "body": ...}`.
    #[arg(value_name = "A")]
    pub primary: PathBuf,
    /// The secondary's side, in the same forms.
    #[arg(value_name = "B")]
    pub secondary: PathBuf,
    /// Config file whose `[compare]` and `[[route]]` rules apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Compare as this request would be, e.g. 'GET /users/7', so its route's rules apply.
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<String>,
    /// Output format: text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: String,
}

/// Flags of `replay`. Upstreams, the store and compare rules can also come from `--config`
/// (the same file `serve` reads); flags win.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Traffic file: JSON Lines, HAR 1.2, an nginx/Apache or Envoy access log, or a
    /// GoReplay `.gor` capture (docs/TRAFFIC.md).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The input's format; `auto` goes by the file name (`.har`, `.gor`, `.jsonl`), then
    /// by its first line.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = TrafficFormat::Auto)]
    pub format: TrafficFormat,
    /// The system of record.
    #[arg(long, value_name = "URL")]
    pub primary: Option<String>,
    /// The system being migrated to.
    #[arg(long, value_name = "URL")]
    pub secondary: Option<String>,
    /// A second instance of the primary's version, or `self` (see `serve --baseline`).
    #[arg(long, value_name = "URL")]
    pub baseline: Option<String>,
    /// Comparisons per route the baseline's noise memory spans. [default: 200]
    #[arg(long, value_name = "N")]
    pub noise_window: Option<String>,
    /// Least share of comparisons with a baseline difference at a path for it to be noise
    /// on the route. [default: 1%]
    #[arg(long, value_name = "RATE")]
    pub noise_threshold: Option<String>,
    /// Largest relative gap between the secondary's and the baseline's difference rates
    /// at a path for it to be noise on the route. [default: 20%]
    #[arg(long, value_name = "RATE")]
    pub noise_relative: Option<String>,
    /// Header both legs get (value `replay`), as serve's --shadow-marker. [default: x-shadowdiff]
    #[arg(long, value_name = "NAME")]
    pub shadow_marker: Option<String>,
    /// SQLite file for results, short for --store sqlite:PATH. [default: shadowdiff.db]
    #[arg(long, value_name = "PATH", conflicts_with = "store")]
    pub db: Option<PathBuf>,
    /// Where results go: sqlite:PATH or postgres://user@host/db.
    #[arg(long, value_name = "URL", env = "SHADOWDIFF_STORE")]
    pub store: Option<String>,
    /// This instance's name on its run. [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// TOML file with upstreams, limits and compare rules, as for serve.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Requests in flight at once (each goes to both upstreams).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub concurrency: u32,
    /// Most requests started per second, or `original`: the spacing of the file's
    /// timestamps. Unlimited when absent.
    #[arg(long, value_name = "RPS|original")]
    pub rate: Option<String>,
    /// Threads sending requests, each running its share of the concurrency on its own
    /// connections. [default: the number of CPU cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Also replay POST, PUT, PATCH, DELETE and other unsafe methods (not from access logs,
    /// which hold no bodies).
    #[arg(long)]
    pub shadow_writes: bool,
    /// Compare the secondary with the primary's answers the file holds (a HAR's
    /// responses, or a `serve --record-responses` record) instead of calling a primary,
    /// for CI once the old system is gone. Values the recording holds redacted are
    /// hidden by the rule `redacted`.
    #[arg(long)]
    pub against_recorded: bool,
    /// Replay the whole file this many times.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Count and report invalid lines instead of stopping at the first one.
    #[arg(long)]
    pub skip_invalid: bool,
    /// With any threshold, replay also gates: exit 1 when one is broken.
    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Requests in the built-in traffic mix.
    #[arg(long, value_name = "N", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub requests: u32,
    /// Where the two stores and the rules file go. [default: shadowdiff-demo in the
    /// system's temporary directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}
