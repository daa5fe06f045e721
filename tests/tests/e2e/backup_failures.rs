//! Backups that fail midway, for real: the connection to the SFTP server cut while the
//! database is uploading (every server session killed), and the nester's own disk full
//! while it snapshots (its data directory on a small tmpfs). Each fails saying what
//! happened, takes nothing for a backup, leaves no work files, loses no data, and the next
//! backup goes through.

use std::path::Path;
use std::time::{Duration, Instant};

use nester::backup::push;
use nester::backup::sftp::Remote;
use nester::datadir::DataDir;
use seahawks_tests::sshd::Sshd;
use seahawks_tests::tmpfs::Tmpfs;

use crate::harness::TestNester;
use crate::sftp::names;

/// Adds `bytes` of incompressible rows to the database at `database`, a megabyte per
/// transaction (so that the write-ahead log stays small), so that a backup of it takes
/// that much room and upload time.
fn ballast(database: &Path, bytes: usize) {
    let conn = rusqlite::Connection::open(database).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute("CREATE TABLE ballast (data BLOB NOT NULL)", [])
        .unwrap();
    // xorshift: enough to defeat deflate, no dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..bytes.div_ceil(chunk.len()) {
        for word in chunk.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        conn.execute("INSERT INTO ballast (data) VALUES (?1)", [&chunk])
            .unwrap();
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// Bytes in the server's unfinished uploads (`NAME.partial` directories).
fn partial_bytes(backups: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(backups).unwrap().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".partial") {
            for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
                total += file.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

fn partials(backups: &Path) -> Vec<String> {
    std::fs::read_dir(backups)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

/// The backup work directories left in a data directory.
fn work_dirs(dir: &DataDir) -> Vec<String> {
    std::fs::read_dir(dir.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".backup-"))
        .collect()
}

fn integrity(database: &Path) -> String {
    rusqlite::Connection::open(database)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn an_upload_cut_midway_is_no_backup_and_the_next_backup_clears_it() {
    let nester = TestNester::start().await;
    let key = nester::backup::key::load_or_create(&nester.dir).unwrap();
    let sshd = Sshd::start(&nester::backup::key::authorized_keys_line(&key).unwrap());
    let config = sshd.backup_config();
    // 48 MB that do not compress: the upload lasts long enough to be cut.
    ballast(&nester.dir.database(), 48 << 20);

    let run = {
        let (dir, db, now) = (
            nester.dir.clone(),
            nester.db().clone(),
            nester.clock().now(),
        );
        let config = config.clone();
        tokio::spawn(async move { push::run(&dir, &config, &db, now).await })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while partial_bytes(&sshd.backups()) < 1 << 20 {
        assert!(
            !run.is_finished(),
            "the backup ended before a megabyte was uploaded"
        );
        assert!(Instant::now() < deadline, "no upload under way after 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at = partial_bytes(&sshd.backups());
    let killed = sshd.cut_sessions();
    assert!(killed > 0, "no session to cut");
    eprintln!("cut at {at} bytes, {killed} processes killed");
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("a cut upload fails within a minute, it does not hang")
        .unwrap()
        .expect_err("a cut upload is no backup");
    let err = format!("{err:#}");
    assert!(err.contains("on the backup server"), "{err}");

    // Nothing taken for a backup: none listed, none recorded, no work files left here.
    let remote = Remote::connect(&config, &key).await.unwrap();
    assert!(remote.list().await.unwrap().is_empty());
    assert!(nester.db().backups().await.unwrap().is_empty());
    assert!(work_dirs(&nester.dir).is_empty());
    assert_eq!(
        partials(&sshd.backups()).len(),
        1,
        "the cut upload's remains"
    );

    // The next backup goes through, verifies, and clears what the cut one left.
    nester.clock().advance(time::Duration::seconds(5));
    let pushed = push::run(&nester.dir, &config, nester.db(), nester.clock().now())
        .await
        .unwrap();
    assert_eq!(pushed.verified, Some(Ok(())));
    assert!(partials(&sshd.backups()).is_empty());
    let names = names(&remote).await;
    assert_eq!(names, vec![pushed.name]);
}

#[tokio::test]
async fn a_full_local_disk_fails_the_snapshot_and_loses_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(temp.path(), "size=24m").unwrap();
    let dir = DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[]).unwrap();
    let db = nester::db::Db::open(&dir.database()).unwrap();
    // 14 MB of data on a 24 MB disk: no room for a second copy.
    ballast(&dir.database(), 14 << 20);
    let key = nester::backup::key::load_or_create(&dir).unwrap();
    let sshd = Sshd::start(&nester::backup::key::authorized_keys_line(&key).unwrap());
    let config = sshd.backup_config();

    let now = time::OffsetDateTime::now_utc();
    let err = format!(
        "{:#}",
        push::run(&dir, &config, &db, now).await.unwrap_err()
    );
    assert!(err.contains("is the disk full?"), "{err}");
    assert!(work_dirs(&dir).is_empty(), "{:?}", work_dirs(&dir));
    let remote = Remote::connect(&config, &key).await.unwrap();
    assert!(remote.list().await.unwrap().is_empty());
    assert!(partials(&sshd.backups()).is_empty());

    // The database lost nothing and still takes writes.
    assert_eq!(integrity(&dir.database()), "ok");
    db.record_backup("written after the failure".into(), 1)
        .await
        .unwrap();
    assert_eq!(db.backups().await.unwrap().len(), 1);
    db.forget_backup("written after the failure".into())
        .await
        .unwrap();

    // With room again, the backup goes through.
    disk.resize("96m").unwrap();
    let pushed = push::run(&dir, &config, &db, now + time::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pushed.verified, Some(Ok(())));
    assert!(work_dirs(&dir).is_empty());
    drop(db);
}
