//! `[log]` in `nester.toml`: the access log's destination and rotation.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration};

/// `[log]` in `nester.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `file` (rotated, in `access_dir`), `stdout` (one JSON line each, for journald), `off`.
    pub access: Destination,
    /// Where `file` writes `access.log` and its rotated copies; default `DATA_DIR/logs`.
    pub access_dir: Option<std::path::PathBuf>,
    /// Rotate when the file reaches this size...
    pub access_max_bytes: u64,
    /// ...or this age (humantime).
    #[serde(deserialize_with = "duration")]
    pub access_max_age: Duration,
    /// Rotated files kept (the oldest are deleted).
    pub access_keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            access: Destination::File,
            access_dir: None,
            access_max_bytes: 64 * 1024 * 1024,
            access_max_age: Duration::from_secs(86_400),
            access_keep: 14,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    File,
    Stdout,
    Off,
}

impl LogConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.access_max_bytes < 4096 {
            return Err(ConfigError::bound(
                "log.access_max_bytes",
                "must be at least 4096",
            ));
        }
        super::error::within(
            "log.access_max_age",
            self.access_max_age,
            Duration::from_secs(60),
            None,
        )
    }
}
