//! Bans, enforced in the accept loop before any TLS byte: a banned address gets its
//! connection closed without a ServerHello, while others are served through a flood of its
//! connections; failed handshakes get an address banned, longer at each repeat, remembered
//! across a restart; the allow-list is never banned, not even by hand; and slow or
//! distributed guessing on one account raises an alert.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use nester::db::audit::Actor;
use nester::threat::Threats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestNester;
use crate::process::{NesterFiles, run, stderr};

/// Loopback is allow-listed by default; these tests keep only 127.0.0.1 there, so other
/// loopback addresses stand for attackers. Floods stay with the accept loop here (the kernel
/// filter has a test of its own).
async fn nester() -> TestNester {
    TestNester::start_with(|c| {
        c.threats.allow = vec!["127.0.0.1/32".parse().unwrap()];
        c.threats.tls_failures = 3;
        c.threats.kernel_after = 0;
    })
    .await
}

/// Connects from `source` to `to`, sends `bytes`, and returns the first bytes that came
/// back (none when the connection was closed on us or never made; at most 7 s).
async fn exchange(source: &str, to: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let Attempt::Made(mut tcp) = connect_from(source, to, Duration::from_secs(2)).await else {
        return Vec::new();
    };
    let _ = tcp.write_all(bytes).await;
    let mut got = vec![0; 4096];
    match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut got)).await {
        Ok(Ok(n)) => got.truncate(n),
        _ => got.clear(),
    }
    got
}

/// What a connection attempt came to.
enum Attempt {
    Made(TcpStream),
    /// Reset (or refused) by the other end: the nester's accept loop saw it.
    Reset,
    /// No answer within the limit: the SYN was dropped.
    Silent,
}

/// A TCP connection attempt from `source` to `to`, waiting at most `limit`.
async fn connect_from(source: &str, to: SocketAddr, limit: Duration) -> Attempt {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    match tokio::time::timeout(limit, socket.connect(to)).await {
        Ok(Ok(tcp)) => Attempt::Made(tcp),
        Ok(Err(_)) => Attempt::Reset,
        Err(_) => Attempt::Silent,
    }
}

/// A TLS ClientHello as a real client sends it.
fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

async fn banned_in_time(nester: &TestNester, source: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if exchange(source, nester.web, &client_hello())
            .await
            .is_empty()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The recorded ban of `prefix` once the database has it (it is written just after the
/// accept loop starts refusing), at its `offences`-th offence: rule and length in ms.
async fn recorded(nester: &TestNester, prefix: &str, offences: i64) -> (String, i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let row: Option<(String, i64, i64)> = nester
            .sqlite()
            .query_row(
                "SELECT rule, expires_ms - created_ms, offences FROM bans WHERE prefix = ?1",
                [prefix],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        if let Some((rule, length, n)) = row
            && n == offences
        {
            return (rule, length);
        }
        assert!(
            Instant::now() < deadline,
            "ban {offences} of {prefix} never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_banned_address_gets_no_server_hello_while_others_are_served_through_its_flood() {
    let nester = nester().await;
    // Before: a ServerHello (a TLS handshake record, 0x16) answers the ClientHello.
    let answer = exchange("127.0.0.9", nester.web, &client_hello()).await;
    assert_eq!(answer.first(), Some(&0x16), "{answer:?}");
    // Banned by hand, as `nester ban add` does from another process: picked up in seconds.
    let threats = Threats::new(nester.config.threats.clone(), nester.db().clone());
    let prefix = threats.prefix("127.0.0.9".parse().unwrap());
    threats
        .ban(
            Actor::cli(),
            prefix,
            "manual",
            "test".into(),
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert!(banned_in_time(&nester, "127.0.0.9").await, "never refused");
    assert!(
        exchange("127.0.0.9", nester.ingest, &client_hello())
            .await
            .is_empty()
    );

    // A flood from the banned address (about 1,000 connections a second, for 2 s) does not
    // keep anyone else out.
    let target = nester.web;
    let flood = tokio::spawn(async move {
        let mut n = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) && n < 4_000 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.9:0".parse().unwrap()).unwrap();
            if let Ok(tcp) = socket.connect(target).await {
                drop(tcp);
            }
            n += 1;
            if n % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
        n
    });
    for _ in 0..20 {
        let r = nester.get("/api/v1/probes").await;
        assert_eq!(r.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flooded = flood.await.unwrap();
    assert!(flooded >= 1_000, "{flooded} connections");
    // The neighbour on the same machine is not banned: IPv4 bans are per address.
    assert_eq!(
        exchange("127.0.0.10", nester.web, &client_hello())
            .await
            .first(),
        Some(&0x16)
    );

    // Lifted: served again.
    assert!(threats.unban(Actor::cli(), prefix).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while exchange("127.0.0.9", nester.web, &client_hello())
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "still refused after the ban was lifted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A banned address that floods goes to the kernel: its connections are no longer even
/// made (the SYN is dropped: no reset, no accept, no log line), while others are served;
/// lifted, it is served again.
#[tokio::test]
async fn a_banned_flood_is_dropped_by_the_kernel_until_the_ban_is_lifted() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_path_buf();
    let nester = TestNester::start_with(|c| {
        c.threats.allow = vec!["127.0.0.1/32".parse().unwrap()];
        c.threats.kernel_after = 20;
        c.log.access = nester::config::Destination::File;
        c.log.access_dir = Some(dir.clone());
    })
    .await;
    let threats = Threats::new(nester.config.threats.clone(), nester.db().clone());
    let prefix = threats.prefix("127.0.0.13".parse().unwrap());
    threats
        .ban(Actor::cli(), prefix, "manual", "flood".into(), None)
        .await
        .unwrap();
    assert!(banned_in_time(&nester, "127.0.0.13").await, "never refused");
    let refused_lines = || {
        std::fs::read_to_string(dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"client_ip\":\"127.0.0.13\"") && l.contains("\"banned\""))
            .count()
    };
    // Refused by the accept loop (a reset) until 20 come within a second.
    let mut answered = 0;
    for _ in 0..100 {
        match connect_from("127.0.0.13", nester.web, Duration::from_millis(300)).await {
            Attempt::Made(_) | Attempt::Reset => answered += 1,
            Attempt::Silent => break,
        }
    }
    assert!(
        (20..100).contains(&answered),
        "{answered} connections answered"
    );
    // From now on the SYN goes unanswered, on every listener: the connection is never made.
    for _ in 0..3 {
        let attempt = connect_from("127.0.0.13", nester.ingest, Duration::from_millis(500)).await;
        assert!(matches!(attempt, Attempt::Silent), "answered");
    }
    assert_eq!(
        exchange("127.0.0.14", nester.web, &client_hello())
            .await
            .first(),
        Some(&0x16),
        "a neighbour was refused"
    );
    // No more log lines: the nester never sees the flood.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged = refused_lines();
    assert!(logged >= 20, "{logged} refusals logged");
    for _ in 0..20 {
        connect_from("127.0.0.13", nester.web, Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(refused_lines(), logged);
    // Lifted (from another process, as `nester ban remove` does): served again in seconds.
    assert!(threats.unban(Actor::cli(), prefix).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while exchange("127.0.0.13", nester.web, &client_hello())
        .await
        .first()
        != Some(&0x16)
    {
        assert!(
            Instant::now() < deadline,
            "still dropped after the ban was lifted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn failed_handshakes_ban_an_address_longer_each_time_across_a_restart() {
    let mut nester = nester().await;
    let garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // The allow-listed address is never banned, however much garbage it sends.
    for _ in 0..10 {
        exchange("127.0.0.1", nester.ingest, garbage).await;
    }
    // Three failed handshakes from another: banned (10 minutes, the first time).
    for _ in 0..3 {
        exchange("127.0.0.7", nester.ingest, garbage).await;
    }
    assert!(banned_in_time(&nester, "127.0.0.7").await);
    assert!(
        !exchange("127.0.0.1", nester.web, &client_hello())
            .await
            .is_empty()
    );
    assert_eq!(recorded(&nester, "127.0.0.7/32", 1).await.1, 600_000);

    // A restart keeps it.
    nester.restart().await;
    assert!(
        exchange("127.0.0.7", nester.web, &client_hello())
            .await
            .is_empty()
    );

    // Once it ends, the address is served; the next offence bans it twice as long.
    nester.clock().advance(time::Duration::minutes(11));
    let deadline = Instant::now() + Duration::from_secs(5);
    while exchange("127.0.0.7", nester.web, &client_hello())
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "still refused after the ban ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        exchange("127.0.0.7", nester.ingest, garbage).await;
    }
    assert!(banned_in_time(&nester, "127.0.0.7").await);
    let (rule, length) = recorded(&nester, "127.0.0.7/32", 2).await;
    assert_eq!((rule.as_str(), length), ("tls_failures", 1_200_000));
    // Each ban is in the audit log.
    assert_eq!(
        nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'ban.add' AND target = 'prefix:127.0.0.7/32'"),
        2
    );
}

#[test]
fn nester_ban_lists_adds_and_removes_and_refuses_the_allow_list() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let cli = |args: &[&str]| {
        let mut all = vec!["ban"];
        all.extend(args);
        all.extend(["--config", files.config_arg()]);
        run("nester", &all)
    };
    let added = cli(&[
        "add",
        "2001:db8:1:2::77",
        "--duration",
        "2h",
        "--reason",
        "scanner",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let list = String::from_utf8(cli(&["list"]).stdout).unwrap();
    assert!(
        list.contains("2001:db8:1:2::/64") && list.contains("scanner"),
        "{list}"
    );
    let refused = cli(&["add", "127.0.0.1"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("allow-list"),
        "{}",
        stderr(&refused)
    );
    let bad = cli(&["add", "not-an-address"]);
    assert!(!bad.status.success() && stderr(&bad).contains("not an IP address"));
    let removed = cli(&["remove", "2001:db8:1:2::1"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    let again = cli(&["remove", "2001:db8:1:2::1"]);
    assert!(!again.status.success() && stderr(&again).contains("not banned"));
    let list = String::from_utf8(cli(&["list"]).stdout).unwrap();
    assert!(!list.contains("2001:db8"), "{list}");
}

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

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.iter().any(|l| l["client_ip"] == "127.0.0.10") {
            break lines;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
