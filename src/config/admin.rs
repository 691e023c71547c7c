//! Settings of the admin listener and the metrics it serves.

use super::layer::Merge;
use super::value::{ADDRESS_OR_OFF, COUNT};
use super::ConfigError;
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where /metrics, /healthz and /status are served; `None` when `--admin off`.
    pub addr: Option<SocketAddr>,
    /// Distinct route label values in metrics before the `other` bucket.
    pub max_route_labels: usize,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            addr: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            max_route_labels: 200,
        }
    }
}

impl AdminConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<AdminConfig, ConfigError> {
        let d = AdminConfig::default();
        Ok(AdminConfig {
            addr: m.or("admin", &ADDRESS_OR_OFF, d.addr)?,
            max_route_labels: m.or("max-route-labels", &COUNT, d.max_route_labels)?,
        })
    }
}
