//! Drives the demo traffic through the real proxy between the two demo backends: the
//! first half of `shadowdiff demo` (the report that follows reads the store it fills).

use super::{mix::traffic, Backends};
use crate::config::{ConfigError, Overrides, ServeConfig};
use crate::store::StoreError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Requests sent to the proxy at once.
const CLIENT_CONCURRENCY: usize = 8;
/// A demo request that takes longer than this means something is broken; say so.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One demo run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where the proxy stores its results.
    pub db: PathBuf,
    /// Compare rules (e.g. `fixtures/demo.toml`); none: every difference shows.
    pub config: Option<PathBuf>,
    /// Also run a second instance of the primary as the baseline (`--baseline`), so the
    /// noise is learnt instead of written as rules.
    pub baseline: bool,
    pub requests: usize,
    pub quiet: bool,
}

/// What the client side of the demo saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub db: PathBuf,
    /// Requests answered by the proxy (with the primary's response).
    pub answered: u64,
    /// Requests the proxy did not answer (connection error, timeout).
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the demo backends or proxy: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] crate::proxy::ServeError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("cannot build the demo client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("writing to standard output: {0}")]
    Stdout(std::io::Error),
    #[error("the demo's proxy panicked")]
    ProxyPanicked,
}

/// Stops a demo server when the run ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the backends and the proxy on ephemeral loopback ports, sends the traffic mix
/// through the proxy, then shuts the proxy down so every shadow is compared and stored.
pub async fn run(options: DemoOptions) -> Result<DemoSummary, DemoError> {
    let backends = Backends::start().await?;
    let mut overrides = Overrides::over_file(options.config.clone());
    overrides
        .set("listen", "127.0.0.1:0")
        .set("primary", backends.primary_url())
        .set("secondary", backends.secondary_url())
        .set("db", options.db.display().to_string())
        // The demo must run anywhere, beside anything: no fixed admin port.
        .set("admin", "off");
    let baseline = match options.baseline {
        true => {
            let (addr, server) = super::serve(super::Flavor::Primary, Default::default()).await?;
            overrides.set("baseline", format!("http://{addr}"));
            Some(AbortOnDrop(server))
        }
        false => None,
    };
    let config = ServeConfig::load(&overrides)?;
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let proxy_url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(crate::proxy::run(listener, config, async {
        let _ = stopped.await;
    }));

    let bar = if options.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(options.requests as u64), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("demo traffic [{wide_bar}] {pos}/{len} {per_sec}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .build()?;
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (tx, rx) = flume::bounded(CLIENT_CONCURRENCY);
    let mut senders = Vec::new();
    for _ in 0..CLIENT_CONCURRENCY {
        let (rx, client, bar) = (rx.clone(), client.clone(), bar.clone());
        let (answered, failed, base) = (answered.clone(), failed.clone(), proxy_url.clone());
        senders.push(tokio::spawn(async move {
            while let Ok(request) = rx.recv_async().await {
                let request: crate::exchange::RecordedRequest = request;
                let sent = client
                    .request(request.method, format!("{base}{}", request.uri))
                    .headers(request.headers)
                    .body(request.body)
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) => response.bytes().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                bar.inc(1);
            }
        }));
    }
    drop(rx);
    for request in traffic(options.requests) {
        if tx.send_async(request).await.is_err() {
            break;
        }
    }
    drop(tx);
    for sender in senders {
        let _ = sender.await;
    }
    bar.finish_and_clear();
    let _ = stop.send(());
    match proxy.await {
        Ok(result) => result?,
        Err(_) => return Err(DemoError::ProxyPanicked),
    }
    drop((backends, baseline));
    Ok(DemoSummary {
        db: options.db,
        answered: answered.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    })
}
