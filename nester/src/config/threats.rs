//! `[threats]` in `nester.toml`: what detection counts, how long bans last, who is never
//! banned.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::{ConfigError, duration};

/// `[threats]` in `nester.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreatConfig {
    /// Networks never banned, automatically or by hand: loopback and your own.
    pub allow: Vec<IpNet>,
    /// Reverse proxies in front of the web listener whose `X-Forwarded-For` is believed (from
    /// anyone else it is ignored). Never banned themselves: their clients are.
    pub trusted_proxies: Vec<IpNet>,
    /// IPv6 clients are banned by network of this length (a host owns a /64).
    pub ipv6_prefix: u8,
    /// The window each rule counts over.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
    /// First ban; each repeat offence doubles it, up to `ban_max`.
    #[serde(deserialize_with = "duration")]
    pub ban: Duration,
    #[serde(deserialize_with = "duration")]
    pub ban_max: Duration,
    /// Thresholds within the window, per client prefix.
    pub sign_in_failures: u32,
    pub tls_failures: u32,
    pub not_found: u32,
    pub unauthorized: u32,
    /// Uses of a revoked probe, bad report signatures or bad enrollment tokens (each its own
    /// rule; every one also raises an alert).
    pub ingest_refusals: u32,
    /// A banned prefix refused this many times within a second is dropped by the kernel (a
    /// socket filter on the listeners) until its ban ends; 0 keeps every refusal in the accept
    /// loop (and in the access log).
    pub kernel_after: u32,
    /// A security alert nothing raised again for this long is resolved.
    #[serde(deserialize_with = "duration")]
    pub alert_quiet: Duration,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                "127.0.0.0/8"
                    .parse()
                    .unwrap_or(IpNet::V4(Default::default())),
                "::1/128".parse().unwrap_or(IpNet::V6(Default::default())),
            ],
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
            window: Duration::from_secs(600),
            ban: Duration::from_secs(600),
            ban_max: Duration::from_secs(7 * 86_400),
            sign_in_failures: 5,
            tls_failures: 20,
            not_found: 30,
            unauthorized: 30,
            ingest_refusals: 10,
            kernel_after: 50,
            alert_quiet: Duration::from_secs(3600),
        }
    }
}

impl ThreatConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(32..=128).contains(&self.ipv6_prefix) {
            return Err(ConfigError::bound(
                "threats.ipv6_prefix",
                "must be between 32 and 128",
            ));
        }
        super::error::within("threats.window", self.window, Duration::from_secs(1), None)?;
        super::error::within(
            "threats.ban",
            self.ban,
            Duration::from_secs(1),
            Some(self.ban_max),
        )?;
        for (key, n) in [
            ("threats.sign_in_failures", self.sign_in_failures),
            ("threats.tls_failures", self.tls_failures),
            ("threats.not_found", self.not_found),
            ("threats.unauthorized", self.unauthorized),
            ("threats.ingest_refusals", self.ingest_refusals),
        ] {
            if n < 1 {
                return Err(ConfigError::bound(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
