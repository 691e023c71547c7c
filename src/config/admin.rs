//! Settings of the admin listener and the metrics it serves.

use super::layer::Merge;
use super::value::{ADDRESS_OR_OFF, COUNT};
use super::ConfigError;
use std::net::SocketAddr;

/// `admin-token`: a secret, so `config check` and the digest spell it masked.
const TOKEN: super::value::Kind<AdminToken> = super::value::Kind {
    parse: |text| match text.trim() {
        "" => Err("an empty token".into()),
        t if t.len() < 16 => Err("shorter than 16 characters: too easy to guess".into()),
        t if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Err("a token is one word of printable characters".into())
        }
        t => Ok(AdminToken(t.to_string())),
    },
    spell: |_| super::value::quoted(crate::redact::url::MASK),
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where /metrics, /healthz and /status are served; `None` when `--admin off`.
    pub addr: Option<SocketAddr>,
    /// Distinct route label values in metrics before the `other` bucket.
    pub max_route_labels: usize,
    /// The bearer token the mutating endpoints (`/shadow/*`) require once set.
    pub token: Option<AdminToken>,
}

/// The admin token: never printed, not even by `{:?}` of the settings.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

/// The same rules as `--admin-token`: one word of at least 16 printable characters.
impl std::str::FromStr for AdminToken {
    type Err = String;

    fn from_str(text: &str) -> Result<AdminToken, String> {
        (TOKEN.parse)(text)
    }
}

impl AdminToken {
    /// The token itself, for what is derived from it (the dashboard's session cookie);
    /// never printed.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::redact::url::MASK)
    }
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            addr: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            max_route_labels: 200,
            token: None,
        }
    }
}

impl AdminConfig {
    pub(super) fn merge(m: &mut Merge<'_>) -> Result<AdminConfig, ConfigError> {
        let d = AdminConfig::default();
        let addr = m.or("admin", &ADDRESS_OR_OFF, d.addr)?;
        let token = m.optional("admin-token", &TOKEN)?;
        // Anyone who reaches an admin listener off this host could pause the shadow or
        // change its share: such a listener needs a token. Checked here, before anything
        // binds.
        if let Some(addr) = addr {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(m.invalid(
                    "admin",
                    format!("{addr} is reachable from other hosts and its /shadow endpoints change the shadow; give --admin-token (or SHADOWDIFF_ADMIN_TOKEN), or listen on 127.0.0.1"),
                ));
            }
        }
        Ok(AdminConfig {
            addr,
            max_route_labels: m.or("max-route-labels", &COUNT, d.max_route_labels)?,
            token,
        })
    }
}
