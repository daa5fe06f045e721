//! `[ingest]` in `nester.toml`: the mTLS listener harvesters enroll at and deliver to.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub listen: SocketAddr,
    /// The `host:port` harvesters dial, written into enrollment tokens. Default: `listen`,
    /// with this machine's host name when `listen` is a wildcard address.
    pub public_address: Option<String>,
    /// Largest signed report accepted, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of probe certificates, in days; harvesters renew at two thirds of it.
    pub probe_certificate_days: u32,
    /// Enrollment requests allowed per client IP and minute.
    pub enroll_per_minute: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9443)),
            public_address: None,
            max_body_bytes: 4 * 1024 * 1024,
            probe_certificate_days: 30,
            enroll_per_minute: 10,
        }
    }
}

impl IngestConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::bound(
                "ingest.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if !(1..=397).contains(&self.probe_certificate_days) {
            return Err(ConfigError::bound(
                "ingest.probe_certificate_days",
                "must be between 1 and 397",
            ));
        }
        if self.enroll_per_minute < 1 {
            return Err(ConfigError::bound(
                "ingest.enroll_per_minute",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
