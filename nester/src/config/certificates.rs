//! `[certificates]` in `nester.toml`: the lifetime of the certificates the nester issues to
//! its own listeners, renewed at two thirds of it, and how often that is checked.

use std::time::Duration;

use serde::Deserialize;

use super::duration;

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
