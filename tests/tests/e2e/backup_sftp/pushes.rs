//! Backups pushed to a real SFTP server while reports flow: verified and restored whole; the host
//! key pinned; failed uploads never backups; corruption caught.

use std::sync::atomic::{AtomicBool, Ordering};

use nester::backup::push;
use nester::backup::sftp::Remote;
use seahawks_tests::sshd::{Sshd, USER};
use seahawks_tests::tmpfs::Tmpfs;

use super::*;

#[tokio::test]
async fn a_backup_made_while_reports_flow_is_pushed_verified_and_restores_whole() {
    let (nester, sshd, key) = nester_and_server().await;
    let config = sshd.backup_config();
    let (probe, mut sim) = nester.reporting_probe().await;
    // The sentinel: stored just before the backup starts.
    let sentinel = sim.report(nester.clock().now(), Vec::new());
    nester.deliver(&probe, &sentinel).await;

    let done = AtomicBool::new(false);
    let writer = async {
        let mut written = 0u32;
        while !done.load(Ordering::Relaxed) && written < 100_000 {
            let report = sim.report(nester.clock().now(), Vec::new());
            nester.deliver(&probe, &report).await;
            written += 1;
        }
        written
    };
    let backup = async {
        let pushed = push::run(&nester.dir, &config, nester.db(), nester.clock().now()).await;
        done.store(true, Ordering::Relaxed);
        pushed
    };
    let (written, pushed) = tokio::join!(writer, backup);
    let pushed = pushed.unwrap();
    assert!(written > 0, "reports kept arriving during the backup");
    assert_eq!(pushed.verified, Some(Ok(())));
    assert!(
        sshd.backups()
            .join(&pushed.name)
            .join("manifest.json")
            .exists()
    );

    // Recorded, and listed by the server.
    let record = nester
        .db()
        .backup(pushed.name.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(record.verified_ms.is_some() && record.verify_error.is_none());
    let remote = Remote::connect(&config, &key).await.unwrap();
    let listed = remote.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, pushed.name);
    assert_eq!(listed[0].bytes, pushed.bytes);

    // Restored (on "another machine": only the backup key and the server).
    let temp = tempfile::tempdir().unwrap();
    let into = temp.path().join("restored");
    push::restore(&remote, &pushed.name, &into).await.unwrap();
    let db = rusqlite::Connection::open(into.join("nester.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let found: i64 = db
        .query_row(
            "SELECT count(*) FROM reports WHERE report_id = ?",
            [sentinel.report_id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, 1, "the sentinel report is in the backup");
    // Never over a live data directory.
    let err = push::restore(&remote, &pushed.name, nester.dir.root())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty"), "{err}");
}

#[tokio::test]
async fn the_host_key_is_pinned_and_the_nesters_key_required() {
    let (nester, sshd, key) = nester_and_server().await;
    let good = sshd.backup_config();
    // The fingerprint pins as well as the key.
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(sshd.host_key().as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let fingerprint = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let mut by_print = good.clone();
    by_print.host_key = fingerprint.parse().unwrap();
    Remote::connect(&by_print, &key).await.unwrap();

    // Another host key (a server reinstalled, or someone in between): refused, both named.
    let other = Sshd::start("");
    let mut wrong = good.clone();
    wrong.host_key = other.host_key().parse().unwrap();
    let err = format!("{:#}", Remote::connect(&wrong, &key).await.err().unwrap());
    assert!(
        err.contains("not the pinned") && err.contains("intercepting"),
        "{err}"
    );
    // Nothing was written.
    assert_eq!(std::fs::read_dir(sshd.backups()).unwrap().count(), 0);

    // The nester's key not installed.
    sshd.set_authorized_keys("");
    let err = format!("{:#}", Remote::connect(&good, &key).await.err().unwrap());
    assert!(err.contains("refused the nester's backup key"), "{err}");

    // Nobody listening.
    let mut closed = good.clone();
    closed.server = format!("127.0.0.1:{}", crate::harness::closed_port());
    let err = format!("{:#}", Remote::connect(&closed, &key).await.err().unwrap());
    assert!(err.contains("cannot reach the backup server"), "{err}");

    // No pin at all is a configuration error.
    let text = format!(
        "data_dir = \"/tmp/x\"\n[ingest]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [backup]\nserver = \"{}\"\nuser = \"{USER}\"\n",
        sshd.server()
    );
    let err = nester::config::Config::parse(&text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("host_key"), "{err}");
    drop(nester);
}

#[tokio::test]
async fn failed_uploads_are_never_backups_and_corruption_is_caught() {
    let (nester, sshd, key) = nester_and_server().await;
    let config = sshd.backup_config();
    let first = push::run(&nester.dir, &config, nester.db(), nester.clock().now())
        .await
        .unwrap();
    assert_eq!(first.verified, Some(Ok(())));

    // An upload cut short leaves a `.partial` directory: never listed.
    let cut = sshd
        .backups()
        .join("seahawks-backup-2026-01-01T000000Z.partial");
    std::fs::create_dir(&cut).unwrap();
    std::fs::write(cut.join("nester.db.gz"), b"half").unwrap();
    run_chown(&cut);
    let remote = Remote::connect(&config, &key).await.unwrap();
    let names = names(&remote).await;
    assert_eq!(names, vec![first.name.clone()]);

    // The server's disk full: the upload fails saying so, and no new backup appears.
    let full = sshd.backups();
    let disk = Tmpfs::mount(&full, "size=16k").unwrap();
    run_chown(&full);
    nester.clock().advance(time::Duration::seconds(5));
    let err = format!(
        "{:#}",
        push::run(&nester.dir, &config, nester.db(), nester.clock().now())
            .await
            .unwrap_err()
    );
    let listed = Remote::connect(&config, &key)
        .await
        .unwrap()
        .list()
        .await
        .unwrap();
    drop(disk);
    assert!(err.contains("disk full"), "{err}");
    assert!(
        listed.is_empty(),
        "nothing complete on the full disk: {listed:?}"
    );

    // One byte of the stored copy changed: verify says so, and it is recorded.
    let database = sshd.backups().join(&first.name).join("nester.db.gz");
    let mut bytes = std::fs::read(&database).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&database, bytes).unwrap();
    let err = format!(
        "{:#}",
        push::verify(&remote, &first.name, &nester.dir, nester.db())
            .await
            .unwrap_err()
    );
    assert!(err.contains("nester.db.gz"), "{err}");
    let record = nester
        .db()
        .backup(first.name.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(
        record
            .verify_error
            .is_some_and(|e| e.contains("nester.db.gz"))
    );
}
