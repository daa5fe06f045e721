//! `nester backup` through the binary: run, list, verify, restore.

use seahawks_tests::sshd::{AUTHORIZED_KEYS, DIR, Sshd, USER};

use crate::process::{run, stderr};

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
