//! `[retention]` in `nester.toml`: how long reports and WAN samples stay at full detail.

use std::time::Duration;

use serde::Deserialize;

use super::error::within;
use super::{ConfigError, duration};

/// How long data is kept at full detail (humantime durations).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Signed reports older than this are deleted (each probe's latest stays).
    #[serde(deserialize_with = "duration")]
    pub reports: Duration,
    /// WAN samples older than this are rolled up into hours.
    #[serde(deserialize_with = "duration")]
    pub wan_raw: Duration,
    /// Hourly WAN rollups older than this are rolled up into days, kept for ever.
    #[serde(deserialize_with = "duration")]
    pub wan_hourly: Duration,
    /// How often the retention pass runs.
    #[serde(deserialize_with = "duration")]
    pub every: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        Self {
            reports: days(14),
            wan_raw: days(7),
            wan_hourly: days(90),
            every: Duration::from_secs(3600),
        }
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> anyhow::Result<crate::db::Policy> {
        Ok(crate::db::Policy {
            reports: self.reports.try_into()?,
            wan_raw: self.wan_raw.try_into()?,
            wan_hourly: self.wan_hourly.try_into()?,
        })
    }
}

impl RetentionConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        within("retention.reports", self.reports, DAY, None)?;
        if self.wan_raw < HOUR || self.wan_raw > self.wan_hourly {
            return Err(ConfigError::bound(
                "retention.wan_raw",
                "must be at least 1h and at most `retention.wan_hourly`",
            ));
        }
        within("retention.every", self.every, MINUTE, None)
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
