//! The SSH page (/account/ssh): over HTTP with a session, and in a real browser.

use super::*;

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
