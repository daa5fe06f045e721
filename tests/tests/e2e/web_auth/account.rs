//! The account page: one's sessions seen and ended, a new password ending them all; API tokens
//! scoped, expiring, revocable and hashed.

use hyper::{Method, StatusCode};
use nester::auth::secret;
use nester::db::Role;
use nester::db::Scope;

use super::*;
use crate::harness::TestNester;

#[tokio::test]
async fn users_see_and_end_their_sessions_and_a_new_password_ends_them_all() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("multi", Role::Noc).await;
    let laptop = nester.login(&name, &password).await.unwrap();
    let wall = nester.login(&name, &password).await.unwrap();
    let account = nester
        .as_session(&laptop, Method::GET, "/account", &[], vec![])
        .await;
    let html = String::from_utf8(account.body).unwrap();
    assert_eq!(
        html.matches("/end\"").count(),
        1,
        "the other session, with an End button"
    );
    assert!(html.contains("this one"));
    let other: i64 = html
        .split("/account/sessions/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let path = format!("/account/sessions/{other}/end");
    let ended = nester
        .as_session(&laptop, Method::POST, &path, &[], vec![])
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    let dead = nester
        .as_session(&wall, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(dead.status, StatusCode::UNAUTHORIZED);
    // Someone else's session id is not yours to end.
    let (_, p2) = nester.add_user("someone", Role::Noc).await;
    let theirs = nester.login("someone", &p2).await.unwrap();
    let their_id = nester.scalar("SELECT max(session_id) FROM sessions");
    let r = nester
        .as_session(
            &laptop,
            Method::POST,
            &format!("/account/sessions/{their_id}/end"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        nester
            .as_session(&theirs, Method::GET, "/", &[], vec![])
            .await
            .status,
        StatusCode::OK
    );

    // A new password: the current one first, then every session ends.
    let second = nester.login(&name, &password).await.unwrap();
    // Guessing the current password is throttled like signing in.
    for expected in [StatusCode::BAD_REQUEST; 5]
        .into_iter()
        .chain([StatusCode::TOO_MANY_REQUESTS])
    {
        let refused = nester
            .as_session(
                &laptop,
                Method::POST,
                "/account/password",
                &[
                    ("current", "not-it-at-all"),
                    ("new", "a brand new passphrase"),
                    ("again", "a brand new passphrase"),
                ],
                vec![],
            )
            .await;
        assert_eq!(refused.status, expected);
    }
    nester.clock().advance(time::Duration::seconds(2));
    let short = nester
        .as_session(
            &laptop,
            Method::POST,
            "/account/password",
            &[("current", &password), ("new", "short"), ("again", "short")],
            vec![],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&short.body).contains("at least 12 characters"));
    let changed = nester
        .as_session(
            &laptop,
            Method::POST,
            "/account/password",
            &[
                ("current", &password),
                ("new", "a brand new passphrase"),
                ("again", "a brand new passphrase"),
            ],
            vec![],
        )
        .await;
    assert_eq!(
        (changed.status, changed.header("location")),
        (StatusCode::SEE_OTHER, "/login")
    );
    for s in [&laptop, &second] {
        let r = nester
            .as_session(s, Method::GET, "/api/v1/probes", &[], vec![])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert!(nester.login(&name, &password).await.is_err());
    nester.clock().advance(time::Duration::seconds(5));
    let after = nester.login(&name, "a brand new passphrase").await.unwrap();
    // Disabling a user ends their sessions too.
    nester
        .db()
        .set_disabled(nester::db::audit::Actor::cli(), name.clone(), true)
        .await
        .unwrap();
    let r = nester
        .as_session(&after, Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_tokens_are_scoped_expiring_revocable_and_hashed() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("scripts", Role::Support).await;
    let session = nester.login(&name, &password).await.unwrap();
    let created = nester
        .as_session(
            &session,
            Method::POST,
            "/account/tokens",
            &[("name", "inventory"), ("days", "1")],
            vec![],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let token = shown_once(&created).remove(0);
    assert!(token.starts_with("shk_"));
    let bearer = format!("Bearer {token}");
    let get = |path| nester.get_authorized(path, &bearer);
    assert_eq!(get("/api/v1/probes").await.status, StatusCode::OK);
    // Not a way into pages.
    assert_eq!(get("/account").await.header("location"), "/login");
    // Stored as a hash only.
    let hash: Vec<u8> = nester
        .sqlite()
        .query_row(
            "SELECT token_hash FROM api_tokens WHERE name = 'inventory'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hash, secret::sha256(&token));
    // Broken headers.
    for header in [
        "Bearer",
        "Bearer shk_nope",
        "Basic c2NyaXB0czpwYXNz",
        &format!("bearer {token}"),
    ] {
        let r = nester.get_authorized("/api/v1/probes", header).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{header}");
    }
    // Expired after its day.
    nester.clock().advance(time::Duration::days(1));
    assert_eq!(get("/api/v1/probes").await.status, StatusCode::UNAUTHORIZED);
    // Revoked: the page's button, then 401.
    let id = nester::ops::api_tokens::create(
        nester.db(),
        nester::db::audit::Actor::cli(),
        nester.user_id(&name).await,
        "second",
        Scope::Read,
        time::Duration::days(30),
    )
    .await
    .unwrap();
    let second = format!("Bearer {id}");
    let ok = nester.get_authorized("/api/v1/probes", &second).await;
    assert_eq!(ok.status, StatusCode::OK);
    let token_id = nester.scalar("SELECT token_id FROM api_tokens WHERE name = 'second'");
    let session = nester.login(&name, &password).await.unwrap();
    let revoked = nester
        .as_session(
            &session,
            Method::POST,
            &format!("/account/tokens/{token_id}/revoke"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let gone = nester.get_authorized("/api/v1/probes", &second).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}
