//! State-changing requests: the CSRF token and the Origin checks, and the security headers on every
//! kind of response.

use hyper::{Method, StatusCode};
use nester::db::Role;

use super::*;
use crate::harness::{TestNester, cookie_in, form_body};

#[tokio::test]
async fn csrf_token_and_origin_are_checked() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("forms", Role::Support).await;
    let session = nester.login(&name, &password).await.unwrap();
    let post = |fields: Fields, headers: Fields| {
        let nester = &nester;
        let session = session.clone();
        async move {
            let mut h = vec![
                ("cookie", session.cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            nester
                .anonymous(
                    Method::POST,
                    "/account/tokens",
                    &h,
                    form_body(&pairs).into_bytes(),
                )
                .await
        }
    };
    let name_field = ("name", "ci".to_string());
    let good = ("csrf", session.csrf.clone());
    let cases: Vec<(&str, Fields, Fields)> = vec![
        ("no token", vec![name_field.clone()], vec![]),
        (
            "wrong token",
            vec![name_field.clone(), ("csrf", "x".repeat(43))],
            vec![],
        ),
        (
            "empty token",
            vec![name_field.clone(), ("csrf", String::new())],
            vec![],
        ),
        (
            "other origin",
            vec![name_field.clone(), good.clone()],
            vec![("origin", "https://evil.example".into())],
        ),
        (
            "cross-site fetch",
            vec![name_field.clone(), good.clone()],
            vec![("sec-fetch-site", "cross-site".into())],
        ),
        (
            "same-site is not same-origin",
            vec![name_field.clone(), good.clone()],
            vec![("sec-fetch-site", "same-site".into())],
        ),
    ];
    for (what, fields, headers) in cases {
        let r = post(fields, headers).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
        assert_eq!(r.error_code(), "csrf", "{what}");
    }
    assert_eq!(
        nester.scalar("SELECT count(*) FROM api_tokens"),
        1,
        "only the harness's"
    );
    // The token in a header works as well as the form field.
    let r = post(
        vec![name_field.clone()],
        vec![
            ("origin", "https://127.0.0.1".into()),
            ("x-csrf-token", session.csrf.clone()),
        ],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(nester.scalar("SELECT count(*) FROM api_tokens"), 2);
    // The sign-in form: its token cookie and field must match, from this site.
    let login_cases = [
        ("no cookie", None, "x".repeat(43), "https://127.0.0.1"),
        (
            "other origin",
            Some("y".repeat(43)),
            "y".repeat(43),
            "https://evil.example",
        ),
        (
            "mismatch",
            Some("y".repeat(43)),
            "z".repeat(43),
            "https://127.0.0.1",
        ),
    ];
    for (what, cookie, field, origin) in login_cases {
        let cookie = cookie
            .map(|c| format!("__Host-seahawks-login={c}"))
            .unwrap_or_default();
        let body = form_body(&[
            ("username", &name),
            ("password", &password),
            ("csrf", &field),
        ]);
        let r = nester
            .anonymous(
                Method::POST,
                "/login",
                &[
                    ("cookie", &cookie),
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", origin),
                ],
                body.into_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
        assert!(cookie_in(&r, "__Host-seahawks-session").is_none(), "{what}");
    }
}

#[tokio::test]
async fn security_headers_on_every_kind_of_response() {
    let nester = TestNester::start().await;
    let noc = nester.noc.clone().unwrap();
    let responses = [
        ("page", nester.get("/").await),
        (
            "sign-in form",
            nester
                .anonymous(Method::GET, "/login", &[], Vec::new())
                .await,
        ),
        ("static", nester.get("/static/style.css").await),
        ("404", nester.get("/no/such/page").await),
        (
            "401",
            nester
                .anonymous(Method::GET, "/api/v1/probes", &[], Vec::new())
                .await,
        ),
        (
            "403",
            nester
                .as_session(&noc, Method::GET, "/admin/users", &[], vec![])
                .await,
        ),
        (
            "405",
            nester.web_request(Method::DELETE, "/api/v1/probes").await,
        ),
        (
            "413",
            nester
                .as_session(
                    &noc,
                    Method::POST,
                    "/account/password",
                    &[("current", &"x".repeat(70_000))],
                    vec![],
                )
                .await,
        ),
    ];
    for (what, r) in &responses {
        assert!(
            r.header("strict-transport-security")
                .starts_with("max-age=31536000"),
            "{what}"
        );
        let csp = r.header("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'")
                && csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline"),
            "{what}: {csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(r.header("referrer-policy"), "same-origin", "{what}");
    }
    assert_eq!(
        responses[2].1.header("cache-control"),
        "public, max-age=3600"
    );
    assert_eq!(responses[7].1.status, StatusCode::PAYLOAD_TOO_LARGE);
}
