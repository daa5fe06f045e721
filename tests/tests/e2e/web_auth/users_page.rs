//! Admins manage users from the pages.

use hyper::{Method, StatusCode};
use nester::db::Role;
use nester::db::Stage;

use super::*;
use crate::harness::TestNester;
use crate::sessions::session_for;

#[tokio::test]
async fn admins_manage_users_from_the_pages() {
    let nester = TestNester::start().await;
    nester.add_user("boss", Role::Admin).await;
    let boss = session_for(&nester, nester.user_id("boss").await, Stage::Full).await;
    let added = nester
        .as_session(
            &boss,
            Method::POST,
            "/admin/users",
            &[("username", "newbie"), ("role", "support")],
            vec![],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK);
    let password = shown_once(&added).remove(0);
    let newbie = nester.login("newbie", &password).await.unwrap();
    for (fields, status) in [
        (
            vec![("action", "set-role"), ("role", "noc")],
            StatusCode::SEE_OTHER,
        ),
        (
            vec![("action", "set-role"), ("role", "root")],
            StatusCode::BAD_REQUEST,
        ),
        (vec![("action", "explode")], StatusCode::BAD_REQUEST),
    ] {
        let r = nester
            .as_session(&boss, Method::POST, "/admin/users/newbie", &fields, vec![])
            .await;
        assert_eq!(r.status, status, "{fields:?}");
    }
    let page = nester
        .as_session(&boss, Method::GET, "/admin/users", &[], vec![])
        .await;
    assert!(String::from_utf8_lossy(&page.body).contains("<td>newbie</td><td>noc</td>"));
    let r = nester
        .as_session(
            &boss,
            Method::POST,
            "/admin/users/newbie",
            &[("action", "disable")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = nester
        .as_session(&newbie, Method::GET, "/", &[], vec![])
        .await;
    assert_eq!(r.header("location"), "/login", "disabled: signed out");
    assert!(nester.login("newbie", &password).await.is_err());
    // The last admins cannot lock themselves out.
    nester
        .db()
        .set_disabled(
            nester::db::audit::Actor::cli(),
            "harness-admin".into(),
            true,
        )
        .await
        .unwrap();
    let r = nester
        .as_session(
            &boss,
            Method::POST,
            "/admin/users/boss",
            &[("action", "disable")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // In the same words as `nester user disable`.
    assert!(String::from_utf8_lossy(&r.body).contains("is the last enabled admin"));
    let r = nester
        .as_session(
            &boss,
            Method::POST,
            "/admin/users/ghost",
            &[("action", "enable")],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
