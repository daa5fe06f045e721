//! User certificates from the API: a fresh TOTP code gets a certificate that logs in as the
//! role's principal; a wrong principal, an expired certificate, a revoked one (the KRL the
//! nester serves, installed on the box) are refused by sshd; no code, a replayed code, no
//! two-factor authentication, the noc role get no certificate; `ssh-keygen -Q` reads our
//! KRL with the right answers.

use super::*;

#[tokio::test]
async fn a_certificate_after_a_fresh_code_opens_the_box_to_its_principal_until_revoked() {
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "sam", Role::Support, true).await;
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    assert_eq!(ca.status, 200);
    let user_ca = ca.json()["user_ca"].as_str().unwrap().to_string();
    assert_eq!(
        ca.json()["known_hosts"],
        "",
        "no host certificates without [ssh] host_patterns"
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
    assert_eq!(install_krl(&nester, &support, &sshd).await, "1");
    let (ok, _) = login(&sshd, keys.path(), "sam");
    assert!(!ok, "a revoked certificate still logs in");
    let answer = krl_says(&sshd, &keys.path().join("sam-cert.pub"));
    assert!(!answer.0 && answer.1.contains("REVOKED"), "{answer:?}");

    // A new certificate (a new code) is not revoked, and gets in.
    nester.clock().advance(time::Duration::seconds(30));
    let again = ask(&nester, &support, &public, &code(&nester, &secret, 0), None).await;
    save_certificate(keys.path(), "sam", &again);
    let answer = krl_says(&sshd, &keys.path().join("sam-cert.pub"));
    assert!(answer.0 && answer.1.contains("ok"), "{answer:?}");
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
    save_certificate(keys.path(), "ada", &issued);
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
async fn a_key_revoked_outright_is_refused_with_every_certificate_and_never_certified_again() {
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "kit", Role::Support, true).await;
    let (admin, _) = user(&nester, "ada", Role::Admin, true).await;
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    let sshd = Sshd::start_box(ca.json()["user_ca"].as_str().unwrap());
    std::fs::write(sshd.box_file("principals"), "support\n").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    certificate_for(&nester, &support, &secret, dir, "leaked").await;
    nester.clock().advance(time::Duration::seconds(30));
    certificate_for(&nester, &support, &secret, dir, "kept").await;
    assert!(login(&sshd, dir, "leaked").0 && login(&sshd, dir, "kept").0);

    let leaked = std::fs::read_to_string(dir.join("leaked.pub")).unwrap();
    let body = |key: &str, reason: &str| {
        serde_json::to_vec(&serde_json::json!({"public_key": key, "reason": reason})).unwrap()
    };
    let path = "/api/v1/ssh/revoked-keys";
    // Only an admin; a key and a reason.
    let by_support = call(
        &nester,
        &support,
        Method::POST,
        path,
        body(&leaked, "stolen"),
    )
    .await;
    assert_eq!(by_support.status, 403);
    for (key, reason, code) in [
        ("ssh-ed25519 AAAA", "stolen", "bad_public_key"),
        (leaked.as_str(), " ", "bad_reason"),
        (leaked.as_str(), "two\nlines", "bad_reason"),
    ] {
        let refused = call(&nester, &admin, Method::POST, path, body(key, reason)).await;
        assert_eq!(
            (refused.status.as_u16(), refused.error_code()),
            (400, code.to_string())
        );
    }
    assert!(
        nester.db().ssh_revoked_keys().await.unwrap().is_empty(),
        "nothing recorded"
    );
    let revoked = call(
        &nester,
        &admin,
        Method::POST,
        path,
        body(&leaked, "laptop stolen"),
    )
    .await;
    assert_eq!(revoked.status, 201, "{}", revoked.text());
    assert_eq!(revoked.json()["revoked_by"], "user:ada");
    let again = call(
        &nester,
        &admin,
        Method::POST,
        path,
        body(&leaked, "laptop stolen"),
    )
    .await;
    assert_eq!(again.status, 200, "already revoked");

    // The KRL carries the key: sshd refuses its certificate, ssh-keygen agrees, the other
    // key of the same user still gets in.
    assert_eq!(install_krl(&nester, &support, &sshd).await, "1");
    assert!(
        !login(&sshd, dir, "leaked").0,
        "a certificate of a revoked key logs in"
    );
    assert!(login(&sshd, dir, "kept").0);
    let query = |file: &str| krl_says(&sshd, &dir.join(file)).1;
    assert!(query("leaked-cert.pub").contains("REVOKED"));
    assert!(query("leaked.pub").contains("REVOKED"), "the plain key too");
    assert!(query("kept-cert.pub").contains(": ok"));

    // Never certified again, and the code is not spent on the refusal.
    nester.clock().advance(time::Duration::seconds(30));
    let fresh = code(&nester, &secret, 0);
    let refused = ask(&nester, &support, &leaked, &fresh, None).await;
    assert_eq!(
        (refused.status.as_u16(), refused.error_code()),
        (403, "key_revoked".to_string())
    );
    let kept = std::fs::read_to_string(dir.join("kept.pub")).unwrap();
    assert_eq!(
        ask(&nester, &support, &kept, &fresh, None).await.status,
        201
    );
    let listed = call(&nester, &admin, Method::GET, path, Vec::new()).await;
    assert_eq!(listed.json()[0]["reason"], "laptop stolen");
}
