//! The backup side of a real `sshd` (`seahawks_tests::sshd`, whose `backup_config` is the
//! `[backup]` pointing at it): the complete backups it holds.

use nester::backup::sftp::Remote;

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
