//! The listener and the two legs. (Stub.)
use crate::config::ServeConfig;
use std::future::Future;

/// Serves until `shutdown` resolves.
pub async fn run(
    _listener: tokio::net::TcpListener,
    _config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::store::StoreError> {
    shutdown.await;
    Ok(())
}
