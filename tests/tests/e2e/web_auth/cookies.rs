//! The session cookie: its flags, signing out, the back button, and expiry when idle and at the
//! absolute limit under a moved clock.

use hyper::{Method, StatusCode};
use nester::auth::secret;
use nester::db::Role;
use nester::db::Stage;

use super::*;
use crate::harness::{TestNester, WebSession, cookie_in};
use crate::sessions::session_for;

#[tokio::test]
async fn cookie_flags_logout_and_the_back_button() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("ana", Role::Support).await;
    let response = nester.submit_login(&name, &password).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let set = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("__Host-seahawks-session="))
        .unwrap();
    for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.split("; ").any(|f| f == flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let token = cookie_in(&response, "__Host-seahawks-session").unwrap();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    // Only its hash is stored.
    let stored: i64 = nester.scalar(&format!(
        "SELECT count(*) FROM sessions WHERE token_hash = x'{}'",
        hex(&secret::sha256(&token))
    ));
    assert_eq!(stored, 1);
    assert_eq!(
        nester.scalar(&format!(
            "SELECT count(*) FROM sessions WHERE instr(token_hash, '{token}') > 0 OR csrf_token = '{token}'"
        )),
        0
    );

    let session = nester.session_from(&response).await;
    let page = nester
        .as_session(&session, Method::GET, "/", &[], vec![])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.header("cache-control"),
        "no-store",
        "the back button must not show data"
    );
    let api = nester
        .as_session(&session, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(api.status, StatusCode::OK);

    let out = nester
        .as_session(&session, Method::POST, "/logout", &[], vec![])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers.get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("__Host-seahawks-session=;")
            && v.to_str().unwrap().contains("Max-Age=0")
    }));
    // The same cookie, replayed after logout: nothing.
    let reused = nester
        .as_session(&session, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reused.error_code(), "unauthenticated");
    assert!(reused.header("www-authenticate").starts_with("Bearer"));
    let page = nester
        .as_session(&session, Method::GET, "/", &[], vec![])
        .await;
    assert_eq!(
        (page.status, page.header("location")),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert_eq!(nester.scalar("SELECT count(*) FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = 'ana')"), 0);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_the_absolute_limit() {
    let nester = TestNester::start().await;
    nester.add_user("idle", Role::Noc).await;
    let user = nester.user_id("idle").await;
    let clock = nester.clock();
    let get = |s: WebSession| {
        let nester = &nester;
        async move {
            nester
                .as_session(&s, Method::GET, "/api/v1/probes", &[], vec![])
                .await
                .status
        }
    };
    // Idle: 29 minutes between requests is fine, 31 is not.
    let s = session_for(&nester, user, Stage::Full).await;
    for _ in 0..3 {
        clock.advance(time::Duration::minutes(29));
        assert_eq!(get(s.clone()).await, StatusCode::OK);
    }
    clock.advance(time::Duration::minutes(31));
    assert_eq!(get(s.clone()).await, StatusCode::UNAUTHORIZED);
    // Absolute: busy all the time, still over after 12 hours.
    let s = session_for(&nester, user, Stage::Full).await;
    for _ in 0..(12 * 60 / 20 - 1) {
        clock.advance(time::Duration::minutes(20));
        assert_eq!(get(s.clone()).await, StatusCode::OK);
    }
    clock.advance(time::Duration::minutes(20));
    assert_eq!(get(s).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nester.scalar(&format!(
            "SELECT count(*) FROM sessions WHERE user_id = {user}"
        )),
        0,
        "expired sessions are deleted"
    );
}
