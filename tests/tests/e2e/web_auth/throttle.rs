//! Failed sign-ins throttled alike for real and unknown users.

use hyper::{Method, StatusCode};
use nester::db::Role;

use crate::harness::{Response, TestNester, form_body};

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
