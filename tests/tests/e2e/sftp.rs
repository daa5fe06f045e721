//! The backup side of a real `sshd` (`seahawks_tests::sshd`): a `[backup]` section pointing
//! at it, and the complete backups it holds.

use std::time::Duration;

use nester::backup::sftp::Remote;
use nester::config::BackupConfig;
use seahawks_tests::sshd::{AUTHORIZED_KEYS, DIR, Sshd, USER};

/// `[backup]` for `sshd`, its host key pinned, with the shipped defaults.
pub fn config(sshd: &Sshd) -> BackupConfig {
    BackupConfig {
        server: sshd.server(),
        user: USER.into(),
        dir: DIR.into(),
        host_key: sshd.host_key().parse().unwrap(),
        every: Duration::from_secs(86_400),
        keep_last: 7,
        keep_daily: 14,
        keep_weekly: 8,
        authorized_keys: Some(AUTHORIZED_KEYS.into()),
        key_rotation: Duration::from_secs(90 * 86_400),
        verify: true,
    }
}

/// The names of the complete backups on the server.
pub async fn names(remote: &Remote) -> Vec<String> {
    remote
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}
