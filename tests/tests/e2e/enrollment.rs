//! Enrollment tokens, the CA pin, renewal and revocation.

use hyper::{Method, StatusCode};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use seahawks_tests::synthetic::{SimHost, SimProbe};
use shared::protocol::{JWS_MEDIA_TYPE, RENEW_PATH, REPORTS_PATH};

use crate::harness::{Connection, Probe, TestNester, closed_port, https, key_and_csr};

async fn enroll(token: &str) -> (tempfile::TempDir, anyhow::Result<(uuid::Uuid, String)>) {
    let temp = tempfile::tempdir().unwrap();
    let result = harvester::enroll::enroll(token, &temp.path().join("h")).await;
    (temp, result)
}

fn refusal(result: anyhow::Result<(uuid::Uuid, String)>) -> String {
    format!(
        "{:#}",
        result.expect_err("enrollment should have been refused")
    )
}

#[tokio::test]
async fn tokens_expire_get_used_up_and_can_be_revoked() {
    let nester = TestNester::start().await;
    let db = nester.db.clone().unwrap();

    // One use: the first enrollment takes it, the second is refused.
    let token = nester.token("kc", Duration::minutes(30), 1).await;
    let (_a, first) = enroll(&token).await;
    assert_eq!(first.unwrap().1, "kc");
    let (_b, second) = enroll(&token).await;
    let message = refusal(second);
    assert!(
        message.contains("used up") && message.contains("nester token create"),
        "{message}"
    );

    // Two uses work twice.
    let token = nester.token("kc", Duration::minutes(30), 2).await;
    for _ in 0..2 {
        enroll(&token).await.1.unwrap();
    }

    // Expired: the clock is the database's; move the expiry into the past.
    let token = nester.token("kc", Duration::minutes(30), 1).await;
    let id = shared::enroll::EnrollmentToken::parse(&token).unwrap().id;
    let writer = nester.other_connection();
    writer
        .execute(
            "UPDATE enrollment_tokens SET expires_ms = 0 WHERE token_id = ?",
            [&id],
        )
        .unwrap();
    let message = refusal(enroll(&token).await.1);
    assert!(message.contains("expired"), "{message}");

    // Revoked.
    let token = nester.token("kc", Duration::minutes(30), 1).await;
    let id = shared::enroll::EnrollmentToken::parse(&token).unwrap().id;
    nester::cli::token::revoke_token(&db, &id).await.unwrap();
    let message = refusal(enroll(&token).await.1);
    assert!(message.contains("revoked"), "{message}");

    // A wrong secret reads like an unknown token.
    let mut forged =
        shared::enroll::EnrollmentToken::parse(&nester.token("kc", Duration::minutes(30), 1).await)
            .unwrap();
    forged.secret = "guessed".into();
    let message = refusal(enroll(&forged.encode()).await.1);
    assert!(message.contains("not valid"), "{message}");

    // Only the three successful enrollments made probes; the list says what each token did.
    assert_eq!(nester.count("probes"), 3);
    let list = nester::cli::token::list_tokens(&db).await.unwrap();
    for state in ["used up", "expired", "revoked", "usable"] {
        assert!(list.contains(state), "{state} missing from:\n{list}");
    }
}

#[tokio::test]
async fn an_impostor_nester_with_another_ca_is_refused_by_the_pin() {
    let genuine = TestNester::start().await;
    let impostor = TestNester::start().await;
    let mut token = shared::enroll::EnrollmentToken::parse(
        &genuine.token("kc", Duration::minutes(30), 1).await,
    )
    .unwrap();
    // The address now leads to the impostor (DNS spoofing, a hijacked route...).
    token.ingest = impostor.ingest.to_string();
    let (temp, result) = enroll(&token.encode()).await;
    let message = refusal(result);
    assert!(
        message.contains("pinned") || message.contains("intercepting"),
        "{message}"
    );
    assert!(
        !temp.path().join("h/identity.pem").exists(),
        "an identity was stored after a failed pin"
    );
    assert_eq!(impostor.count("probes"), 0);
    assert_eq!(genuine.count("probes"), 0);
}

#[tokio::test]
async fn enrollment_is_rate_limited_per_address() {
    let nester = TestNester::start_with(|c| c.ingest.enroll_per_minute = 2).await;
    let token = nester.token("kc", Duration::minutes(30), 10).await;
    enroll(&token).await.1.unwrap();
    enroll(&token).await.1.unwrap();
    let message = refusal(enroll(&token).await.1);
    assert!(
        message.contains("rate_limited") && message.contains("wait a minute"),
        "{message}"
    );
    assert_eq!(nester.count("probes"), 2);
}

#[tokio::test]
async fn hostile_enrollment_requests_consume_nothing() {
    let nester = TestNester::start().await;
    let token =
        shared::enroll::EnrollmentToken::parse(&nester.token("kc", Duration::minutes(30), 1).await)
            .unwrap();
    let (_, p256_csr) = key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    let body =
        |csr: &str| json!({"token_id": token.id, "secret": token.secret, "csr": csr}).to_string();
    let cases = [
        (
            "not JSON",
            Some("application/json"),
            "{".to_string(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "missing field",
            Some("application/json"),
            json!({"token_id": token.id}).to_string(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "wrong media type",
            Some("text/plain"),
            body("x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "garbage CSR",
            Some("application/json"),
            body("garbage"),
            StatusCode::BAD_REQUEST,
            "bad_csr",
        ),
        (
            "P-256 key",
            Some("application/json"),
            body(&p256_csr),
            StatusCode::BAD_REQUEST,
            "bad_csr",
        ),
        (
            "oversized",
            Some("application/json"),
            body(&"A".repeat(5 * 1024 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    let cases = cases
        .into_iter()
        .map(|(n, t, body, s, c)| (n, t, body.into_bytes(), s, c))
        .collect();
    nester.expect_refusals(None, "/v1/enroll", cases).await;
    assert_eq!(
        nester.scalar("SELECT uses FROM enrollment_tokens"),
        0,
        "a refused request used the token"
    );
    assert_eq!(nester.count("probes"), 0);
    // Renewal needs a probe certificate.
    let response = https(
        nester.ingest,
        &nester.ca,
        None,
        Method::POST,
        "/v1/renew",
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "client_certificate_required")
    );
    // So does the trust bundle.
    let response = https(
        nester.ingest,
        &nester.ca,
        None,
        Method::GET,
        "/v1/trust",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::UNAUTHORIZED, "client_certificate_required")
    );
}

#[tokio::test]
async fn certificates_renew_at_two_thirds_of_their_life_and_expire_with_advice() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    let before = agent.identity().cert.clone();
    let lifetime = agent.identity().not_after - agent.identity().not_before;
    assert!(
        lifetime > Duration::days(29) && lifetime <= Duration::days(31),
        "{lifetime}"
    );
    // Due at two thirds of the life, moved by at most 1/30 of it (so a fleet enrolled at
    // once does not renew at once), the same moment for one certificate.
    let identity = agent.identity();
    let due = identity.renew_at();
    let two_thirds = identity.not_before + lifetime * (2.0 / 3.0);
    let off: Duration = due - two_thirds;
    assert!(off.abs() <= lifetime / 30, "{due} against {two_thirds}");
    assert_eq!(due, agent.identity().renew_at());

    // A controlled clock: a second before that moment nothing happens; at it, a renewal.
    assert!(
        !agent
            .renew_if_due(due - Duration::seconds(1), None)
            .await
            .unwrap()
    );
    assert_eq!(agent.identity().cert, before);
    assert!(agent.renew_if_due(due, None).await.unwrap());
    let renewed = agent.identity().cert.clone();
    assert_ne!(renewed, before);
    assert_eq!(
        shared::identity::probe_id_from_cert(&renewed).unwrap(),
        probe.id
    );
    // Stored for the next start, key and certificate together, and known to the nester.
    assert_eq!(
        harvester::state::Identity::load(&probe.state_dir)
            .unwrap()
            .cert,
        renewed
    );
    let serial: String = nester
        .sqlite()
        .query_row("SELECT cert_serial FROM probes", [], |r| r.get(0))
        .unwrap();
    assert!(
        format!("{:?}", x509_serial(&renewed)).contains(&serial),
        "{serial}"
    );
    // Reports now go out under the new certificate.
    let (signed, _) = agent.cycle().await.unwrap();
    let kid: String = nester
        .sqlite()
        .query_row(
            "SELECT signer_kid FROM reports WHERE report_id = ?",
            [signed.report_id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kid, shared::identity::fingerprint(&renewed));

    // Past the end of its life the harvester says what to do instead of failing obscurely.
    let err = format!(
        "{:#}",
        agent
            .renew_if_due(OffsetDateTime::now_utc() + Duration::days(400), None)
            .await
            .unwrap_err()
    );
    assert!(
        err.contains("expired") && err.contains("harvester enroll"),
        "{err}"
    );
}

fn x509_serial(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    cert.raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_revoked_probe_is_refused_and_keeps_its_reports() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    agent.cycle().await.unwrap();
    // Asked twice, so the answer is one the API keeps for reuse.
    let path = format!("/api/v1/probes/{}", probe.id);
    for _ in 0..2 {
        let before = nester.get(&path).await.json();
        assert_eq!(
            (before["status"].as_str(), before["revoked"].as_bool()),
            (Some("online"), Some(false))
        );
    }
    // As `nester probe revoke` does it: a database handle of its own, on the same file.
    let cli = nester::db::Db::open(&nester.dir.database()).unwrap();
    nester::cli::probe::revoke_probe(&cli, probe.id)
        .await
        .unwrap();
    // At once, not when the kept answer ages out.
    let after = nester.get(&path).await.json();
    assert_eq!(
        (after["status"].as_str(), after["revoked"].as_bool()),
        (Some("offline"), Some(true))
    );

    // The agent's next delivery is refused.
    let err = format!("{:#}", agent.cycle().await.unwrap_err());
    assert!(err.contains("probe_revoked"), "{err}");
    // Refused for who it is, not for what it sent: the report stays in the spool.
    assert_eq!(agent.spool().usage().unwrap().reports, 1);
    assert_eq!(nester.count("reports"), 1);
    let again = nester::cli::probe::revoke_probe(&cli, probe.id).await;
    assert!(
        again.is_err(),
        "revoking twice should say there is nothing to revoke"
    );
}

/// Sends `probe`'s next report on `conn`, a connection it holds open.
async fn send_report(
    conn: &mut Connection,
    probe: &Probe,
    sim: &mut SimProbe,
) -> (StatusCode, String) {
    let jws = probe
        .signer()
        .sign_report(&sim.report(OffsetDateTime::now_utc(), Vec::new()))
        .unwrap();
    let headers = [("content-type", JWS_MEDIA_TYPE)];
    let response = conn
        .send(Method::POST, REPORTS_PATH, &headers, jws.into_bytes())
        .await
        .unwrap();
    let code = if response.status.is_success() {
        String::new()
    } else {
        response.error_code()
    };
    (response.status, code)
}

/// Standing is checked on every request: a revoked probe is refused on its very next
/// request, on the connection it already holds open, for a report and a renewal alike. A
/// probe nobody revoked is still served on its own open connection.
#[tokio::test]
async fn a_revocation_refuses_the_next_request_on_a_kept_alive_connection() {
    let nester = TestNester::start().await;
    let (revoked, kept) = (nester.probe().await, nester.probe().await);
    let mut conns = Vec::new();
    let mut sims = Vec::new();
    for probe in [&revoked, &kept] {
        let conn = Connection::open(nester.ingest, &nester.ca, Some(&probe.client_cert()))
            .await
            .unwrap();
        conns.push(conn);
        let hosts = vec![SimHost::new("10.0.0.1", None, &[(22, None)])];
        sims.push(SimProbe::new(probe.id, "test-site", hosts));
    }
    for (i, probe) in [&revoked, &kept].into_iter().enumerate() {
        let answer = send_report(&mut conns[i], probe, &mut sims[i]).await;
        assert_eq!(answer, (StatusCode::CREATED, String::new()));
    }

    // As `nester probe revoke` does it: another database handle, as another process would.
    let cli = nester::db::Db::open(&nester.dir.database()).unwrap();
    nester::cli::probe::revoke_probe(&cli, revoked.id)
        .await
        .unwrap();

    let refused = (StatusCode::FORBIDDEN, "probe_revoked".to_string());
    assert_eq!(
        send_report(&mut conns[0], &revoked, &mut sims[0]).await,
        refused
    );
    let (_, csr) = key_and_csr(&rcgen::PKCS_ED25519);
    let renewal = conns[0]
        .send(
            Method::POST,
            RENEW_PATH,
            &[("content-type", "application/json")],
            serde_json::to_vec(&json!({ "csr": csr })).unwrap(),
        )
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&renewal.body);
    assert_eq!(renewal.status, StatusCode::FORBIDDEN, "renewed: {body}");
    assert_eq!(renewal.error_code(), "probe_revoked");
    assert_eq!(
        send_report(&mut conns[1], &kept, &mut sims[1]).await,
        (StatusCode::CREATED, String::new())
    );
    assert_eq!(nester.count("reports"), 3);
}
