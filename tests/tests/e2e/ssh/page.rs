//! The SSH page (/account/ssh): over HTTP with a session, and in a real browser.

use super::*;

#[tokio::test]
async fn the_page_issues_lists_and_revokes_certificates() {
    let nester = TestNester::start().await;
    let (_, secret) = user(&nester, "paige", Role::Support, true).await;
    let id = nester.user_id("paige").await;
    let session = crate::sessions::session_for(&nester, id, nester::db::Stage::Full).await;
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
        !page.text().contains("id=\"revoke-key\""),
        "only admins revoke keys"
    );
    assert!(
        page.text().contains("id=\"new-certificate\"")
            && page.text().contains("signs no host certificates")
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

#[tokio::test]
async fn in_the_browser_a_certificate_from_the_page_opens_the_box_and_is_revoked_there() {
    use crate::webdriver::{
        appears, browser, click, console_errors, screenshot, sign_in, type_into,
    };
    let nester = nester_for_boxes(|_| {}).await;
    let (_driver, client) = browser().await;
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    let secret = sign_in(&nester, &client, &base, false).await;
    let user_ca =
        nester::ssh_ca::rotation::CaSet::load(&nester.dir, nester::ssh_ca::ca::Purpose::User)
            .unwrap()
            .newest
            .openssh();
    let sshd = Sshd::start_box(&user_ca);
    std::fs::write(sshd.box_file("principals"), "root\n").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let public = keygen(keys.path(), "chrome");

    // From the account page to the SSH page; a fresh code (not the sign-in's) gets one.
    client.goto(&format!("{base}/account")).await.unwrap();
    click(&client, "a[href='/account/ssh']").await;
    crate::webdriver::wait_for_path(&client, "/account/ssh").await;
    let known = appears(&client, "#known-hosts").await.text().await.unwrap();
    assert!(
        known.starts_with("@cert-authority [127.0.0.1]:*,box-* ssh-ed25519 "),
        "{known}"
    );
    type_into(
        &client,
        "#new-certificate textarea[name=public_key]",
        public.trim(),
    )
    .await;
    nester.clock().advance(time::Duration::seconds(30));
    type_into(
        &client,
        "#new-certificate input[name=code]",
        &code(&nester, &secret, 0),
    )
    .await;
    type_into(&client, "#new-certificate input[name=validity]", "10m").await;
    click(&client, "#new-certificate button[type=submit]").await;
    let issued = appears(&client, "#issued").await.text().await.unwrap();
    assert!(
        issued.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{issued}"
    );
    click(&client, "button[data-copy=issued]").await;
    appears(&client, "button[data-copy=issued][data-copied=true]").await;
    screenshot(&client, "ssh-certificate").await;
    std::fs::write(keys.path().join("chrome-cert.pub"), &issued).unwrap();
    // An admin's certificate names root: the box lets it in as its account.
    let (ok, err) = login(&sshd, keys.path(), "chrome");
    assert!(ok, "the page's certificate did not log in: {err}");

    // Revoked from its row; the box refuses it once it has the KRL.
    client.goto(&format!("{base}/account/ssh")).await.unwrap();
    click(&client, "#certificates tbody tr form button[type=submit]").await;
    appears(&client, "#certificates tr.revoked").await;
    let ssh = nester::ssh_ca::Ssh::load(&nester.dir, nester::config::SshConfig::default()).unwrap();
    let (_, krl) = ssh.krl(nester.db(), nester.clock().now_ms()).await.unwrap();
    std::fs::write(sshd.box_file("revoked_keys"), krl).unwrap();
    assert!(
        !login(&sshd, keys.path(), "chrome").0,
        "revoked on the page, still in"
    );

    // An admin revokes the key itself, for good, from the same page.
    type_into(
        &client,
        "#revoke-key textarea[name=public_key]",
        public.trim(),
    )
    .await;
    type_into(&client, "#revoke-key input[name=reason]", "laptop stolen").await;
    click(&client, "#revoke-key button[type=submit]").await;
    let listed = appears(&client, "#revoked-keys")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("laptop stolen") && listed.contains("SHA256:"),
        "{listed}"
    );
    let revoked = nester.db().ssh_revoked_keys().await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].public_key, public.trim());
    assert_eq!(console_errors(&client).await, Vec::<String>::new());
}
