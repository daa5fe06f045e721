//! Backups made while the nester serves and ingests: the snapshot is consistent (a sentinel
//! written just before is in it, the row counts match, the audit chain verifies to its
//! recorded head), a restored data directory serves again, and every tampering is named:
//! a changed byte, a changed manifest, a file added, another nester's signature. A restore
//! never writes over an existing directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nester::backup;
use nester::datadir::DataDir;
use nester::db::Role;

use crate::harness::TestNester;
use crate::process::{NesterFiles, run, stderr};

#[tokio::test]
async fn a_backup_made_during_ingest_verifies_and_restores_every_row() {
    let nester = TestNester::start().await;
    let (probe, mut sim) = nester.reporting_probe().await;
    // Reports keep arriving while the backup is made.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    nester.add_user("sentinel", Role::Noc).await;
    let writer = {
        let (stop, delivered) = (stop.clone(), delivered.clone());
        let signer = probe.signer();
        let client = probe.client_cert();
        let (addr, ca) = (nester.ingest, nester.ca.clone());
        let clock = nester.clock().clone();
        tokio::spawn(async move {
            let mut conn = crate::client::Connection::open(addr, &ca, Some(&client))
                .await
                .unwrap();
            while !stop.load(Ordering::SeqCst) {
                let jws = signer
                    .sign_report(&sim.report(clock.now(), Vec::new()))
                    .unwrap();
                let r = conn
                    .send(
                        hyper::Method::POST,
                        shared::protocol::REPORTS_PATH,
                        &[("content-type", shared::protocol::JWS_MEDIA_TYPE)],
                        jws.into_bytes(),
                    )
                    .await
                    .unwrap();
                assert!(r.status.is_success(), "{}", r.status);
                delivered.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while delivered.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = DataDir::new(nester.dir.root());
    let (d, o) = (dir.clone(), out.path().to_path_buf());
    let now = nester.clock().now();
    let made = tokio::task::spawn_blocking(move || backup::create(&d, &o, now))
        .await
        .unwrap()
        .unwrap();
    let during = delivered.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(delivered.load(Ordering::SeqCst) > 20, "ingest went on");

    let key = nester::audit::CheckpointKey::load(&dir).unwrap().public();
    let work = tempfile::tempdir().unwrap();
    let verified = backup::verify(&made, Some(&key), work.path())
        .await
        .unwrap();
    let m = &verified.manifest;
    assert!(
        m.tables["reports"] >= 20 && m.tables["reports"] <= during as i64 + 2,
        "{:?}",
        m.tables
    );
    assert!(m.audit_seq > 0);

    // Restored: a data directory that serves, with the sentinel and every row counted.
    let restored = out.path().join("restored");
    backup::restore(&made, &restored).await.unwrap();
    let db = rusqlite::Connection::open(DataDir::new(&restored).database()).unwrap();
    let sentinel: i64 = db
        .query_row(
            "SELECT count(*) FROM users WHERE username = 'sentinel'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sentinel, 1);
    let reports: i64 = db
        .query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reports, m.tables["reports"]);
    drop(db);
    let config = nester::config::Config::loopback(&restored);
    nester::server::Server::open(&config).expect("the restored data directory serves");
    let again = backup::restore(&made, &restored).await.unwrap_err();
    assert!(format!("{again:#}").contains("not empty"), "{again:#}");

    // Tampering, each named.
    let copy = |name: &str| {
        let to = out.path().join(name);
        std::process::Command::new("cp")
            .args(["-a"])
            .arg(&made)
            .arg(&to)
            .status()
            .unwrap();
        to
    };
    let check = |b: std::path::PathBuf, key: Option<String>| async move {
        let work = tempfile::tempdir().unwrap();
        format!(
            "{:#}",
            backup::verify(&b, key.as_deref(), work.path())
                .await
                .unwrap_err()
        )
    };
    let flipped = copy("flipped");
    let db_gz = flipped.join("nester.db.gz");
    let mut bytes = std::fs::read(&db_gz).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&db_gz, bytes).unwrap();
    let e = check(flipped, None).await;
    assert!(e.contains("nester.db.gz") && e.contains("SHA-256"), "{e}");

    let edited = copy("edited");
    let manifest = edited.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let changed = text.replacen("\"reports\": ", "\"reports\": 1", 1);
    assert_ne!(text, changed);
    std::fs::write(&manifest, changed).unwrap();
    let e = check(edited, None).await;
    assert!(e.contains("signature"), "{e}");

    let extra = copy("extra");
    std::fs::write(extra.join("pki/evil.key"), b"x").unwrap();
    let e = check(extra, None).await;
    assert!(e.contains("not the ones its manifest lists"), "{e}");

    let e = check(made.clone(), Some("00".repeat(32))).await;
    assert!(e.contains("another nester's key"), "{e}");
}

#[test]
fn the_backup_commands_create_verify_and_restore() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let to = temp.path().join("backups");
    let out = run(
        "nester",
        &[
            "backup",
            "create",
            "--to",
            to.to_str().unwrap(),
            "--config",
            files.config_arg(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let path = text.trim().strip_prefix("backup: ").unwrap().to_string();
    let out = run(
        "nester",
        &["backup", "verify", &path, "--config", files.config_arg()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified"));
    let into = temp.path().join("restored");
    let out = run(
        "nester",
        &["backup", "restore", &path, "--into", into.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(DataDir::new(&into).is_initialised());
    let out = run(
        "nester",
        &[
            "backup",
            "verify",
            "/nonexistent",
            "--config",
            files.config_arg(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("manifest.json"), "{}", stderr(&out));
}
