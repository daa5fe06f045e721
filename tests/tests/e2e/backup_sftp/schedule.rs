//! Scheduled backups: an alert while they fail, resolved after; the backup key rotated without
//! lock-out.

use std::time::Duration;

use nester::backup::push;
use nester::backup::sftp::Remote;
use seahawks_tests::sshd::Sshd;

use super::*;
use crate::harness::TestNester;

/// `nester serve` with `[backup]`: the first backup at once; a failing one raises
/// `backup.failing` (critical: there is no good backup yet), retried until it works, which
/// resolves the alert.
#[tokio::test]
async fn scheduled_backups_raise_an_alert_while_they_fail_and_resolve_it() {
    let sshd = Sshd::start("");
    let mut backup = sshd.backup_config();
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
    let admin = crate::sessions::session_for(&nester, id, nester::db::Stage::Full).await;
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
    let config = sshd.backup_config();
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
