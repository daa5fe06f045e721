//! Backups pushed to a real OpenSSH server (chroot'd `internal-sftp`, its own host key): made
//! while reports keep arriving, verified after the push, restored whole; the host key pinned
//! (another key refused), the nester's key required, a cut or failed upload never taken for a
//! backup, a corrupted copy caught by verify, and retention keeping exactly its policy.

mod command;
mod pushes;
mod retention;
mod schedule;

use seahawks_tests::sshd::{Sshd, USER};

use crate::harness::TestNester;
use crate::sftp::names;

/// A nester with its backup key installed on a fresh sshd.
async fn nester_and_server() -> (TestNester, Sshd, nester::backup::key::BackupKey) {
    let nester = TestNester::start().await;
    let key = nester::backup::key::load_or_create(&nester.dir).unwrap();
    let sshd = Sshd::start(&nester::backup::key::authorized_keys_line(&key).unwrap());
    (nester, sshd, key)
}

fn run_chown(path: &std::path::Path) {
    let status = std::process::Command::new("chown")
        .args(["-R", USER, path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}
