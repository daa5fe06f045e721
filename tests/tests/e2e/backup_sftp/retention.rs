//! The server keeps exactly what the retention policy says.

use nester::backup::push;

use super::*;

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
    let mut config = sshd.backup_config();
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
