//! `[certificates]` in `nester.toml`: the lifetime of the certificates the nester issues to
//! its own listeners, renewed at two thirds of it, and how often that is checked.

use std::time::Duration;

use serde::Deserialize;

use super::error::within;
use super::{ConfigError, duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificatesConfig {
    /// Days a listener's certificate is issued for (1 to 200; renewed at two thirds).
    pub server_days: u32,
    /// How often the certificates are looked at.
    #[serde(deserialize_with = "duration")]
    pub check_every: Duration,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        Self {
            server_days: 90,
            check_every: Duration::from_secs(3600),
        }
    }
}

impl CertificatesConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=200).contains(&self.server_days) {
            return Err(ConfigError::bound(
                "certificates.server_days",
                "must be between 1 and 200 (publicly trusted certificates may not live longer)",
            ));
        }
        let minute = Duration::from_secs(60);
        within(
            "certificates.check_every",
            self.check_every,
            minute,
            Some(minute * 60 * 24),
        )
    }
}
