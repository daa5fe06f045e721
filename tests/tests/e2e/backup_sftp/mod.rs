//! Backups pushed to a real OpenSSH server (chroot'd `internal-sftp`, its own host key): made
//! while reports keep arriving, verified after the push, restored whole; the host key pinned
//! (another key refused), the nester's key required, a cut or failed upload never taken for a
//! backup, a corrupted copy caught by verify, and retention keeping exactly its policy.

mod command;
mod pushes;
mod retention;
mod schedule;

use std::time::Duration;

use nester::backup::sftp::Remote;
use nester::config::BackupConfig;
use seahawks_tests::sshd::{AUTHORIZED_KEYS, DIR, Sshd, USER};

use crate::harness::TestNester;

pub(crate) fn config(sshd: &Sshd) -> BackupConfig {
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

/// A nester with its backup key installed on a fresh sshd.
async fn nester_and_server() -> (TestNester, Sshd, nester::backup::key::BackupKey) {
    let nester = TestNester::start().await;
    let key = nester::backup::key::load_or_create(&nester.dir).unwrap();
    let sshd = Sshd::start(&nester::backup::key::authorized_keys_line(&key).unwrap());
    (nester, sshd, key)
}

/// The names of the complete backups on the server.
pub(crate) async fn names(remote: &Remote) -> Vec<String> {
    remote
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}

fn run_chown(path: &std::path::Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", USER, path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}
