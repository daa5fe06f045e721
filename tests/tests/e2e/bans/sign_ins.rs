//! Failed sign-ins: the address banned, the forwarded client banned behind a trusted proxy, slow
//! and distributed guessing alerted.

use std::time::Duration;

use hyper::StatusCode;
use nester::db::audit::Actor;
use nester::threat::Threats;

use super::*;
use crate::harness::TestNester;

/// Five wrong passwords from one address within the window: banned, and the next
/// connection from it gets no ServerHello; the right password does not help it then.
#[tokio::test]
async fn five_failed_sign_ins_ban_the_address() {
    let nester = nester().await;
    let (user, password) = nester.add_user("target", nester::db::Role::Noc).await;
    let source: std::net::IpAddr = "127.0.0.8".parse().unwrap();
    let attempt = |password: String| sign_in_from(&nester, source, &user, password);
    for i in 0..5 {
        let r = attempt(format!("wrong password {i}")).await.unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status),
            "{}",
            r.status
        );
    }
    assert!(banned_in_time(&nester, "127.0.0.8").await, "never banned");
    assert!(
        attempt(password.clone()).await.is_err(),
        "served while banned"
    );
    let (rule, _) = recorded(&nester, "127.0.0.8/32", 1).await;
    assert_eq!(rule, "sign_in_failures");
}

/// The sign-in form, filled and sent from the local address `source`.
async fn sign_in_from(
    nester: &TestNester,
    source: std::net::IpAddr,
    user: &str,
    password: String,
) -> Result<crate::harness::Response, String> {
    sign_in_via(nester, source, None, user, password).await
}

/// The same, both requests carrying `X-Forwarded-For: forwarded` if given (as a reverse
/// proxy at `source` would send them).
async fn sign_in_via(
    nester: &TestNester,
    source: std::net::IpAddr,
    forwarded: Option<&str>,
    user: &str,
    password: String,
) -> Result<crate::harness::Response, String> {
    let mut conn =
        crate::client::Connection::open_from(Some(source), nester.web, &nester.ca, None).await?;
    let xff: Vec<(&str, &str)> = forwarded
        .map(|f| ("x-forwarded-for", f))
        .into_iter()
        .collect();
    let form = conn
        .send(hyper::Method::GET, "/login", &xff, vec![])
        .await?;
    if form.status == StatusCode::FORBIDDEN {
        return Ok(form);
    }
    let token = crate::client::cookie_in(&form, "__Host-seahawks-login").unwrap();
    let body = crate::client::form_body(&[
        ("username", user),
        ("password", password.as_str()),
        ("csrf", token.as_str()),
    ]);
    let cookie = format!("__Host-seahawks-login={token}");
    let mut headers = vec![
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", "https://127.0.0.1"),
        ("sec-fetch-site", "same-origin"),
    ];
    headers.extend(xff);
    conn.send(hyper::Method::POST, "/login", &headers, body.into_bytes())
        .await
}

/// Behind a trusted reverse proxy: the client it forwards for is the one logged, counted,
/// banned and refused (with a 403, since the accept loop only sees the proxy), while the
/// proxy's other clients are served and the proxy itself is never banned. From anyone else
/// the header is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_one_banned() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_path_buf();
    let nester = TestNester::start_with(|c| {
        c.threats.allow = Vec::new();
        c.threats.trusted_proxies = vec!["127.0.0.9/32".parse().unwrap()];
        c.log.access = nester::config::Destination::File;
        c.log.access_dir = Some(dir.clone());
    })
    .await;
    let (user, password) = nester.add_user("proxied", nester::db::Role::Noc).await;
    let proxy: std::net::IpAddr = "127.0.0.9".parse().unwrap();
    // The client wrote a fake address of its own on the left; the proxy appended the real one.
    let chain = "198.51.100.7, 203.0.113.9";
    for i in 0..5 {
        let r = sign_in_via(&nester, proxy, Some(chain), &user, format!("wrong {i}"))
            .await
            .unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status),
            "{}",
            r.status
        );
    }
    let (rule, _) = recorded(&nester, "203.0.113.9/32", 1).await;
    assert_eq!(rule, "sign_in_failures");
    let refused = sign_in_via(&nester, proxy, Some(chain), &user, password.clone())
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "banned");
    // Others behind the proxy, and the proxy itself, are served (another account: this one is
    // throttled now).
    let (user2, password2) = nester.add_user("proxied2", nester::db::Role::Noc).await;
    let other = sign_in_via(&nester, proxy, Some("203.0.113.10"), &user2, password2)
        .await
        .unwrap();
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.status);
    assert!(
        exchange("127.0.0.9", nester.web, &client_hello())
            .await
            .len()
            > 5
    );
    assert!(
        Threats::new(nester.config.threats.clone(), nester.db().clone())
            .ban(
                Actor::cli(),
                "127.0.0.9/32".parse().unwrap(),
                "manual",
                "x".into(),
                None
            )
            .await
            .is_err(),
        "a trusted proxy was banned"
    );
    assert_eq!(nester.count("bans"), 1);
    // Not a trusted proxy: its header is the client's word, ignored.
    sign_in_via(
        &nester,
        "127.0.0.10".parse().unwrap(),
        Some("203.0.113.11"),
        &user,
        "wrong".into(),
    )
    .await
    .unwrap();

    let logged = || {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let direct = lines.iter().any(|l| l["client_ip"] == "127.0.0.10");
        std::future::ready(if direct { Ok(lines) } else { Err(text) })
    };
    let lines = crate::harness::until(Duration::from_secs(10), logged).await;
    let of = |ip: &'static str| lines.iter().filter(move |l| l["client_ip"] == ip);
    assert!(of("203.0.113.9").count() >= 10, "{lines:#?}");
    assert!(
        of("203.0.113.9").all(|l| l["via"] == "127.0.0.9"),
        "{lines:#?}"
    );
    assert!(
        of("203.0.113.9").any(|l| l["refused"] == "banned"),
        "{lines:#?}"
    );
    assert_eq!(
        of("198.51.100.7").count(),
        0,
        "the client's own entry was believed"
    );
    assert!(
        of("127.0.0.10").all(|l| l.get("via").is_none()),
        "{lines:#?}"
    );
    assert_eq!(
        of("203.0.113.11").count(),
        0,
        "an untrusted peer's header was believed"
    );
}

/// Attacks no address makes obvious: one guess every ten minutes from one address, and one
/// guess each from many addresses. Neither bans anyone; each raises one alert on the account.
#[tokio::test]
async fn slow_and_distributed_guessing_raise_an_alert_on_the_account() {
    let nester = nester().await;
    let alerts = |nester: &TestNester, user: &str| {
        nester.scalar(&format!(
            "SELECT count(*) FROM alerts WHERE rule = 'security.account_attack' AND subject = 'user:{user}'"
        ))
    };
    let count = |nester: &TestNester, user: &str| {
        nester.scalar(&format!(
            "SELECT count FROM alerts WHERE rule = 'security.account_attack' AND subject = 'user:{user}'"
        ))
    };
    let wrong = |i: u32| format!("wrong password {i}");
    // Slow: from the allow-listed address, every ten minutes.
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    for i in 0..nester::threat::accounts::SLOW_FAILURES {
        assert_eq!(
            alerts(&nester, "slow-target"),
            0,
            "alert before attempt {i}"
        );
        let r = sign_in_from(&nester, local, "slow-target", wrong(i))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        nester.clock().advance(time::Duration::minutes(10));
    }
    assert_eq!(alerts(&nester, "slow-target"), 1);
    let details: String = nester
        .sqlite()
        .query_row(
            "SELECT details FROM alerts WHERE rule = 'security.account_attack'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(details.contains("\"kind\":\"slow\""), "{details}");
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE severity = 'critical'"),
        1
    );

    // Distributed: ten addresses, one guess each, five minutes apart (past any wait).
    for i in 0..nester::threat::accounts::DISTRIBUTED_IPS {
        assert_eq!(
            alerts(&nester, "many-target"),
            0,
            "alert before address {i}"
        );
        let source = format!("127.0.1.{}", i + 1).parse().unwrap();
        let r = sign_in_from(&nester, source, "many-target", wrong(i))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "address {i}");
        nester.clock().advance(time::Duration::seconds(301));
    }
    assert_eq!(alerts(&nester, "many-target"), 1);
    sign_in_from(
        &nester,
        "127.0.1.99".parse().unwrap(),
        "many-target",
        wrong(99),
    )
    .await
    .unwrap();
    // One more within the hour: the same alert, counting; and nobody was banned.
    assert_eq!(alerts(&nester, "many-target"), 1);
    assert_eq!(count(&nester, "many-target"), 2);
    assert_eq!(nester.count("bans"), 0);
}
