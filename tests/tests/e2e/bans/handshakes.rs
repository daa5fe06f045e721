//! Bans at the accept loop: a banned address gets no ServerHello, its flood goes to the kernel,
//! failed handshakes ban longer each time.

use std::time::{Duration, Instant};

use hyper::StatusCode;
use nester::db::audit::Actor;
use nester::threat::Threats;

use super::*;
use crate::harness::TestNester;

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
    crate::harness::within(
        Duration::from_secs(5),
        "still refused after the ban was lifted",
        || async {
            (!exchange("127.0.0.9", nester.web, &client_hello())
                .await
                .is_empty())
            .then_some(())
        },
    )
    .await;
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
    crate::harness::within(
        Duration::from_secs(10),
        "still dropped after the ban was lifted",
        || async {
            (exchange("127.0.0.13", nester.web, &client_hello())
                .await
                .first()
                == Some(&0x16))
            .then_some(())
        },
    )
    .await;
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
    crate::harness::within(
        Duration::from_secs(5),
        "still refused after the ban ended",
        || async {
            (!exchange("127.0.0.7", nester.web, &client_hello())
                .await
                .is_empty())
            .then_some(())
        },
    )
    .await;
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
