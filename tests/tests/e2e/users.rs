//! Users from the command line: the first admin at `nester init`, no default password, the
//! password policy, Argon2id storage, and the administrator's changes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::process::{binary, run, stderr};

fn nester(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(binary("nester"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The generated password a command showed, from its `password for NAME: ...` line.
fn shown_password(out: &Output, user: &str) -> String {
    let text = stdout(out);
    let prefix = format!("password for {user}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no password shown: {text}"))
        .to_string()
}

/// (role, password hash, disabled) of a user, straight from the database file.
fn stored(data: &Path, user: &str) -> (String, String, bool) {
    let db = rusqlite::Connection::open_with_flags(
        data.join("nester.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(
        "SELECT role, password_hash, disabled_ms IS NOT NULL FROM users WHERE username = ?1",
        [user],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

fn verifies(password: &str, hash: &str) -> bool {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(nester::auth::credentials::verify_password(
            password.to_string(),
            hash.to_string(),
        ))
}

#[test]
fn the_first_admin_and_every_user_change_from_the_command_line() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    let data_str = data.to_str().unwrap();

    // No terminal: the first admin's password is generated and shown once.
    let out = nester(
        &["init", "--data-dir", data_str, "--admin", "root-admin"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let admin_password = shown_password(&out, "root-admin");
    assert_eq!(admin_password.chars().count(), 24);
    assert!(stdout(&out).contains("shown once"));
    let (role, hash, disabled) = stored(&data, "root-admin");
    assert_eq!((role.as_str(), disabled), ("admin", false));
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(&admin_password));
    assert!(verifies(&admin_password, &hash));

    let config = temp.path().join("nester.toml");
    crate::harness::write_nester_config(&config, &data, "");
    let config = config.to_str().unwrap();
    let user = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["user", "--config", config];
        all.extend_from_slice(args);
        nester(&all, stdin)
    };
    let refused = |out: &Output, why: &str| {
        assert!(!out.status.success(), "accepted: {}", stdout(out));
        assert!(stderr(out).contains(why), "{why}: {}", stderr(out));
    };

    // The policy: length in characters, any Unicode; nothing is added on a refusal.
    refused(
        &user(
            &["add", "ana", "--role", "support", "--password-stdin"],
            Some("too-short\n"),
        ),
        "at least 12 characters",
    );
    refused(
        &user(
            &["add", "ana", "--role", "support", "--password-stdin"],
            Some(&format!("{}\n", "x".repeat(129))),
        ),
        "at most 128 characters",
    );
    let list = stdout(&user(&["list"], None));
    assert!(!list.contains("ana"), "{list}");
    let passphrase = "contraseña segura de ana";
    let out = user(
        &["add", "ana", "--role", "support", "--password-stdin"],
        Some(&format!("{passphrase}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("password for ana set"),
        "{}",
        stdout(&out)
    );
    assert!(verifies(passphrase, &stored(&data, "ana").1));

    // Names are unique whatever their case; roles are the three there are; no password on
    // the command line.
    refused(
        &user(&["add", "ANA", "--role", "noc"], None),
        "already exists",
    );
    refused(
        &user(&["add", "bob", "--role", "root"], None),
        "admin, noc or support",
    );
    refused(
        &user(&["add", "bob", "--role", "noc", "--password", "x"], None),
        "--password",
    );
    refused(
        &user(&["add", "bad name", "--role", "noc"], None),
        "user name",
    );

    // The last enabled admin stays one.
    refused(
        &user(&["disable", "root-admin"], None),
        "last enabled admin",
    );
    refused(
        &user(&["set-role", "root-admin", "noc"], None),
        "last enabled admin",
    );
    assert!(user(&["set-role", "ana", "admin"], None).status.success());
    assert!(user(&["disable", "root-admin"], None).status.success());
    assert!(stored(&data, "root-admin").2);
    let list = stdout(&user(&["list"], None));
    assert!(
        list.lines()
            .any(|l| l.starts_with("root-admin") && l.contains("disabled")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("ana") && l.contains("admin")),
        "{list}"
    );
    assert!(user(&["enable", "root-admin"], None).status.success());
    assert!(!stored(&data, "root-admin").2);

    // A new password replaces the old one.
    let out = user(&["reset-password", "ana"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let new_password = shown_password(&out, "ana");
    let hash = stored(&data, "ana").1;
    assert!(verifies(&new_password, &hash));
    assert!(!verifies(passphrase, &hash));

    // A lost authenticator: reset-mfa turns TOTP off (the admin sets it up again at sign-in).
    let db = rusqlite::Connection::open(data.join("nester.db")).unwrap();
    db.execute(
        "UPDATE users SET totp_secret = x'00', totp_last_step = 1 WHERE username = 'ana'",
        [],
    )
    .unwrap();
    assert!(
        stdout(&user(&["list"], None))
            .lines()
            .any(|l| l.starts_with("ana") && l.contains(" on "))
    );
    let out = user(&["reset-mfa", "ana"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let off: bool = db
        .query_row(
            "SELECT totp_secret IS NULL FROM users WHERE username = 'ana'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(off);
    refused(&user(&["reset-mfa", "nobody"], None), "no user `nobody`");

    refused(&user(&["disable", "nobody"], None), "no user `nobody`");
    // A second init would replace the CA: refused before any password is asked.
    refused(
        &nester(&["init", "--data-dir", data_str], None),
        "already initialised",
    );
    assert!(run("nester", &["user", "--help"]).status.success());
}
