//! `[backup]` in `nester.toml`: where backups are pushed (SFTP, the server's host key pinned),
//! how often, and which copies the server keeps. Without the section the nester makes no
//! backups by itself (`nester backup create` still works).

use std::time::Duration;

use serde::Deserialize;

use super::error::within;
use super::{ConfigError, duration};
use crate::ssh::host_key::HostKeyPin;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The SFTP server, `host:port` (port 22 when left out).
    pub server: String,
    /// The account the nester logs in as, with its own backup key (`nester backup key`).
    pub user: String,
    /// The directory backups go to, as the server sees it (in the chroot, if any).
    #[serde(default = "default_dir")]
    pub dir: String,
    /// The server's host key: a `known_hosts` line, a public key (`ssh-ed25519 AAAA...`), its
    /// `SHA256:...` fingerprint (`ssh-keygen -lf`), or an `@cert-authority` line. Required:
    /// there is no way to skip the check.
    pub host_key: HostKeyPin,
    /// How often a backup is made and pushed (humantime).
    #[serde(default = "default_every", deserialize_with = "duration")]
    pub every: Duration,
    /// Retention on the server, applied after each successful upload: the newest `keep_last`,
    /// plus the newest of each of the last `keep_daily` days and `keep_weekly` weeks.
    #[serde(default = "default_keep_last")]
    pub keep_last: u32,
    #[serde(default = "default_keep_daily")]
    pub keep_daily: u32,
    #[serde(default = "default_keep_weekly")]
    pub keep_weekly: u32,
    /// The account's `authorized_keys` file as its SFTP session sees it (e.g.
    /// `/.ssh/authorized_keys` in a chroot), for the nester to rotate its own key there:
    /// without it, the key is never rotated automatically.
    #[serde(default)]
    pub authorized_keys: Option<String>,
    /// How often the backup key is replaced (with `authorized_keys`).
    #[serde(default = "default_key_rotation", deserialize_with = "duration")]
    pub key_rotation: Duration,
    /// Download and verify each backup right after pushing it.
    #[serde(default = "default_verify")]
    pub verify: bool,
}

fn default_dir() -> String {
    "seahawks".into()
}
fn default_every() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_key_rotation() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}
fn default_keep_last() -> u32 {
    7
}
fn default_keep_daily() -> u32 {
    14
}
fn default_keep_weekly() -> u32 {
    8
}
fn default_verify() -> bool {
    true
}

impl BackupConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let minute = Duration::from_secs(60);
        within("backup.every", self.every, minute, None)?;
        within("backup.key_rotation", self.key_rotation, minute * 60, None)
    }

    /// `(host, port)` of the server.
    pub fn address(&self) -> (String, u16) {
        match self.server.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() && !host.ends_with(':') => (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port.parse().unwrap_or(22),
            ),
            _ => (self.server.clone(), 22),
        }
    }
}
