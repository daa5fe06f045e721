//! The role × route matrix: every route of the router, called anonymously, by each role's
//! session and with a read-only API token, against an expectation written by hand.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use nester::auth::secret;
use nester::db::{Role, Stage};

use crate::harness::{Response, TestNester};
use crate::sessions::session_for;

/// What a request came to, as the matrix sees it. Anything else (a 5xx, a guard's refusal
/// in the wrong shape, an unexpected status) fails the test where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 2xx from the handler, with a body (JSON that parses, where it says JSON).
    Ok,
    /// 404 `not_found` from the handler: the ids the matrix sends name nothing.
    Missing,
    /// The handler refused what it was sent (the matrix sends empty forms and queries): 400 or
    /// 415 with the API's error body, or a form page (HTML) saying what is wrong.
    Invalid,
    /// 401 `unauthenticated`, or a page sending the browser to the sign-in form.
    SignIn,
    /// 403 `forbidden`: signed in, but the role may not.
    Denied,
    /// Sent to the home page (a second-factor page for a session that is already past it).
    Home,
}

fn outcome(r: &Response) -> Outcome {
    let shown = format!(
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
            .chars()
            .take(300)
            .collect::<String>()
    );
    let content_type = r.header("content-type");
    let json = content_type == "application/json";
    let html = content_type.starts_with("text/html");
    let page = || {
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.starts_with("<!doctype html>"), "not a page: {shown}");
    };
    match (r.status, r.header("location")) {
        (StatusCode::UNAUTHORIZED, _) if json => {
            assert_eq!(r.error_code(), "unauthenticated", "{shown}");
            assert_eq!(r.header("www-authenticate"), "Bearer realm=\"seahawks\"");
            Outcome::SignIn
        }
        (StatusCode::SEE_OTHER, "/login") => Outcome::SignIn,
        (StatusCode::SEE_OTHER, "/") => Outcome::Home,
        (StatusCode::FORBIDDEN, _) if json => {
            assert_eq!(r.error_code(), "forbidden", "{shown}");
            Outcome::Denied
        }
        (StatusCode::NOT_FOUND, _) if json => {
            assert_eq!(r.error_code(), "not_found", "{shown}");
            Outcome::Missing
        }
        (status, _) if status.is_success() => {
            assert!(!r.body.is_empty(), "empty answer: {shown}");
            if json {
                r.json();
            } else if html {
                page();
            }
            Outcome::Ok
        }
        (StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE, _) if json => {
            let code = r.error_code();
            assert!(
                !["forbidden", "csrf", "unauthenticated", "internal"].contains(&code.as_str()),
                "{shown}"
            );
            Outcome::Invalid
        }
        (StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN, _) if html => {
            page();
            Outcome::Invalid
        }
        (status, location) => panic!("unexpected answer {status} (location `{location}`): {shown}"),
    }
}

#[tokio::test]
async fn every_route_against_every_role() {
    use Outcome::{Denied as D, Home as H, Invalid as I, Missing as M, Ok as A, SignIn as S};
    // Anonymous, noc, support, admin (A: 2xx, M: 404, I: the handler refused the empty input).
    // Written out by hand: the router's own rules are what is being checked, so they cannot
    // be the expectation.
    let expected: BTreeMap<(&str, &str), [Outcome; 4]> = BTreeMap::from([
        (("GET", "/login"), [A, A, A, A]),
        (("POST", "/login"), [I, I, I, I]),
        (("GET", "/login/mfa"), [S, H, H, H]),
        (("POST", "/login/mfa"), [S, H, H, H]),
        (("POST", "/logout"), [S, S, S, S]),
        (("GET", "/account/mfa"), [S, A, A, A]),
        (("POST", "/account/mfa"), [S, I, I, I]),
        (("GET", "/account"), [S, A, A, A]),
        (("POST", "/account/password"), [S, I, I, I]),
        (("POST", "/account/sessions/{session_id}/end"), [S, M, M, M]),
        (("POST", "/account/tokens"), [S, D, I, I]),
        (("POST", "/account/tokens/{token_id}/revoke"), [S, D, M, M]),
        (("GET", "/admin/users"), [S, D, D, A]),
        (("POST", "/admin/users"), [S, D, D, I]),
        (("POST", "/admin/users/{username}"), [S, D, D, I]),
        (("GET", "/admin/audit"), [S, D, D, A]),
        (("GET", "/admin/bans"), [S, D, D, A]),
        (("GET", "/admin/backups"), [S, D, D, A]),
        (("GET", "/account/ssh"), [S, D, A, A]),
        (("POST", "/account/ssh/certificates"), [S, D, I, I]),
        (("POST", "/account/ssh/revoked-keys"), [S, D, D, I]),
        (
            ("POST", "/account/ssh/certificates/{serial}/revoke"),
            [S, D, M, M],
        ),
        (("POST", "/admin/bans/{addr}/{len}/lift"), [S, D, D, M]),
        (("GET", "/admin/probes"), [S, D, D, A]),
        (("GET", "/admin/probes/{probe_id}/revoke"), [S, D, D, M]),
        (("POST", "/admin/probes/{probe_id}/revoke"), [S, D, D, M]),
        (("GET", "/admin/enrollment"), [S, D, D, A]),
        (("POST", "/admin/enrollment"), [S, D, D, I]),
        (
            ("POST", "/admin/enrollment/{token_id}/revoke"),
            [S, D, D, M],
        ),
        (("GET", "/"), [S, A, A, A]),
        (("GET", "/probes/{probe_id}"), [S, M, M, M]),
        (("GET", "/hosts/{host_id}"), [S, M, M, M]),
        (("GET", "/reports/{report_id}"), [S, M, M, M]),
        (("GET", "/search"), [S, A, A, A]),
        (("GET", "/alerts"), [S, A, A, A]),
        (("POST", "/alerts/{id}/acknowledge"), [S, I, D, I]),
        (("POST", "/alerts/silences"), [S, I, D, I]),
        (("POST", "/alerts/silences/{id}/lift"), [S, M, D, M]),
        (("GET", "/static/{file}"), [A, A, A, A]),
        (("GET", "/ca.pem"), [A, A, A, A]),
        (("GET", "/api/v1/openapi.json"), [A, A, A, A]),
        (("GET", "/api/v1/sites"), [S, A, A, A]),
        (("GET", "/api/v1/changes"), [S, A, A, A]),
        (("GET", "/api/v1/hosts"), [S, I, I, I]),
        (("GET", "/api/v1/hosts/{host_id}"), [S, M, M, M]),
        (("GET", "/api/v1/probes"), [S, A, A, A]),
        (("GET", "/api/v1/probes/{probe_id}"), [S, M, M, M]),
        (("GET", "/api/v1/probes/{probe_id}/hosts"), [S, M, M, M]),
        (("GET", "/api/v1/probes/{probe_id}/wan"), [S, M, M, M]),
        (("GET", "/api/v1/probes/{probe_id}/reports"), [S, M, M, M]),
        (("GET", "/api/v1/probes/{probe_id}/gaps"), [S, M, M, M]),
        (("POST", "/api/v1/probes/{probe_id}/revoke"), [S, D, D, M]),
        (("GET", "/api/v1/audit"), [S, D, D, A]),
        (("GET", "/api/v1/bans"), [S, D, D, A]),
        (("GET", "/api/v1/alerts"), [S, A, A, A]),
        (("POST", "/api/v1/alerts/{id}/acknowledge"), [S, I, D, I]),
        (("GET", "/api/v1/silences"), [S, A, A, A]),
        (("POST", "/api/v1/silences"), [S, I, D, I]),
        (("POST", "/api/v1/silences/{id}/lift"), [S, M, D, M]),
        (("GET", "/api/v1/ssh/ca"), [S, A, A, A]),
        (("GET", "/api/v1/ssh/krl"), [S, A, A, A]),
        (("GET", "/api/v1/ssh/certificates"), [S, D, A, A]),
        (("POST", "/api/v1/ssh/certificates"), [S, D, I, I]),
        (
            ("POST", "/api/v1/ssh/certificates/{serial}/revoke"),
            [S, D, M, M],
        ),
        (("GET", "/api/v1/ssh/revoked-keys"), [S, D, D, A]),
        (("POST", "/api/v1/ssh/revoked-keys"), [S, D, D, I]),
        (("GET", "/api/v1/enrollment-tokens"), [S, D, D, A]),
        (("POST", "/api/v1/enrollment-tokens"), [S, D, D, I]),
        (
            ("POST", "/api/v1/enrollment-tokens/{token_id}/revoke"),
            [S, D, D, M],
        ),
        (("GET", "/api/v1/reports/{report_id}"), [S, M, M, M]),
        (("GET", "/api/v1/reports/{report_id}/signed"), [S, M, M, M]),
    ]);
    let routes = nester::web::routes();
    let served: Vec<(&str, &str)> = routes.iter().map(|r| (r.method.as_str(), r.path)).collect();
    let listed: Vec<(&str, &str)> = expected.keys().copied().collect();
    let mut sorted = served.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted, listed,
        "a route was added or removed: give it its expected outcome per role here"
    );

    let nester = TestNester::start().await;
    let mut sessions = vec![None];
    for (name, role) in [
        ("m-noc", Role::Noc),
        ("m-support", Role::Support),
        ("m-admin", Role::Admin),
    ] {
        nester.add_user(name, role).await;
        let id = nester.user_id(name).await;
        sessions.push(Some(session_for(&nester, id, Stage::Full).await));
    }
    let concrete = |path: &str| {
        path.replace("{probe_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{report_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{session_id}", "999999")
            .replace("{host_id}", "999999")
            .replace("{token_id}", "999999")
            .replace("{serial}", "999999")
            .replace("{username}", "nobody-here")
            .replace("{file}", "style.css")
            .replace("{addr}", "192.0.2.1")
            .replace("{len}", "32")
            .replace("{id}", "999999")
    };
    for (method, pattern) in served {
        let path = concrete(pattern);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for (i, session) in sessions.iter().enumerate() {
            let response = match session {
                // Logging out would end the session the next routes use: a fresh one each time.
                Some(s) if pattern == "/logout" => {
                    let user = nester
                        .db()
                        .session(secret::sha256(s.cookie.split('=').nth(1).unwrap()))
                        .await
                        .unwrap()
                        .unwrap()
                        .user_id;
                    let fresh = session_for(&nester, user, Stage::Full).await;
                    nester
                        .as_session(&fresh, method.clone(), &path, &[], vec![])
                        .await
                }
                Some(s) => {
                    nester
                        .as_session(s, method.clone(), &path, &[], vec![])
                        .await
                }
                None => {
                    nester
                        .anonymous(method.clone(), &path, &[], Vec::new())
                        .await
                }
            };
            let want = expected[&(method.as_str(), pattern)][i];
            assert_eq!(
                outcome(&response),
                want,
                "{method} {pattern} as {}: {} {}",
                ["anonymous", "noc", "support", "admin"][i],
                response.status,
                String::from_utf8_lossy(&response.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            );
        }
    }
    // An API token works on the API, read-only, and nowhere else.
    for (method, pattern) in nester::web::routes()
        .iter()
        .map(|r| (r.method.clone(), r.path))
    {
        let bearer = format!("Bearer {}", nester.api_token);
        let path = concrete(pattern);
        let response = nester
            .anonymous(
                method.clone(),
                &path,
                &[("authorization", &bearer)],
                Vec::new(),
            )
            .await;
        // The harness's token is its admin's, read-only: on the API it reads what the admin's
        // session reads, and changes nothing.
        let [anonymous, _, _, admin] = expected[&(method.as_str(), pattern)];
        let want = match (pattern.starts_with("/api/"), method == Method::POST) {
            (true, false) => admin,
            (true, true) => Outcome::Denied,
            (false, _) => anonymous,
        };
        assert_eq!(outcome(&response), want, "{method} {pattern} with a token");
    }
}
