//! `shadowdiff ctl`: the admin listener's runtime endpoints as a command (`/shadow/*`,
//! docs/OPERATIONS.md). A client of serve's own HTTP API, so reqwest, never an upstream leg.

use crate::cli::{CtlAction, CtlArgs};
use anyhow::{bail, Context};

pub fn run(args: &CtlArgs) -> anyhow::Result<()> {
    let base = match args.admin.contains("://") {
        true => args.admin.trim_end_matches('/').to_string(),
        false => format!("http://{}", args.admin),
    };
    let (method, path, body) = match &args.action {
        CtlAction::Pause => (reqwest::Method::POST, "/shadow/pause", None),
        CtlAction::Resume => (reqwest::Method::POST, "/shadow/resume", None),
        CtlAction::Unsample => (reqwest::Method::DELETE, "/shadow/sample", None),
        CtlAction::Status => (reqwest::Method::GET, "/status", None),
        CtlAction::Sample { rate, route } => {
            shadowdiff::config::parse_rate(rate)
                .map_err(|r| anyhow::anyhow!("RATE {rate:?}: {r}"))?;
            let body = serde_json::json!({ "rate": rate, "route": route });
            (
                reqwest::Method::PUT,
                "/shadow/sample",
                Some(body.to_string()),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client")?;
    let (status, text) = runtime
        .block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?;
            let mut request = client.request(method, format!("{base}{path}"));
            if let Some(token) = &args.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
            }
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .with_context(|| format!("--admin {}: no answer", args.admin))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!("--admin {}: the token was refused (401): give the serve's --admin-token as --token or SHADOWDIFF_ADMIN_TOKEN", args.admin);
    }
    if !status.is_success() {
        bail!("--admin {}: {status}: {}", args.admin, text.trim());
    }
    shadowdiff::stdout::write(&text).context("writing to standard output")
}
