//! Signing in, over real HTTPS: cookie flags, expiry under a moved clock, TOTP setup, replay
//! and recovery codes, CSRF, throttling, identical refusals, sessions and API tokens. Who may
//! call which route is `access_matrix.rs`.

use hyper::{Method, StatusCode};
use nester::auth::{secret, totp};
use nester::db::Role;
use nester::db::{NewSession, Scope, Stage};

use crate::harness::{Response, TestNester, WebSession, cookie_in, csrf_in, form_body};

/// A session straight in the database (the sign-in form has its own tests).
pub(crate) async fn session_for(nester: &TestNester, user_id: i64, stage: Stage) -> WebSession {
    let token = secret::token().unwrap();
    let csrf = secret::token().unwrap();
    nester
        .db()
        .create_session(NewSession {
            token_hash: secret::sha256(&token),
            user_id,
            stage,
            csrf_token: csrf.clone(),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            now_ms: nester.clock().now_ms(),
        })
        .await
        .unwrap();
    WebSession {
        cookie: format!("__Host-seahawks-session={token}"),
        csrf,
    }
}

/// The secrets a notice page shows once (new password, API token, recovery codes).
fn shown_once(page: &Response) -> Vec<String> {
    String::from_utf8_lossy(&page.body)
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect()
}

fn now_secs(nester: &TestNester) -> u64 {
    u64::try_from(nester.clock().now().unix_timestamp()).unwrap()
}

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// Form fields or headers.
type Fields = Vec<(&'static str, String)>;

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
async fn failures_are_throttled_alike_for_real_and_unknown_users() {
    let nester = TestNester::start().await;
    let (name, password) = nester.add_user("target", Role::Noc).await;
    // Same sign-in form token for both, so the pages can be compared byte for byte.
    let login = |user: String, pass: String| {
        let nester = &nester;
        async move {
            let body = form_body(&[
                ("username", &user),
                ("password", &pass),
                ("csrf", &"t".repeat(43)),
            ]);
            nester
                .anonymous(
                    Method::POST,
                    "/login",
                    &[
                        (
                            "cookie",
                            &format!("__Host-seahawks-login={}", "t".repeat(43)),
                        ),
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("origin", "https://127.0.0.1"),
                        ("user-agent", "throttle-test/1.0"),
                    ],
                    body.into_bytes(),
                )
                .await
        }
    };
    let unknown = login("nobody".into(), "wrong-password-1".into()).await;
    let wrong = login(name.clone(), "wrong-password-1".into()).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "the same page for both");
    let without_date = |r: &Response| {
        let mut h = r.headers.clone();
        h.remove("date");
        h.remove("x-request-id");
        format!("{h:?}")
    };
    assert_eq!(without_date(&wrong), without_date(&unknown));
    assert!(String::from_utf8_lossy(&wrong.body).contains(nester::web::WRONG_CREDENTIALS));

    // Five failures are free; then each attempt waits, growing; the right password too.
    for _ in 0..3 {
        for user in [&name, &"nobody".to_string()] {
            assert_eq!(
                login(user.clone(), "wrong-password-2".into()).await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    // 4 failures each so far; the fifth is still checked.
    assert_eq!(
        login(name.clone(), "wrong-password-3".into()).await.status,
        StatusCode::UNAUTHORIZED
    );
    for user in [&name, &"nobody".to_string()] {
        let _ = login(user.clone(), "wrong-password-3".into()).await;
        let throttled = login(user.clone(), password.clone()).await;
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{user}");
        assert!(throttled.header("retry-after").parse::<u64>().unwrap() >= 1);
    }
    nester.clock().advance(time::Duration::seconds(3));
    assert!(
        nester.login(&name, &password).await.is_ok(),
        "the wait is over"
    );
    // Every attempt is on record with name, IP and user agent.
    let rows: Vec<(String, String, String, String)> = {
        let db = nester.sqlite();
        let mut stmt = db
            .prepare("SELECT username, ip, user_agent, outcome FROM login_events WHERE username IN ('target', 'nobody') ORDER BY event_id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(rows.iter().all(|r| r.1 == "127.0.0.1"));
    let outcomes: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    // The target's sixth wrong password and its right one, and the unknown name's right one.
    assert_eq!(outcomes.iter().filter(|o| **o == "throttled").count(), 3);
    assert_eq!(outcomes.last(), Some(&"success"));
    assert!(
        rows.iter()
            .filter(|r| r.3 == "bad_password")
            .all(|r| r.2 == "throttle-test/1.0")
    );
}

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
    assert!(String::from_utf8_lossy(&r.body).contains("no enabled admin"));
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
