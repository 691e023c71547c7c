//! `shadowdiff demo`'s pieces: two embedded HTTP APIs and the traffic to drive through
//! them, so the whole product runs with no arguments and no network.
//!
//! The **primary** is the system of record; the **secondary** is its "migrated" rewrite
//! and differs the way real migrations do (see [`api`]). Both listen on ephemeral
//! loopback ports in this process. The same backends serve the benchmarks, with an
//! optional per-request delay standing in for real work.
//!
//! - [`api`]: the routes and the deliberate differences.
//! - [`mix`]: the built-in traffic mix.
//! - [`drive`]: the mix sent through the real proxy between the two backends.
//!
//! The command itself (both passes, no rules then `fixtures/demo.toml`, and their reports)
//! is the binary's `commands::demo`.

mod api;
pub mod drive;
pub mod mix;

pub use api::Flavor;
pub use drive::{run, DemoError, DemoOptions, DemoSummary};
pub use mix::traffic;

/// The demo's rules, embedded so the demo works from any directory.
pub const DEMO_RULES: &str = include_str!("../../fixtures/demo.toml");

use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the demo backends behave beyond their routes.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackendOptions {
    /// Added to every response of both backends, to model real work in benchmarks.
    pub delay: Duration,
}

/// The two running APIs. Dropping this stops them.
pub struct Backends {
    primary: SocketAddr,
    secondary: SocketAddr,
    servers: [JoinHandle<()>; 2],
}

impl Backends {
    /// Starts both APIs on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Backends> {
        Backends::start_with(BackendOptions::default()).await
    }

    pub async fn start_with(options: BackendOptions) -> std::io::Result<Backends> {
        let (primary, primary_server) = serve(Flavor::Primary, options).await?;
        let (secondary, secondary_server) = serve(Flavor::Secondary, options).await?;
        Ok(Backends {
            primary,
            secondary,
            servers: [primary_server, secondary_server],
        })
    }

    /// `http://127.0.0.1:PORT`, ready for `--primary`.
    pub fn primary_url(&self) -> String {
        format!("http://{}", self.primary)
    }

    pub fn secondary_url(&self) -> String {
        format!("http://{}", self.secondary)
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Serves one flavor until aborted; HTTP/1.1 and cleartext HTTP/2 like a real service.
async fn serve(
    flavor: Flavor,
    options: BackendOptions,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = crate::accept::next(&listener, "demo").await;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    api::respond(flavor, options.delay, request)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, server))
}
