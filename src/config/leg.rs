//! Settings of one upstream leg (the primary or the secondary): where it is, how long it
//! may take, how it is connected to, which Host it is sent.

use super::layer::Merge;
use super::value::{DURATION, PATH, SWITCH};
use super::ConfigError;
use crate::upstream::{Connect, Trust};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LegConfig {
    pub url: url::Url,
    /// The primary's bounds its response head (past it the client gets 504); the
    /// secondary's its whole response.
    pub timeout: Duration,
    pub connect: Connect,
    /// Send the client's Host header instead of the upstream's authority.
    pub preserve_host: bool,
}

/// `answer-from`: which leg's response the clients get; the other one is the shadow.
/// After a cutover the secondary answers and the primary is compared against it, so
/// rolling back is this one setting.
pub(super) const ANSWER_FROM: super::value::Kind<crate::exchange::Leg> = super::value::Kind {
    parse: |text| match text.trim() {
        "primary" => Ok(crate::exchange::Leg::Primary),
        "secondary" => Ok(crate::exchange::Leg::Secondary),
        other => Err(format!("{other:?}: `primary` or `secondary`")),
    },
    spell: |leg| super::value::quoted(leg.as_str()),
};

/// Which of the two legs a setting key belongs to.
#[derive(Clone, Copy)]
pub(super) enum Side {
    Primary,
    Secondary,
}

impl LegConfig {
    /// A leg with default settings; for tests and embedding.
    pub fn new(url: url::Url) -> LegConfig {
        LegConfig {
            url,
            timeout: Duration::from_secs(5),
            connect: Connect::default(),
            preserve_host: false,
        }
    }

    pub(super) fn merge(
        m: &mut Merge<'_>,
        side: Side,
        url: url::Url,
    ) -> Result<LegConfig, ConfigError> {
        let (timeout_key, default_timeout) = match side {
            Side::Primary => ("primary-timeout", Duration::from_secs(30)),
            Side::Secondary => ("secondary-timeout", Duration::from_secs(5)),
        };
        let trust = match side {
            // The primary is trusted with the system's roots alone.
            Side::Primary => Trust::default(),
            Side::Secondary => Trust {
                extra_ca: m.optional("secondary-ca", &PATH)?,
                insecure: m.or("insecure-secondary", &SWITCH, false)?,
            },
        };
        let connect_timeout = m.optional("connect-timeout", &DURATION)?;
        if connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(m.invalid("connect-timeout", "must be more than 0".into()));
        }
        Ok(LegConfig {
            url,
            timeout: m.or(timeout_key, &DURATION, default_timeout)?,
            connect: Connect {
                trust,
                timeout: connect_timeout,
            },
            preserve_host: m.or("preserve-host", &SWITCH, false)?,
        })
    }
}
