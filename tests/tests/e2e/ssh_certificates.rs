//! SSH user certificates from the nester's SSH CA, used with the real `ssh` against a real
//! `sshd` set up as a harvester box (`TrustedUserCAKeys`, `RevokedKeys`,
//! `AuthorizedPrincipalsFile`): a fresh TOTP code gets a certificate that logs in as the
//! role's principal; a wrong principal, an expired certificate, a revoked one (the KRL the
//! nester serves, installed on the box) are refused by sshd; no code, a replayed code, no
//! two-factor authentication, the noc role get no certificate; `ssh-keygen -Q` reads our
//! KRL with the right answers.

use std::path::Path;
use std::process::Command;

use hyper::Method;
use nester::auth::totp;
use nester::db::{Role, Scope};
use seahawks_tests::sshd::{BOX_USER, Sshd};

use crate::client::Response;
use crate::harness::TestNester;

/// A user of `role` with TOTP on (when `mfa`), and a read-write API token of theirs.
async fn user(nester: &TestNester, name: &str, role: Role, mfa: bool) -> (String, Vec<u8>) {
    nester.add_user(name, role).await;
    let id = nester.user_id(name).await;
    let secret = totp::new_secret().unwrap();
    if mfa {
        nester
            .db()
            .enable_totp(
                nester::db::audit::Actor::cli(),
                id,
                secret.clone(),
                0,
                Vec::new(),
            )
            .await
            .unwrap();
    }
    let token = nester::auth::api_token::create(
        nester.db(),
        nester::db::audit::Actor::cli(),
        id,
        "ssh-test",
        Scope::ReadWrite,
        time::Duration::hours(1),
    )
    .await
    .unwrap();
    (format!("Bearer {token}"), secret)
}

/// The current code, at the nester's clock, `steps` of 30 s from now.
fn code(nester: &TestNester, secret: &[u8], steps: i64) -> String {
    let now = nester.clock().now().unix_timestamp() + 30 * steps;
    totp::code_at(secret, u64::try_from(now).unwrap())
}

async fn call(
    nester: &TestNester,
    auth: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Response {
    let mut headers = vec![("authorization", auth)];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    nester.anonymous(method, path, &headers, body).await
}

async fn ask(
    nester: &TestNester,
    auth: &str,
    public_key: &str,
    totp: &str,
    validity: Option<&str>,
) -> Response {
    let body = serde_json::json!({"public_key": public_key, "totp": totp, "validity": validity});
    call(
        nester,
        auth,
        Method::POST,
        "/api/v1/ssh/certificates",
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

async fn revoke(nester: &TestNester, auth: &str, serial: u64) -> Response {
    let path = format!("/api/v1/ssh/certificates/{serial}/revoke");
    call(nester, auth, Method::POST, &path, Vec::new()).await
}

/// A new Ed25519 key pair in `dir` named `name`; its public line.
fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// Runs `echo in` on the box as [`BOX_USER`] with key `name` and its certificate: whether
/// it got in, and ssh's error output.
fn login(sshd: &Sshd, dir: &Path, name: &str) -> (bool, String) {
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let output = Command::new("ssh")
        .args(["-F", "/dev/null", "-p", &sshd.port.to_string(), "-i"])
        .arg(dir.join(name))
        .arg("-o")
        .arg(format!(
            "CertificateFile={}",
            dir.join(format!("{name}-cert.pub")).display()
        ))
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "ConnectTimeout=10"])
        .arg(format!("{BOX_USER}@127.0.0.1"))
        .args(["echo", "in"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).to_string();
    (
        output.status.success() && out.trim() == "in",
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn a_certificate_after_a_fresh_code_opens_the_box_to_its_principal_until_revoked() {
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "sam", Role::Support, true).await;
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    assert_eq!(ca.status, 200);
    let user_ca = ca.json()["user_ca"].as_str().unwrap().to_string();
    assert!(
        ca.json()["known_hosts"]
            .as_str()
            .unwrap()
            .starts_with("@cert-authority * ssh-ed25519 ")
    );
    let sshd = Sshd::start_box(&user_ca);
    std::fs::write(sshd.box_file("principals"), "support\n").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "sam");

    // Without a code, with a wrong one: nothing, and nothing recorded.
    let none = ask(&nester, &support, &public, "", None).await;
    assert_eq!(
        (none.status.as_u16(), none.error_code().as_str()),
        (403, "bad_code")
    );
    let issued = ask(&nester, &support, &public, &code(&nester, &secret, 0), None).await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let body = issued.json();
    assert_eq!(body["principals"], serde_json::json!(["support"]));
    assert_eq!(body["username"], "sam");
    let serial = body["serial"].as_u64().unwrap();
    assert!(
        body["key_id"]
            .as_str()
            .unwrap()
            .contains(&format!("sam serial {serial}"))
    );
    std::fs::write(
        keys.path().join("sam-cert.pub"),
        body["certificate"].as_str().unwrap(),
    )
    .unwrap();

    // The same code again is a replay.
    let replay = ask(&nester, &support, &public, &code(&nester, &secret, 0), None).await;
    assert_eq!(
        (replay.status.as_u16(), replay.error_code().as_str()),
        (403, "bad_code")
    );

    // sshd lets the certificate in as the principal of the role...
    let (ok, err) = login(&sshd, keys.path(), "sam");
    assert!(ok, "the certificate is refused: {err}");
    // ...and not where the account takes another principal only.
    std::fs::write(sshd.box_file("principals"), "root\n").unwrap();
    let (ok, _) = login(&sshd, keys.path(), "sam");
    assert!(
        !ok,
        "a certificate for `support` opened an account for `root` only"
    );
    std::fs::write(sshd.box_file("principals"), "support\n").unwrap();

    // Revoked: the KRL the nester serves, installed on the box, shuts it out; ssh-keygen
    // reads the KRL and agrees.
    let revoked = revoke(&nester, &support, serial).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(revoked.json()["revoked_at"].is_string());
    let krl = call(
        &nester,
        &support,
        Method::GET,
        "/api/v1/ssh/krl",
        Vec::new(),
    )
    .await;
    assert_eq!(krl.status, 200);
    assert_eq!(krl.header("x-krl-version"), "1");
    std::fs::write(sshd.box_file("revoked_keys"), &krl.body).unwrap();
    let (ok, _) = login(&sshd, keys.path(), "sam");
    assert!(!ok, "a revoked certificate still logs in");
    let query = |cert: &Path| {
        Command::new("ssh-keygen")
            .arg("-Q")
            .arg("-f")
            .arg(sshd.box_file("revoked_keys"))
            .arg(cert)
            .output()
            .unwrap()
    };
    let answer = query(&keys.path().join("sam-cert.pub"));
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("REVOKED"),
        "{answer:?}"
    );

    // A new certificate (a new code) is not revoked, and gets in.
    nester.clock().advance(time::Duration::seconds(30));
    let again = ask(&nester, &support, &public, &code(&nester, &secret, 0), None).await;
    assert_eq!(again.status, 201, "{}", again.text());
    std::fs::write(
        keys.path().join("sam-cert.pub"),
        again.json()["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let answer = query(&keys.path().join("sam-cert.pub"));
    assert!(
        answer.status.success() && String::from_utf8_lossy(&answer.stdout).contains("ok"),
        "{answer:?}"
    );
    let (ok, err) = login(&sshd, keys.path(), "sam");
    assert!(
        ok,
        "a valid certificate beside a revoked one is refused: {err}"
    );

    // The list: newest first, one revoked; the audit log has both issues and the revocation.
    let list = call(
        &nester,
        &support,
        Method::GET,
        "/api/v1/ssh/certificates",
        Vec::new(),
    )
    .await;
    let list = list.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[1]["revoked_at"].is_string() && list[0]["revoked_at"].is_null());
    assert_eq!(
        nester.count("audit_log WHERE action = 'ssh.certificate_issue'"),
        2
    );
    assert_eq!(
        nester.count("audit_log WHERE action = 'ssh.certificate_revoke'"),
        1
    );
}

#[tokio::test]
async fn expired_certificates_are_refused_by_sshd() {
    let nester = TestNester::start().await;
    let (admin, secret) = user(&nester, "ada", Role::Admin, true).await;
    let ca = call(&nester, &admin, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    let sshd = Sshd::start_box(ca.json()["user_ca"].as_str().unwrap());
    std::fs::write(sshd.box_file("principals"), "root\n").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "ada");
    // The nester's clock two hours behind: a one-minute certificate ended long ago.
    nester.clock().advance(time::Duration::hours(-2));
    let issued = ask(
        &nester,
        &admin,
        &public,
        &code(&nester, &secret, 0),
        Some("1m"),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    assert_eq!(
        issued.json()["principals"],
        serde_json::json!(["support", "root"])
    );
    std::fs::write(
        keys.path().join("ada-cert.pub"),
        issued.json()["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, _) = login(&sshd, keys.path(), "ada");
    assert!(!ok, "an expired certificate logs in");
    // Back to now: a certificate of the default hour does.
    nester.clock().advance(time::Duration::hours(2));
    let issued = ask(&nester, &admin, &public, &code(&nester, &secret, 0), None).await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    std::fs::write(
        keys.path().join("ada-cert.pub"),
        issued.json()["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, err) = login(&sshd, keys.path(), "ada");
    assert!(ok, "{err}");
}

#[tokio::test]
async fn who_may_not_and_what_is_not_a_key_get_no_certificate() {
    let nester = TestNester::start().await;
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "k");
    let (noc, noc_secret) = user(&nester, "nora", Role::Noc, true).await;
    let refused = ask(&nester, &noc, &public, &code(&nester, &noc_secret, 0), None).await;
    assert_eq!(refused.status, 403);
    let (plain, _) = user(&nester, "pat", Role::Support, false).await;
    let refused = ask(&nester, &plain, &public, "123456", None).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code().as_str()),
        (403, "mfa_required")
    );

    let (support, secret) = user(&nester, "sue", Role::Support, true).await;
    let fresh = code(&nester, &secret, 0);
    for (key, why) in [
        ("", "empty"),
        ("ssh-ed25519 not-base64", "garbage"),
        (&"A".repeat(20_000), "oversized"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "a private key"),
    ] {
        let refused = ask(&nester, &support, key, &fresh, None).await;
        assert_eq!(
            (refused.status.as_u16(), refused.error_code().as_str()),
            (400, "bad_public_key"),
            "{why}"
        );
    }
    // RSA below 3072 bits is refused.
    let short = keys.path().join("short");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&short)
        .status()
        .unwrap();
    assert!(made.success());
    let short = std::fs::read_to_string(short.with_extension("pub")).unwrap();
    let refused = ask(&nester, &support, &short, &fresh, None).await;
    assert!(refused.text().contains("3072"), "{}", refused.text());
    let bad_validity = ask(&nester, &support, &public, &fresh, Some("25h")).await;
    assert_eq!(
        (
            bad_validity.status.as_u16(),
            bad_validity.error_code().as_str()
        ),
        (400, "bad_validity")
    );
    // The code was not spent on the refused requests: it still works once.
    let issued = ask(&nester, &support, &public, &fresh, Some("10m")).await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let cert = issued.json()["certificate"].as_str().unwrap().to_string();
    nester.clock().advance(time::Duration::seconds(30));
    let refused = ask(&nester, &support, &cert, &code(&nester, &secret, 0), None).await;
    assert_eq!(
        refused.error_code(),
        "bad_public_key",
        "a certificate as the key"
    );
    // Unknown fields and bad JSON are refused before anything.
    let junk = call(
        &nester,
        &support,
        Method::POST,
        "/api/v1/ssh/certificates",
        b"{\"public_key\": 1".to_vec(),
    )
    .await;
    assert_eq!(junk.status, 400);
    // Someone else's certificate cannot be revoked (it does not exist for them); an admin can.
    let serial = issued.json()["serial"].as_u64().unwrap();
    let (other, _) = user(&nester, "sid", Role::Support, true).await;
    let path = format!("/api/v1/ssh/certificates/{serial}/revoke");
    let refused = call(&nester, &other, Method::POST, &path, Vec::new()).await;
    assert_eq!(refused.status, 404);
    let (admin, _) = user(&nester, "ari", Role::Admin, true).await;
    let done = call(&nester, &admin, Method::POST, &path, Vec::new()).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["revoked_by"], "user:ari");
}

#[tokio::test]
async fn the_harvester_installs_the_ssh_trust_and_a_revocation_reaches_the_box_next_cycle() {
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "hal", Role::Support, true).await;
    // The box trusts no CA until its harvester installs the nester's.
    let sshd = Sshd::start_box("");
    std::fs::write(sshd.box_file("principals"), "support\n").unwrap();
    let probe = nester.probe().await;
    let mut config = nester.agent_config(&probe, "9");
    config.ssh = Some(harvester::config::SshTrustConfig {
        trusted_user_ca_keys: sshd.box_file("trusted_user_ca"),
        revoked_keys: sshd.box_file("revoked_keys"),
    });
    let mut agent = harvester::Agent::new(config).unwrap();

    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "hal");
    let issued = ask(&nester, &support, &public, &code(&nester, &secret, 0), None).await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let serial = issued.json()["serial"].as_u64().unwrap();
    std::fs::write(
        keys.path().join("hal-cert.pub"),
        issued.json()["certificate"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        !login(&sshd, keys.path(), "hal").0,
        "the box trusted a CA before its harvester ran"
    );

    agent.cycle().await.unwrap();
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    assert_eq!(
        std::fs::read_to_string(sshd.box_file("trusted_user_ca")).unwrap(),
        format!("{}\n", ca.json()["user_ca"].as_str().unwrap())
    );
    let (ok, err) = login(&sshd, keys.path(), "hal");
    assert!(ok, "{err}");

    let revoked = revoke(&nester, &support, serial).await;
    assert_eq!(revoked.status, 200);
    // Until the harvester's next cycle the box knows nothing of it; after it, sshd refuses.
    assert!(login(&sshd, keys.path(), "hal").0);
    agent.cycle().await.unwrap();
    let (ok, _) = login(&sshd, keys.path(), "hal");
    assert!(
        !ok,
        "a revoked certificate still logs in after a harvester cycle"
    );
}

#[tokio::test]
async fn the_page_issues_lists_and_revokes_certificates() {
    let nester = TestNester::start().await;
    let (_, secret) = user(&nester, "paige", Role::Support, true).await;
    let id = nester.user_id("paige").await;
    let session = crate::web_auth::session_for(&nester, id, nester::db::Stage::Full).await;
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "paige");

    let account = nester
        .as_session(&session, Method::GET, "/account", &[], Vec::new())
        .await;
    assert!(account.text().contains("href=\"/account/ssh\""));
    let page = nester
        .as_session(&session, Method::GET, "/account/ssh", &[], Vec::new())
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("id=\"new-certificate\"")
            && page.text().contains("@cert-authority * ssh-ed25519 ")
    );

    let fresh = code(&nester, &secret, 0);
    let wrong = if fresh == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = nester
        .as_session(
            &session,
            Method::POST,
            "/account/ssh/certificates",
            &[("public_key", &public), ("code", wrong)],
            Vec::new(),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("wrong or was already used"),
        "{}",
        refused.text()
    );
    let issued = nester
        .as_session(
            &session,
            Method::POST,
            "/account/ssh/certificates",
            &[
                ("public_key", &public),
                ("code", &fresh),
                ("validity", "15m"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text());
    assert!(issued.text().contains("ssh-ed25519-cert-v01@openssh.com "));
    let mine = nester.db().ssh_certificates(Some(id)).await.unwrap();
    assert_eq!(mine.len(), 1);
    let lifetime = mine[0].valid_before - mine[0].valid_after;
    assert_eq!(
        lifetime,
        time::Duration::minutes(20),
        "15 minutes, from 5 minutes back"
    );

    let path = format!("/account/ssh/certificates/{}/revoke", mine[0].serial);
    let revoked = nester
        .as_session(&session, Method::POST, &path, &[], Vec::new())
        .await;
    assert_eq!(
        (revoked.status.as_u16(), revoked.header("location")),
        (303, "/account/ssh")
    );
    let page = nester
        .as_session(&session, Method::GET, "/account/ssh", &[], Vec::new())
        .await;
    assert!(page.text().contains("class=\"revoked\""), "{}", page.text());
}
