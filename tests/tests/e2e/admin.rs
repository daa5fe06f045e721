//! Probes and enrollment tokens administered over the client API: an admin's read-write token
//! makes a token, a real harvester enrolls with it and reports, the admin revokes the probe.
//! (The same through the dashboard is in `browser.rs`.)

use hyper::{Method, StatusCode};
use nester::db::{Role, Scope};
use serde_json::{Value, json};

use crate::harness::{Refusal, Response, TestNester, closed_port};

/// `Authorization` for a new API token of a new user with `role`.
async fn bearer(nester: &TestNester, role: Role, scope: Scope) -> String {
    let name = format!("api-{}-{}", role.as_str(), scope.as_str());
    nester.add_user(&name, role).await;
    let id = nester.user_id(&name).await;
    let token = nester::ops::api_tokens::create(
        nester.db(),
        nester::db::audit::Actor::cli(),
        id,
        "admin-test",
        scope,
        time::Duration::hours(1),
    )
    .await
    .unwrap();
    format!("Bearer {token}")
}

async fn call(
    nester: &TestNester,
    auth: &str,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut headers = vec![("authorization", auth)];
    headers.extend(content_type.map(|t| ("content-type", t)));
    nester.anonymous(method, path, &headers, body).await
}

async fn post_json(nester: &TestNester, auth: &str, path: &str, body: Value) -> Response {
    let body = serde_json::to_vec(&body).unwrap();
    call(
        nester,
        auth,
        Method::POST,
        path,
        Some("application/json"),
        body,
    )
    .await
}

async fn post(nester: &TestNester, auth: &str, path: &str) -> Response {
    call(nester, auth, Method::POST, path, None, Vec::new()).await
}

async fn tokens(nester: &TestNester, auth: &str) -> Vec<Value> {
    let list = call(
        nester,
        auth,
        Method::GET,
        "/api/v1/enrollment-tokens",
        None,
        vec![],
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    list.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn an_admin_enrolls_a_harvester_with_a_token_from_the_api_then_revokes_the_probe() {
    let nester = TestNester::start().await;
    let admin = bearer(&nester, Role::Admin, Scope::ReadWrite).await;
    let made = post_json(
        &nester,
        &admin,
        "/api/v1/enrollment-tokens",
        json!({"site": "kc-east", "ttl": "2h", "uses": 1}),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json());
    let made = made.json();
    let token = made["token"].as_str().unwrap().to_string();
    assert_eq!(made["site"], "kc-east");
    assert_eq!(made["uses"], 1);
    assert_eq!(made["ingest"], nester.ingest.to_string());
    assert!(
        made["harvester_command"]
            .as_str()
            .unwrap()
            .contains("harvester enroll"),
        "{made}"
    );
    let expires = time::OffsetDateTime::parse(
        made["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires - nester.clock().now();
    assert!(
        lifetime > time::Duration::minutes(119) && lifetime <= time::Duration::hours(2),
        "{lifetime}"
    );

    // Listed with its state, and its secret nowhere in the list.
    let listed = tokens(&nester, &admin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["token_id"], made["token_id"]);
    assert_eq!(listed[0]["state"], "usable");
    let secret = shared::enroll::EnrollmentToken::parse(&token)
        .unwrap()
        .secret;
    assert!(!serde_json::to_string(&listed).unwrap().contains(&secret));

    // A real harvester enrolls with it and delivers a report.
    let state = tempfile::tempdir().unwrap();
    let (probe_id, site) = harvester::enroll::enroll(&token, &state.path().join("h"))
        .await
        .unwrap();
    assert_eq!(site, "kc-east");
    let listed = tokens(&nester, &admin).await;
    assert_eq!(
        (listed[0]["state"].as_str(), listed[0]["uses"].as_u64()),
        (Some("used_up"), Some(1))
    );
    let probe = crate::harness::Probe {
        id: probe_id,
        state_dir: state.path().join("h"),
        _temp: state,
    };
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    agent.cycle().await.unwrap();
    assert_eq!(nester.count("reports"), 1);

    // Revoked over the API: its next delivery is refused; revoking again finds nothing.
    let path = format!("/api/v1/probes/{probe_id}/revoke");
    let revoked = post(&nester, &admin, &path).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let err = format!("{:#}", agent.cycle().await.unwrap_err());
    assert!(err.contains("probe_revoked"), "{err}");
    assert_eq!(nester.count("reports"), 1);
    let again = post(&nester, &admin, &path).await;
    assert_eq!(
        (again.status, again.error_code()),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let probe = nester
        .get(&format!("/api/v1/probes/{probe_id}"))
        .await
        .json();
    assert_eq!(probe["revoked"], true);

    // A token revoked before anyone used it admits nobody.
    let second = post_json(
        &nester,
        &admin,
        "/api/v1/enrollment-tokens",
        json!({"site": "kc-west"}),
    )
    .await
    .json();
    let path = format!(
        "/api/v1/enrollment-tokens/{}/revoke",
        second["token_id"].as_str().unwrap()
    );
    assert_eq!(
        post(&nester, &admin, &path).await.status,
        StatusCode::NO_CONTENT
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let refused = harvester::enroll::enroll(second["token"].as_str().unwrap(), elsewhere.path())
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("revoked"), "{refused:#}");
    assert_eq!(
        post(&nester, &admin, &path).await.status,
        StatusCode::NOT_FOUND
    );
    let states: Vec<_> = tokens(&nester, &admin)
        .await
        .iter()
        .map(|t| t["state"].clone())
        .collect();
    assert_eq!(states, [json!("used_up"), json!("revoked")]);
    assert_eq!(nester.count("probes"), 1);
}

#[tokio::test]
async fn bad_token_requests_are_refused_and_make_nothing() {
    let nester = TestNester::start().await;
    let admin = bearer(&nester, Role::Admin, Scope::ReadWrite).await;
    let json_type = Some("application/json");
    let long_site = "s".repeat(129);
    let cases: Vec<Refusal> = vec![
        (
            "a lifetime that is no duration",
            json_type,
            br#"{"site":"kc","ttl":"forever"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "a lifetime over 30 days",
            json_type,
            br#"{"site":"kc","ttl":"31d"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "a lifetime under a minute",
            json_type,
            br#"{"site":"kc","ttl":"10s"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "no use",
            json_type,
            br#"{"site":"kc","uses":0}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "too many uses",
            json_type,
            br#"{"site":"kc","uses":10001}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "negative uses",
            json_type,
            br#"{"site":"kc","uses":-1}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "an empty site",
            json_type,
            br#"{"site":"  "}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "a site too long",
            json_type,
            format!(r#"{{"site":"{long_site}"}}"#).into_bytes(),
            StatusCode::BAD_REQUEST,
            "bad_token_request",
        ),
        (
            "no site",
            json_type,
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "an unknown field",
            json_type,
            br#"{"site":"kc","admin":true}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "not JSON",
            json_type,
            b"site=kc".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "no content type",
            None,
            br#"{"site":"kc"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "an oversized body",
            json_type,
            format!(r#"{{"site":"{}"}}"#, "s".repeat(2 << 20)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (name, content_type, body, status, code) in cases {
        let r = call(
            &nester,
            &admin,
            Method::POST,
            "/api/v1/enrollment-tokens",
            content_type,
            body,
        )
        .await;
        assert_eq!(
            (r.status, r.error_code()),
            (status, code.to_string()),
            "{name}"
        );
    }
    let bad_id = post(&nester, &admin, "/api/v1/probes/not-a-probe/revoke").await;
    assert_eq!(
        (bad_id.status, bad_id.error_code()),
        (StatusCode::BAD_REQUEST, "bad_path".into())
    );

    // Only an admin's read-write token changes anything.
    let good = json!({"site": "kc"});
    for (role, scope) in [
        (Role::Admin, Scope::Read),
        (Role::Support, Scope::ReadWrite),
        (Role::Noc, Scope::ReadWrite),
    ] {
        let other = bearer(&nester, role, scope).await;
        let r = post_json(&nester, &other, "/api/v1/enrollment-tokens", good.clone()).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::FORBIDDEN, "forbidden".into()),
            "{role:?} {scope:?}"
        );
    }
    assert_eq!(nester.count("enrollment_tokens"), 0);
    assert!(tokens(&nester, &admin).await.is_empty());
}

/// The admin page's form refuses what the API refuses, saying why on the page, and makes
/// nothing; a good form shows the token once.
#[tokio::test]
async fn the_enrollment_page_refuses_bad_forms_on_the_page() {
    let nester = TestNester::start().await;
    nester.add_user("page-admin", Role::Admin).await;
    let id = nester.user_id("page-admin").await;
    let admin = crate::sessions::session_for(&nester, id, nester::db::Stage::Full).await;
    let form = |site, ttl, uses| vec![("site", site), ("ttl", ttl), ("uses", uses)];
    for (fields, says) in [
        (form("kc", "forever", "1"), "not a lifetime"),
        (form("kc", "40d", "1"), "30 days"),
        (form("kc", "30m", "none"), "whole number"),
        (form("kc", "30m", "0"), "uses"),
        (form("", "30m", "1"), "site"),
    ] {
        let r = nester
            .as_session(&admin, Method::POST, "/admin/enrollment", &fields, vec![])
            .await;
        let page = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(
            page.contains("role=\"alert\"") && page.contains(says),
            "{fields:?}: {page}"
        );
    }
    assert_eq!(nester.count("enrollment_tokens"), 0);

    let r = nester
        .as_session(
            &admin,
            Method::POST,
            "/admin/enrollment",
            &form("kc", "2h", "3"),
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = String::from_utf8_lossy(&r.body).to_string();
    let token = page
        .split("<code id=\"token\" class=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap();
    let parsed = shared::enroll::EnrollmentToken::parse(token).unwrap();
    assert_eq!(parsed.ingest, nester.ingest.to_string());
    assert!(page.contains("admits 3 probes"), "{page}");
    // The list shows it, never its secret; revoking from the page takes effect.
    let list = nester
        .as_session(&admin, Method::GET, "/admin/enrollment", &[], vec![])
        .await;
    let list = String::from_utf8_lossy(&list.body);
    assert!(list.contains(&parsed.id) && !list.contains(&parsed.secret));
    let path = format!("/admin/enrollment/{}/revoke", parsed.id);
    let r = nester
        .as_session(&admin, Method::POST, &path, &[], vec![])
        .await;
    assert_eq!(
        (r.status.as_u16(), r.header("location")),
        (303, "/admin/enrollment")
    );
    assert_eq!(
        nester.scalar("SELECT count(*) FROM enrollment_tokens WHERE revoked_ms IS NOT NULL"),
        1
    );
}
