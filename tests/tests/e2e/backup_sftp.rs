//! Backups pushed to a real OpenSSH server (chroot'd `internal-sftp`, its own host key): made
//! while reports keep arriving, verified after the push, restored whole; the host key pinned
//! (another key refused), the nester's key required, a cut or failed upload never taken for a
//! backup, a corrupted copy caught by verify, and retention keeping exactly its policy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nester::backup::push;
use nester::backup::sftp::Remote;
use nester::config::BackupConfig;
use seahawks_tests::sshd::{AUTHORIZED_KEYS, DIR, Sshd, USER};

use crate::harness::TestNester;
use crate::process::{run, stderr};
use seahawks_tests::tmpfs::Tmpfs;

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

#[tokio::test]
async fn a_backup_made_while_reports_flow_is_pushed_verified_and_restores_whole() {
    let (nester, sshd, key) = nester_and_server().await;
    let config = config(&sshd);
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
    let good = config(&sshd);
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
    let config = config(&sshd);
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

#[tokio::test]
async fn retention_keeps_exactly_what_the_policy_says() {
    let (nester, sshd, _key) = nester_and_server().await;
    // What the server holds already: two backups a day from 1 to 20 November 2026.
    for day in 1..=20 {
        for hour in ["01", "13"] {
            let old = sshd
                .backups()
                .join(format!("seahawks-backup-2026-11-{day:02}T{hour}0000Z"));
            std::fs::create_dir_all(old.join("pki")).unwrap();
            std::fs::write(old.join("manifest.json"), b"{}").unwrap();
            std::fs::write(old.join("pki/ca.pem"), b"x").unwrap();
        }
    }
    run_chown(&sshd.backups());
    let mut config = config(&sshd);
    (config.keep_last, config.keep_daily, config.keep_weekly) = (2, 3, 2);
    config.verify = false;
    let now = time::macros::datetime!(2026-12-02 10:00 UTC);
    let pushed = push::run(&nester.dir, &config, nester.db(), now)
        .await
        .unwrap();
    let mut left: Vec<String> = std::fs::read_dir(sshd.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    // Last 2: the new one and the 20th's 13:00; daily 3: those days and the 19th's newest;
    // weekly 2: this week's (the new one) and week 47's (the 20th's).
    assert_eq!(
        left,
        [
            "seahawks-backup-2026-11-19T130000Z",
            "seahawks-backup-2026-11-20T130000Z",
            pushed.name.as_str(),
        ]
    );
    assert_eq!(pushed.deleted.len(), 40 - 2);
    assert_eq!(pushed.name, "seahawks-backup-2026-12-02T100000.000Z");
}

/// `nester backup ARGS --config CONFIG`: success, and stdout then stderr.
fn backup_command(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().unwrap()]);
    let out = run("nester", &all);
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)),
    )
}

/// The commands, through the binary: `key`, `run`, `list`, `verify`, `restore NAME`.
#[tokio::test]
async fn nester_backup_runs_lists_verifies_and_restores_through_the_binary() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    nester::cli::init::init(&nester::datadir::DataDir::new(&data), &[]).unwrap();
    let sshd = Sshd::start("");
    let config = temp.path().join("nester.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[ingest]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
             [backup]\nserver = \"{}\"\nuser = \"{USER}\"\ndir = \"{DIR}\"\nhost_key = \"{}\"\n\
             authorized_keys = \"{AUTHORIZED_KEYS}\"\n",
            sshd.server(),
            sshd.host_key()
        ),
    )
    .unwrap();
    let (cfg, into) = (config.clone(), temp.path().join("restored"));
    let (refused, key) = tokio::task::spawn_blocking(move || {
        (
            backup_command(&cfg, &["run"]),
            backup_command(&cfg, &["key"]),
        )
    })
    .await
    .unwrap();
    assert!(
        !refused.0 && refused.1.contains("nester backup key"),
        "{}",
        refused.1
    );
    assert!(key.0, "{}", key.1);
    let line = key.1.lines().next().unwrap().to_string();
    assert!(line.starts_with("restrict ssh-ed25519 "), "{line}");
    sshd.set_authorized_keys(&format!("{line}\n"));

    let target = into.clone();
    let steps = tokio::task::spawn_blocking(move || {
        let pushed = backup_command(&config, &["run"]);
        let name = pushed
            .1
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        [
            pushed,
            backup_command(&config, &["list"]),
            backup_command(&config, &["verify"]),
            backup_command(
                &config,
                &["restore", &name, "--into", target.to_str().unwrap()],
            ),
            backup_command(&config, &["rotate-key"]),
            backup_command(&config, &["verify"]),
        ]
    })
    .await
    .unwrap();
    let [pushed, listed, verified, restored, rotated, again] = steps;
    assert!(
        pushed.0 && pushed.1.contains("verified seahawks-backup-"),
        "{}",
        pushed.1
    );
    assert!(listed.0 && listed.1.contains("ok, "), "{}", listed.1);
    assert!(
        verified.0 && verified.1.contains("verified"),
        "{}",
        verified.1
    );
    assert!(restored.0, "{}", restored.1);
    assert!(nester::datadir::DataDir::new(&into).is_initialised());
    assert!(rotated.0 && rotated.1.contains("SHA256:"), "{}", rotated.1);
    assert!(again.0, "the new key works: {}", again.1);
    assert!(
        !sshd.authorized_keys().contains(&line),
        "the old key is gone"
    );
}

/// `nester serve` with `[backup]`: the first backup at once; a failing one raises
/// `backup.failing` (critical: there is no good backup yet), retried until it works, which
/// resolves the alert.
#[tokio::test]
async fn scheduled_backups_raise_an_alert_while_they_fail_and_resolve_it() {
    let sshd = Sshd::start("");
    let mut backup = config(&sshd);
    backup.every = Duration::from_secs(2);
    let nester = TestNester::start_with(|c| c.backup = Some(backup.clone())).await;
    let subject = format!("backup:{}", sshd.server());
    let (severity, state, _) = crate::harness::eventually_async("the failure alerted", || {
        std::future::ready(nester.open_alert("backup.failing", &subject))
    })
    .await;
    assert_eq!((severity.as_str(), state.as_str()), ("critical", "firing"));
    // The Backups page says so.
    nester
        .add_user("backup-admin", nester::db::Role::Admin)
        .await;
    let id = nester.user_id("backup-admin").await;
    let admin = crate::web_auth::session_for(&nester, id, nester::db::Stage::Full).await;
    let html = backups_page(&nester, &admin).await;
    assert!(
        html.contains("id=\"failing\"")
            && html.contains("refused the nester")
            && html.contains("<dd id=\"last-good\">never</dd>"),
        "{html}"
    );
    // The operator installs the key the nester made.
    let key = nester::backup::key::load(&nester.dir.backup_key()).unwrap();
    sshd.set_authorized_keys(&nester::backup::key::authorized_keys_line(&key).unwrap());
    let nester = &nester;
    crate::harness::eventually_async("a verified backup, the alert resolved", || {
        let done = nester.open_alert("backup.failing", &subject).is_none();
        async move {
            let verified = nester
                .db()
                .backups()
                .await
                .unwrap()
                .iter()
                .any(|b| b.verified_ms.is_some() && b.verify_error.is_none());
            (done && verified).then_some(())
        }
    })
    .await;
    let html = backups_page(nester, &admin).await;
    assert!(
        !html.contains("id=\"failing\"")
            && html.contains("ok, ")
            && !html.contains("<dd id=\"last-verified\">never</dd>"),
        "{html}"
    );
}

async fn backups_page(nester: &TestNester, admin: &crate::client::WebSession) -> String {
    let page = nester
        .as_session(admin, hyper::Method::GET, "/admin/backups", &[], vec![])
        .await;
    String::from_utf8_lossy(&page.body).to_string()
}

/// The backup key replaced through the old key's session: backups go on with the new key, the
/// old one no longer logs in, and the rotation is audited.
#[tokio::test]
async fn rotating_the_backup_key_keeps_backups_working_and_locks_the_old_key_out() {
    let (nester, sshd, old) = nester_and_server().await;
    let config = config(&sshd);
    sshd.set_authorized_keys(&format!(
        "# the operator's note\n{}\n",
        nester::backup::key::authorized_keys_line(&old).unwrap()
    ));
    push::run(&nester.dir, &config, nester.db(), nester.clock().now())
        .await
        .unwrap();
    let actor = nester::db::audit::Actor::cli();
    let fingerprint = nester::backup::rotate_key::rotate(&nester.dir, &config, nester.db(), actor)
        .await
        .unwrap();
    let new = nester::backup::key::load(&nester.dir.backup_key()).unwrap();
    assert_ne!(new.public_key(), old.public_key());
    let line = nester::backup::key::authorized_keys_line(&new).unwrap();
    assert_eq!(
        sshd.authorized_keys(),
        format!("# the operator's note\n{line}\n")
    );
    let err = format!("{:#}", Remote::connect(&config, &old).await.err().unwrap());
    assert!(err.contains("refused the nester's backup key"), "{err}");
    let pushed = push::run(&nester.dir, &config, nester.db(), nester.clock().now())
        .await
        .unwrap();
    assert_eq!(pushed.verified, Some(Ok(())));
    assert!(!nester.dir.backup_key_old().exists() && !nester.dir.backup_key_next().exists());
    assert_eq!(
        nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'backup.key_rotate'"),
        1
    );
    assert!(fingerprint.starts_with("SHA256:"));

    // A rotation whose new key cannot log in (here: the account's file is not writable) keeps
    // the old key in use.
    let mut unwritable = config.clone();
    unwritable.authorized_keys = Some("/backups-elsewhere/authorized_keys".into());
    let actor = nester::db::audit::Actor::cli();
    assert!(
        nester::backup::rotate_key::rotate(&nester.dir, &unwritable, nester.db(), actor)
            .await
            .is_err()
    );
    let still = nester::backup::key::load(&nester.dir.backup_key()).unwrap();
    assert_eq!(still.public_key(), new.public_key());
    Remote::connect(&config, &still).await.unwrap();
}
