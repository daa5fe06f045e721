//! Two-factor sign-in: TOTP setup, a code used once, replay refused, recovery codes.

use hyper::{Method, StatusCode};
use nester::auth::totp;
use nester::db::Role;

use super::*;
use crate::harness::{TestNester, WebSession, cookie_in, csrf_in};

/// An admin without TOTP is taken to set it up; afterwards signing in takes a code, each
/// code works once, and each recovery code works once.
#[tokio::test]
async fn totp_setup_sign_in_replay_and_recovery_codes() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("root-ana", Role::Admin).await;
    let response = nester.submit_login(&name, &password).await;
    assert_eq!(response.header("location"), "/account/mfa");
    let session = {
        let token = cookie_in(&response, "__Host-seahawks-session").unwrap();
        WebSession {
            cookie: format!("__Host-seahawks-session={token}"),
            csrf: String::new(),
        }
    };
    // Nothing else until TOTP is set up: pages go to the setup, the API says 401.
    let home = nester
        .as_session(&session, Method::GET, "/admin/users", &[], vec![])
        .await;
    assert_eq!(
        (home.status, home.header("location")),
        (StatusCode::SEE_OTHER, "/account/mfa")
    );
    let api = nester
        .as_session(&session, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);

    let setup = nester
        .as_session(&session, Method::GET, "/account/mfa", &[], vec![])
        .await;
    assert_eq!(setup.status, StatusCode::OK);
    let html = String::from_utf8(setup.body.clone()).unwrap();
    assert!(
        html.contains("<svg") && html.contains("<path d=\"M"),
        "a QR code drawn on the server"
    );
    let secret_b32 = html
        .split("id=\"totp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let secret = base32_decode(secret_b32);
    let session = WebSession {
        csrf: csrf_in(&setup.body),
        ..session
    };
    let wrong = nester
        .as_session(
            &session,
            Method::POST,
            "/account/mfa",
            &[("code", "000000")],
            vec![],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let code = totp::code_at(&secret, now_secs(&nester));
    let done = nester
        .as_session(
            &session,
            Method::POST,
            "/account/mfa",
            &[("code", &code)],
            vec![],
        )
        .await;
    assert_eq!(
        done.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&done.body)
    );
    let recovery = shown_once(&done);
    assert_eq!(recovery.len(), 10);
    // A new session token once TOTP is on; the setup one is gone.
    let full = cookie_in(&done, "__Host-seahawks-session").unwrap();
    assert_ne!(format!("__Host-seahawks-session={full}"), session.cookie);
    let old = nester
        .as_session(&session, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nester.scalar("SELECT count(*) FROM recovery_codes WHERE used_ms IS NULL"),
        10
    );

    // Signing in again: password, then a code. The code just used is refused (replay).
    let sign_in = |code: String| {
        let nester = &nester;
        let (name, password) = (name.clone(), password.clone());
        async move {
            let r = nester.submit_login(&name, &password).await;
            assert_eq!(r.header("location"), "/login/mfa");
            let token = cookie_in(&r, "__Host-seahawks-session").unwrap();
            let pending = WebSession {
                cookie: format!("__Host-seahawks-session={token}"),
                csrf: String::new(),
            };
            let form = nester
                .as_session(&pending, Method::GET, "/login/mfa", &[], vec![])
                .await;
            let pending = WebSession {
                csrf: csrf_in(&form.body),
                ..pending
            };
            // Not signed in yet.
            let early = nester
                .as_session(&pending, Method::GET, "/", &[], vec![])
                .await;
            assert_eq!(early.header("location"), "/login/mfa");
            nester
                .as_session(
                    &pending,
                    Method::POST,
                    "/login/mfa",
                    &[("code", &code)],
                    vec![],
                )
                .await
        }
    };
    let replay = sign_in(code.clone()).await;
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "a code is good once"
    );
    nester.clock().advance(time::Duration::seconds(30));
    let fresh = totp::code_at(&secret, now_secs(&nester));
    let ok = sign_in(fresh.clone()).await;
    assert_eq!(
        (ok.status, ok.header("location")),
        (StatusCode::SEE_OTHER, "/")
    );
    let again = sign_in(fresh).await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "replayed within its window"
    );
    // Steps only move forward: once a step is accepted, an older one is refused even if it
    // was never used and is still inside the one-step skew window.
    nester.clock().advance(time::Duration::seconds(60));
    let newer = totp::code_at(&secret, now_secs(&nester));
    assert_eq!(sign_in(newer).await.header("location"), "/");
    let older = totp::code_at(&secret, now_secs(&nester) - 30);
    assert!(
        totp::matching_step(&secret, &older, now_secs(&nester)).is_some(),
        "the older code is inside the window"
    );
    assert_eq!(
        sign_in(older).await.status,
        StatusCode::UNAUTHORIZED,
        "an older step after a newer one"
    );
    // A recovery code (typed in capitals, without the dash) works once.
    let typed = recovery[3].replace('-', "").to_uppercase();
    let ok = sign_in(typed.clone()).await;
    assert_eq!(
        ok.header("location"),
        "/",
        "{}",
        String::from_utf8_lossy(&ok.body)
    );
    assert_eq!(sign_in(typed).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nester.scalar("SELECT count(*) FROM recovery_codes WHERE used_ms IS NULL"),
        9
    );
    // Only hashes are stored.
    let stored: Vec<u8> = nester
        .sqlite()
        .query_row("SELECT code_hash FROM recovery_codes LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored.len(), 32);
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
