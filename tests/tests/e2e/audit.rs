//! The audit log: each audited action leaves exactly one entry, with who and from where; a
//! change whose entry cannot be written is not made; `nester audit verify` (the real binary)
//! names the first bad entry after tampering with the SQLite file; and verification under a
//! live load of audited writes never cries wolf.

use std::collections::BTreeMap;
use std::path::Path;

use hyper::{Method, StatusCode};
use nester::audit::{CheckpointKey, checkpoint, verify};
use nester::datadir::DataDir;
use nester::db::Role;
use nester::db::audit::{Actor, AuditQuery, Change};
use serde_json::json;

use crate::harness::TestNester;
use crate::process::{Daemon, NesterFiles, run, stderr};

async fn actions(nester: &TestNester) -> Vec<(String, String, String, Option<String>)> {
    let mut all = nester
        .db()
        .audit_entries(AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all.into_iter()
        .map(|e| (e.action, e.actor, e.target, e.source_ip))
        .collect()
}

#[tokio::test]
async fn each_audited_action_leaves_exactly_one_entry_with_who_and_where() {
    let nester = TestNester::start().await;
    let before = actions(&nester).await.len();
    let (admin_name, _) = nester.add_user("audit-admin", Role::Admin).await;
    let admin_id = nester.user_id(&admin_name).await;
    let admin = crate::sessions::session_for(&nester, admin_id, nester::db::Stage::Full).await;
    let page = |path: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let admin = &admin;
        let nester = &nester;
        async move {
            let r = nester
                .as_session(admin, Method::POST, path, &fields, vec![])
                .await;
            assert!(
                r.status.is_success() || r.status.is_redirection(),
                "{path}: {}",
                r.status
            );
        }
    };
    // From the pages, as the admin: a user added, its role changed, disabled, enabled.
    page("/admin/users", vec![("username", "bo"), ("role", "noc")]).await;
    page(
        "/admin/users/bo",
        vec![("action", "set-role"), ("role", "support")],
    )
    .await;
    page("/admin/users/bo", vec![("action", "disable")]).await;
    page("/admin/users/bo", vec![("action", "enable")]).await;
    page("/admin/users/bo", vec![("action", "reset-password")]).await;
    // A refused change (no such user) records nothing.
    let r = nester
        .as_session(
            &admin,
            Method::POST,
            "/admin/users/nobody",
            &[("action", "disable")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Enrollment, a probe, its revocation, from the API with a read-write token.
    let token = nester::ops::api_tokens::create(
        nester.db(),
        Actor::cli(),
        admin_id,
        "audit",
        nester::db::Scope::ReadWrite,
        time::Duration::hours(1),
    )
    .await
    .unwrap();
    let bearer = format!("Bearer {token}");
    let body = serde_json::to_vec(&json!({"site": "kc"})).unwrap();
    let made = nester
        .anonymous(
            Method::POST,
            "/api/v1/enrollment-tokens",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
        .json();
    let temp = tempfile::tempdir().unwrap();
    let (probe_id, _) = harvester::enroll::enroll(made["token"].as_str().unwrap(), temp.path())
        .await
        .unwrap();
    let revoke = format!("/api/v1/probes/{probe_id}/revoke");
    let r = nester
        .anonymous(Method::POST, &revoke, &[("authorization", &bearer)], vec![])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Signing in: a failure and a success; then signing out.
    let (noc, password) = nester.add_user("audit-noc", Role::Noc).await;
    nester.submit_login(&noc, "not the password at all").await;
    let session = nester.login(&noc, &password).await.unwrap();
    let out = nester
        .as_session(&session, Method::POST, "/logout", &[], vec![])
        .await;
    assert!(out.status.is_redirection());

    let all = actions(&nester).await;
    let new = &all[before..];
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (action, _, target, _) in new {
        *counts
            .entry((action.as_str(), target.as_str()))
            .or_default() += 1;
    }
    let probe = format!("probe:{probe_id}");
    let token_target = format!("enrollment_token:{}", made["token_id"].as_str().unwrap());
    for (action, target) in [
        ("user.add", "user:bo"),
        ("user.role", "user:bo"),
        ("user.disable", "user:bo"),
        ("user.enable", "user:bo"),
        ("user.password", "user:bo"),
        ("enrollment_token.create", token_target.as_str()),
        ("probe.enroll", probe.as_str()),
        ("probe.revoke", probe.as_str()),
        ("sign_in.failure", "user:audit-noc"),
        ("sign_in.success", "user:audit-noc"),
        ("session.sign_out", ""),
    ] {
        let n: usize = counts
            .iter()
            .filter(|((a, t), _)| *a == action && (target.is_empty() || *t == target))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(n, 1, "{action} {target} in {new:#?}");
    }
    assert!(
        !new.iter().any(|(_, _, t, _)| t == "user:nobody"),
        "{new:#?}"
    );
    // Who and from where: the admin's pages from loopback; the probe from its connection.
    let (_, actor, _, ip) = new.iter().find(|(a, ..)| a == "user.role").unwrap();
    assert_eq!(
        (actor.as_str(), ip.as_deref()),
        ("user:audit-admin", Some("127.0.0.1"))
    );
    let (_, actor, _, ip) = new.iter().find(|(a, ..)| a == "probe.enroll").unwrap();
    assert_eq!(
        (actor.as_str(), ip.as_deref()),
        (probe.as_str(), Some("127.0.0.1"))
    );
}

#[tokio::test]
async fn a_change_whose_entry_cannot_be_written_is_not_made() {
    let nester = TestNester::start().await;
    nester.add_user("keeps-role", Role::Noc).await;
    // Another writer makes the audit log refuse every entry.
    nester
        .other_connection()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log full'); END;",
        )
        .unwrap();
    let refused = nester
        .db()
        .set_role(Actor::cli(), "keeps-role".into(), Role::Admin)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let role: String = nester
        .sqlite()
        .query_row(
            "SELECT role FROM users WHERE username = 'keeps-role'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(role, "noc");
    // The same through the command line: an error, and nothing changed.
    let out = nester_cli(&nester, &["user", "set-role", "keeps-role", "admin"]);
    assert!(!out.status.success());
    let made = nester_cli(&nester, &["token", "create", "--site", "kc"]);
    assert!(!made.status.success(), "{}", stderr(&made));
    assert_eq!(nester.count("enrollment_tokens"), 0);
}

/// `nester ARGS --config` against this nester's data directory.
fn nester_cli(nester: &TestNester, args: &[&str]) -> std::process::Output {
    let config = nester.dir.root().join("../cli.toml");
    crate::harness::write_nester_config(&config, nester.dir.root(), "");
    let mut all = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    run("nester", &all)
}

/// A copy of a data directory, to tamper with.
fn copy_of(data: &Path, to: &Path) -> DataDir {
    let out = std::process::Command::new("cp")
        .args(["-a", data.to_str().unwrap(), to.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    DataDir::new(to)
}

fn verify_cli(data: &DataDir, config_dir: &Path) -> (bool, String) {
    let config = config_dir.join(format!(
        "verify-{}.toml",
        data.root().file_name().unwrap().to_str().unwrap()
    ));
    crate::harness::write_nester_config(&config, data.root(), "");
    let out = run(
        "nester",
        &["audit", "verify", "--config", config.to_str().unwrap()],
    );
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    (out.status.success(), said)
}

#[tokio::test]
async fn nester_audit_verify_names_the_first_bad_entry_after_tampering() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let server = Daemon::spawn("nester", &["serve", "--config", files.config_arg()]);
    server.field("ingest");
    for i in 0..6 {
        let name = format!("u{i}");
        let out = run(
            "nester",
            &[
                "user",
                "add",
                &name,
                "--role",
                "noc",
                "--config",
                files.config_arg(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // SIGTERM: the server signs a last checkpoint of the head as it stops.
    server.stop("-TERM");
    let intact = verify_cli(&DataDir::new(&files.data), temp.path());
    assert!(intact.0, "{}", intact.1);
    assert!(
        intact.1.contains("audit log intact: 7 entries"),
        "{}",
        intact.1
    );

    let cases: [(&str, &str, i64); 5] = [
        (
            "flipped",
            "UPDATE audit_log SET target = 'user:mallory' WHERE seq = 3",
            3,
        ),
        ("deleted", "DELETE FROM audit_log WHERE seq = 4", 4),
        ("tail-cut-1", "DELETE FROM audit_log WHERE seq = 7", 7),
        ("tail-cut-5", "DELETE FROM audit_log WHERE seq > 2", 3),
        ("emptied", "DELETE FROM audit_log", 1),
    ];
    for (name, sql, seq) in cases {
        let copy = copy_of(&files.data, &temp.path().join(name));
        rusqlite::Connection::open(copy.database())
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let (ok, said) = verify_cli(&copy, temp.path());
        assert!(!ok, "{name}: {said}");
        assert!(
            said.contains(&format!("broken at seq {seq}:")),
            "{name}: {said}"
        );
    }
    // Rebuilt consistently from genesis, with checkpoints signed by another key.
    let copy = copy_of(&files.data, &temp.path().join("rebuilt"));
    let elsewhere = DataDir::new(temp.path().join("elsewhere"));
    std::fs::create_dir_all(elsewhere.root().join("pki")).unwrap();
    let other = CheckpointKey::load_or_create(&elsewhere).unwrap();
    let forged = other.sign(7, &[0; 32], "2026-01-01T00:00:00Z");
    let line = format!("{}\n", serde_json::to_string(&forged).unwrap());
    std::fs::write(copy.audit_checkpoints(), line).unwrap();
    let (ok, said) = verify_cli(&copy, temp.path());
    assert!(
        !ok && said.contains("not signed by this nester's audit key"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_a_thousand_times_under_live_load_without_a_false_alarm() {
    let nester = TestNester::start().await;
    let db = nester.db().clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    // Audited writes until the checks are over (bounded in count all the same).
    let writer = tokio::spawn(async move {
        let mut written = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && written < 5_000 {
            db.audit(
                Actor::cli(),
                Change::new("test.load", format!("n:{written}")),
            )
            .await
            .unwrap();
            written += 1;
            // A steady load, not a flood: the chain a check reads stays a few hundred long.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        written
    });
    let key = CheckpointKey::load(&nester.dir).unwrap().public();
    let mut checked = 0;
    let mut longest = 0;
    while checked < 1_000 {
        let checkpoints = checkpoint::read_all(&nester.dir.audit_checkpoints()).unwrap();
        let entries = nester.db().audit_chain().await.unwrap();
        let ok = verify(&entries, &checkpoints, &key)
            .unwrap_or_else(|broken| panic!("false alarm after {checked} checks: {broken}"));
        longest = longest.max(ok.checkpoint.map_or(0, |c| c.0));
        checked += 1;
        // An audited write takes a few ms (it is synced): let some land between checks.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    // The writes went on through the checks, and the checks met checkpoints of them.
    assert!(written >= 200, "{written} entries written");
    assert!(longest > 0, "no checkpoint was checked against");
}

#[tokio::test]
async fn admins_read_the_log_and_the_chain_state_and_each_read_is_recorded() {
    let nester = TestNester::start().await;
    for i in 0..5 {
        nester.add_user(&format!("reader-{i}"), Role::Noc).await;
    }
    // The harness's admin token: filtered, paged, with the chain's state.
    let first = nester.get("/api/v1/audit?action=user.add&limit=3").await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["chain"]["intact"], true, "{first}");
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|e| e["action"] == "user.add"));
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = nester
        .get(&format!(
            "/api/v1/audit?action=user.add&limit=3&cursor={cursor}"
        ))
        .await
        .json();
    let seqs = |page: &serde_json::Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    let (a, b) = (seqs(&first), seqs(&rest));
    assert!(
        a.windows(2).all(|w| w[0] > w[1]) && a.last() > b.first(),
        "{a:?} {b:?}"
    );
    // Each read left its own entry, by the token's admin.
    let reads = nester.get("/api/v1/audit?action=audit.read").await.json();
    assert_eq!(reads["items"].as_array().unwrap().len(), 2, "{reads}");
    assert_eq!(reads["items"][0]["actor"], "user:harness-admin");
    for bad in ["from=yesterday", "limit=0", "cursor=x", "colour=red"] {
        let r = nester.get(&format!("/api/v1/audit?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The page says the same, and says so when the chain breaks.
    nester.add_user("page-reader", Role::Admin).await;
    let id = nester.user_id("page-reader").await;
    let admin = crate::sessions::session_for(&nester, id, nester::db::Stage::Full).await;
    let page = nester
        .as_session(
            &admin,
            Method::GET,
            "/admin/audit?action=user.add",
            &[],
            vec![],
        )
        .await;
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(
        html.contains("data-intact=\"true\"") && html.contains("data-action=\"user.add\""),
        "{html}"
    );
    nester
        .other_connection()
        .execute_batch("UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 2")
        .unwrap();
    let page = nester
        .as_session(&admin, Method::GET, "/admin/audit", &[], vec![])
        .await;
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(html.contains("Chain broken at seq 2"), "{html}");
}
