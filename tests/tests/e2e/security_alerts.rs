//! Security alerts from detection: a revoked probe's key still in use, a report with a bad
//! signature and an enrollment with a bad token each raise an alert (one per condition, its
//! count rising), from any address, allow-listed or not; repeated from one address they ban
//! it; a ban raises its own alert; alerts are in the API and on the page for every role; a
//! quiet one is resolved and kept as history. The access log names each refusal's code.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::{Method, StatusCode};
use nester::config::Destination;
use nester::db::Role;
use nester::db::audit::Actor;
use serde_json::Value;
use shared::protocol::{ENROLL_PATH, JWS_MEDIA_TYPE, REPORTS_PATH};

use crate::harness::{Connection, Probe, TestNester, closed_port, eventually};

/// The open alert of `rule` about `subject` once its count reaches `count` (the threats job
/// writes them every two seconds): severity, state, count.
async fn alert(
    nester: &TestNester,
    rule: &str,
    subject: &str,
    count: i64,
) -> (String, String, i64) {
    eventually(&format!("{rule} on {subject} with count {count}"), || {
        nester.open_alert(rule, subject).filter(|a| a.2 >= count)
    })
    .await
}

/// A report of `probe`'s, signed.
async fn signed_report(nester: &TestNester, probe: &Probe) -> String {
    let mut agent = nester.agent(probe, &closed_port().to_string());
    agent.produce().await.unwrap().unwrap().jws
}

#[tokio::test]
async fn revoked_probes_bad_signatures_and_bad_tokens_raise_one_alert_each() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_path_buf();
    let nester = TestNester::start_with(|c| {
        c.log.access = Destination::File;
        c.log.access_dir = Some(dir.clone());
    })
    .await;
    let (revoked, signer) = (nester.probe().await, nester.probe().await);

    // A revoked probe keeps delivering: refused every time, one critical alert counting.
    let report = signed_report(&nester, &revoked).await;
    nester
        .db()
        .revoke_probe(Actor::cli(), revoked.id)
        .await
        .unwrap();
    let mut connection = Connection::open(nester.ingest, &nester.ca, Some(&revoked.client_cert()))
        .await
        .unwrap();
    for _ in 0..3 {
        let r = connection
            .send(
                Method::POST,
                REPORTS_PATH,
                &[("content-type", JWS_MEDIA_TYPE)],
                report.clone().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(r.error_code(), "probe_revoked");
    }
    let subject = format!("probe:{}", revoked.id);
    assert_eq!(
        alert(&nester, "security.revoked_probe", &subject, 3).await,
        ("critical".into(), "firing".into(), 3)
    );

    // A report with a broken signature.
    let good = signed_report(&nester, &signer).await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let zeros = URL_SAFE_NO_PAD.encode([0u8; 64]);
    parts[2] = &zeros;
    let r = nester
        .post_ingest(
            Some(&signer.client_cert()),
            REPORTS_PATH,
            Some(JWS_MEDIA_TYPE),
            parts.join("."),
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), "bad_signature");
    let subject = format!("probe:{}", signer.id);
    assert_eq!(
        alert(&nester, "security.bad_signature", &subject, 1)
            .await
            .0,
        "critical"
    );

    // An enrollment with an expired token, from an allow-listed address: alerted, not banned.
    // (Expired by moving its expiry, not the clock: that would make the alerts above quiet.)
    let token = nester.token("kc", time::Duration::minutes(30), 1).await;
    let parsed = shared::enroll::EnrollmentToken::parse(&token).unwrap();
    nester
        .other_connection()
        .execute(
            "UPDATE enrollment_tokens SET expires_ms = 0 WHERE token_id = ?",
            [&parsed.id],
        )
        .unwrap();
    let (_, csr) = crate::harness::key_and_csr(&rcgen::PKCS_ED25519);
    let body = serde_json::json!({"token_id": parsed.id, "secret": parsed.secret, "csr": csr});
    let r = nester
        .post_ingest(
            None,
            ENROLL_PATH,
            Some("application/json"),
            body.to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.error_code(), "token_expired");
    assert_eq!(
        alert(
            &nester,
            "security.enrollment_token",
            "prefix:127.0.0.1/32",
            1
        )
        .await
        .0,
        "warning"
    );
    assert_eq!(nester.count("bans"), 0, "loopback is allow-listed");

    // The access log names each refusal's code, and on ingest the client certificate.
    let log = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let fingerprint = shared::identity::fingerprint(&revoked.client_cert().chain[0]);
    assert!(
        log.lines().any(|l| l.contains("\"code\":\"probe_revoked\"")
            && l.contains(&format!("\"certificate\":\"{fingerprint}\""))),
        "no certificate fingerprint on the revoked probe's lines:\n{log}"
    );
    for code in ["probe_revoked", "bad_signature", "token_expired"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("\"code\":\"{code}\""))),
            "{code} not in the access log:\n{log}"
        );
    }

    // Every role sees them, in the API and on the page.
    let (user, password) = nester.add_user("watcher", Role::Support).await;
    let session = nester.login(&user, &password).await.unwrap();
    let r = nester
        .as_session(
            &session,
            Method::GET,
            "/api/v1/alerts?state=firing",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let items = r.json()["items"].as_array().unwrap().clone();
    let rules: Vec<&str> = items.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        [
            "security.enrollment_token",
            "security.bad_signature",
            "security.revoked_probe"
        ],
        "{items:#?}"
    );
    let r = nester
        .as_session(
            &session,
            Method::GET,
            "/api/v1/alerts?severity=loud",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let page = nester
        .as_session(
            &session,
            Method::GET,
            "/alerts?severity=critical",
            &[],
            vec![],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("data-rule=\"security.revoked_probe\""),
        "{html}"
    );
    assert!(
        !html.contains("data-rule=\"security.enrollment_token\""),
        "filtered: {html}"
    );

    // Quiet for an hour: resolved, and the next occurrence is a new alert.
    nester.clock().advance(time::Duration::minutes(61));
    crate::harness::within(
        Duration::from_secs(10),
        "quiet alerts never resolved",
        || {
            std::future::ready(
                (nester.scalar("SELECT count(*) FROM alerts WHERE state != 'resolved'") <= 0)
                    .then_some(()),
            )
        },
    )
    .await;
    // (The hour ended the session too.)
    let session = nester.login(&user, &password).await.unwrap();
    let r = nester
        .as_session(
            &session,
            Method::GET,
            "/api/v1/alerts?state=resolved",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    connection
        .send(
            Method::POST,
            REPORTS_PATH,
            &[("content-type", JWS_MEDIA_TYPE)],
            report.into_bytes(),
        )
        .await
        .unwrap();
    let subject = format!("probe:{}", revoked.id);
    assert_eq!(
        alert(&nester, "security.revoked_probe", &subject, 1).await,
        ("critical".into(), "firing".into(), 1)
    );
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'security.revoked_probe'"),
        2
    );
}

#[tokio::test]
async fn a_revoked_probe_that_keeps_trying_is_banned_and_the_ban_is_an_alert() {
    let nester = TestNester::start_with(|c| {
        c.threats.allow = vec!["127.0.0.1/32".parse().unwrap()];
        c.threats.ingest_refusals = 3;
    })
    .await;
    let probe = nester.probe().await;
    let report = signed_report(&nester, &probe).await;
    nester
        .db()
        .revoke_probe(Actor::cli(), probe.id)
        .await
        .unwrap();
    let source = "127.0.3.1".parse().unwrap();
    let mut codes = Vec::new();
    for _ in 0..6 {
        let Ok(mut c) = Connection::open_from(
            Some(source),
            nester.ingest,
            &nester.ca,
            Some(&probe.client_cert()),
        )
        .await
        else {
            codes.push("refused before TLS".to_string());
            continue;
        };
        let r = c
            .send(
                Method::POST,
                REPORTS_PATH,
                &[("content-type", JWS_MEDIA_TYPE)],
                report.clone().into_bytes(),
            )
            .await;
        codes.push(r.map_or_else(|e| e, |r| r.error_code()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(codes[..3], ["probe_revoked"; 3], "{codes:?}");
    assert!(
        codes[3..].iter().all(|c| c != "probe_revoked"),
        "served after the ban: {codes:?}"
    );
    let rule: String = nester
        .sqlite()
        .query_row(
            "SELECT rule FROM bans WHERE prefix = '127.0.3.1/32'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rule, "revoked_probe");
    assert_eq!(
        alert(&nester, "security.ban", "prefix:127.0.3.1/32", 1)
            .await
            .0,
        "warning"
    );
    let details: Value = serde_json::from_str(
        &nester
            .sqlite()
            .query_row(
                "SELECT details FROM alerts WHERE rule = 'security.ban'",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap(),
    )
    .unwrap();
    assert_eq!(details["rule"], "revoked_probe");
}
