//! The ingest listener refuses what it must, with the right status and error code, and
//! stores nothing from a refused request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::{Method, StatusCode};
use nester::datadir::Listener;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ClientCert, Refusal, TestNester, closed_port, https, key_and_csr};

const JOSE: Option<&str> = Some("application/jose");

/// A report payload for `probe`, as JSON to be tampered with before signing.
async fn payload(nester: &TestNester, probe: &crate::harness::Probe) -> Value {
    let mut agent = nester.agent(probe, &closed_port().to_string());
    let signed = agent.produce().await.unwrap().unwrap();
    let payload = shared::jws::payload_unverified(signed.jws.as_bytes()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn sign(signer: &shared::Signer, value: &Value) -> String {
    signer.sign(&serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn hostile_requests_get_their_specific_refusal_and_store_nothing() {
    let nester = TestNester::start_with(|c| c.ingest.max_body_bytes = 64 * 1024).await;
    let foreign = TestNester::start().await;
    let (a, b, stranger) = (
        nester.probe().await,
        nester.probe().await,
        foreign.probe().await,
    );
    let (signer_a, signer_b) = (a.signer(), b.signer());
    let base = payload(&nester, &a).await;
    let good = sign(&signer_a, &base);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        sign(&signer_a, &v)
    };
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    parts[2] = URL_SAFE_NO_PAD.encode([0u8; 64]);
    let zero_signature = parts.join(".");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        good.split('.').nth(1).unwrap()
    );

    let cases: Vec<Refusal> = vec![
        (
            "no content type",
            None,
            good.clone().into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "JSON content type",
            Some("application/json"),
            good.clone().into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "empty body",
            JOSE,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "malformed_jws",
        ),
        (
            "not a JWS",
            JOSE,
            b"hello".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_jws",
        ),
        (
            "unsigned JSON",
            JOSE,
            serde_json::to_vec(&base).unwrap(),
            StatusCode::BAD_REQUEST,
            "malformed_jws",
        ),
        (
            "binary noise",
            JOSE,
            (0..=255u8).cycle().take(4096).collect(),
            StatusCode::BAD_REQUEST,
            "malformed_jws",
        ),
        (
            "header not JSON",
            JOSE,
            format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("{{{")).into(),
            StatusCode::BAD_REQUEST,
            "malformed_jws",
        ),
        (
            "alg none",
            JOSE,
            alg_none.into(),
            StatusCode::BAD_REQUEST,
            "unsupported_algorithm",
        ),
        (
            "oversized",
            JOSE,
            vec![b'A'; 100 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "zeroed signature",
            JOSE,
            zero_signature.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_signature",
        ),
        (
            "signed by another probe",
            JOSE,
            sign(&signer_b, &payload(&nester, &b).await).into(),
            StatusCode::FORBIDDEN,
            "probe_mismatch",
        ),
        (
            "names another probe",
            JOSE,
            with(&|v| v["probe_id"] = b.id.to_string().into()).into(),
            StatusCode::FORBIDDEN,
            "probe_mismatch",
        ),
        (
            "signer from another CA",
            JOSE,
            sign(&stranger.signer(), &payload(&foreign, &stranger).await).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "untrusted_certificate",
        ),
        (
            "from the future",
            JOSE,
            with(&|v| v["generated_at"] = "2999-01-01T00:00:00Z".into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timestamp_in_future",
        ),
        (
            "schema version 2",
            JOSE,
            with(&|v| v["schema_version"] = 99.into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_schema_version",
        ),
        (
            "unknown field",
            JOSE,
            with(&|v| v["admin"] = true.into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
        (
            "wrong type",
            JOSE,
            with(&|v| v["sequence"] = "seven".into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
        (
            "empty site",
            JOSE,
            with(&|v| v["site"] = "".into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
        (
            "bad address",
            JOSE,
            with(&|v| v["hosts"][0]["address"] = "999.1.1.1".into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
        (
            "port out of range",
            JOSE,
            with(&|v| v["hosts"][0]["ports"][0]["port"] = 70000.into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
        (
            "another site",
            JOSE,
            with(&|v| v["site"] = "elsewhere".into()).into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "site_mismatch",
        ),
        (
            "payload not JSON",
            JOSE,
            signer_a.sign(b"\xff\xfe").into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_report",
        ),
    ];
    let client = a.client_cert();
    nester
        .expect_refusals(Some(&client), "/v1/reports", cases)
        .await;
    assert_eq!(nester.count("reports"), 0, "a refused report was stored");
    assert_eq!(
        nester.scalar("SELECT count(*) FROM probes WHERE last_report_id IS NOT NULL"),
        0,
        "a refused report became a probe's last report"
    );

    // Route-level refusals.
    let response = nester
        .post_ingest(Some(&client), "/v1/nope", JOSE, good.clone())
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let response = https(
        nester.ingest,
        &nester.ca,
        Some(&client),
        Method::GET,
        "/v1/reports",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    // The good one still goes through, with media type parameters tolerated.
    let response = nester
        .post_ingest(
            Some(&client),
            "/v1/reports",
            Some("Application/JOSE; charset=us-ascii"),
            good,
        )
        .await
        .unwrap();
    assert_eq!(
        response.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&response.body)
    );

    // Conflicts: same id with other bytes, or a reused sequence number.
    let response = nester
        .post_ingest(
            Some(&client),
            "/v1/reports",
            JOSE,
            with(&|v| v["site"] = "elsewhere".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::CONFLICT, "report_id_conflict")
    );
    let new_id = uuid::Uuid::now_v7().to_string();
    let response = nester
        .post_ingest(
            Some(&client),
            "/v1/reports",
            JOSE,
            with(&|v| v["report_id"] = new_id.clone().into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::CONFLICT, "sequence_conflict")
    );
    // The id again on a new sequence: the row's own insert finds the id taken, before any
    // write (had it written, the jump from sequence 1 to 5 would have opened a gap).
    let response = nester
        .post_ingest(
            Some(&client),
            "/v1/reports",
            JOSE,
            with(&|v| v["sequence"] = 5.into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_code().as_str()),
        (StatusCode::CONFLICT, "report_id_conflict")
    );
    assert_eq!(nester.count("sequence_gaps"), 0);
    assert_eq!(nester.count("reports"), 1);
    assert_eq!(
        nester
            .sqlite()
            .query_row("SELECT site FROM probes", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "test-site"
    );
}

#[tokio::test]
async fn connections_without_a_trusted_client_certificate_are_refused() {
    let nester = TestNester::start().await;
    let foreign = TestNester::start().await;
    let probe = nester.probe().await;
    let good = sign(&probe.signer(), &payload(&nester, &probe).await);
    // Our CA signed it, but for serving, not for a probe.
    let web_cert = ClientCert::load(
        &nester.dir.listener_cert(Listener::Web),
        &nester.dir.listener_key(Listener::Web),
    );
    // Without a certificate the connection may only enroll; the report route says so.
    let response = nester
        .post_ingest(None, "/v1/reports", JOSE, good.clone())
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.error_code(), "client_certificate_required");
    // Our CA, a probe of ours, but its validity has ended.
    let (key, csr) = key_and_csr(&rcgen::PKCS_ED25519);
    let ca = nester::pki::Ca::load(&nester.dir).unwrap();
    let expired = ca
        .sign_probe_csr(
            &csr,
            probe.id,
            time::Duration::minutes(-1),
            nester.clock().now(),
        )
        .unwrap();
    let expired = ClientCert::from_pem(&expired.cert_pem, &key.serialize_pem());
    for (name, client) in [
        ("another CA", Some(foreign.probe().await.client_cert())),
        ("a server certificate", Some(web_cert)),
        ("an expired certificate", Some(expired)),
    ] {
        let result = nester
            .post_ingest(client.as_ref(), "/v1/reports", JOSE, good.clone())
            .await;
        assert!(
            result.is_err(),
            "{name}: accepted with {:?}",
            result.map(|r| r.status)
        );
    }
    assert_eq!(nester.count("reports"), 0);
    let response = nester
        .post_ingest(Some(&probe.client_cert()), "/v1/reports", JOSE, good)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
}

#[tokio::test]
async fn garbage_on_the_port_harms_no_one() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    // Hold a few bad connections open while a good client delivers.
    let mut bad = Vec::new();
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        (0..=255u8).rev().cycle().take(8192).collect(),
        b"\x16\x03\x01\x00".to_vec(), // the start of a TLS record, then silence
        Vec::new(),                   // connect and say nothing
    ] {
        let mut stream = TcpStream::connect(nester.ingest).await.unwrap();
        stream.write_all(&garbage).await.unwrap();
        bad.push(stream);
    }
    let (signed, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, harvester::uplink::Delivery::Stored);
    // Plain HTTP gets a TLS alert or a close, never an HTTP answer.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        bad[0].read_to_end(&mut answer),
    )
    .await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let stored = nester
        .get(&format!("/api/v1/reports/{}", signed.report_id))
        .await;
    assert_eq!(stored.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_slow_clients_do_not_delay_a_harvester() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    agent.produce().await.unwrap().unwrap();

    // 1,000 connections that never speak, and 50 TLS handshakes that stop half-way: both ends
    // live in this process, so it needs over 2,100 descriptors.
    let limit = open_file_limit();
    assert!(
        limit >= 2_200,
        "this test needs 2,200 open files and the limit is {limit}: raise it (`ulimit -n 4096`; tests/run does)"
    );
    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(TcpStream::connect(nester.ingest).await.unwrap());
    }
    for _ in 0..50 {
        let mut stream = TcpStream::connect(nester.ingest).await.unwrap();
        stream
            .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            .await
            .unwrap();
        held.push(stream);
    }
    let started = std::time::Instant::now();
    let delivered = agent.drain().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(delivered.len(), 1);
    assert!(
        elapsed < std::time::Duration::from_millis(100),
        "delivery took {elapsed:?} behind stalled clients"
    );
    drop(held);
}

/// This process's soft limit on open files, from `/proc/self/limits`.
fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(u64::MAX) // "unlimited"
}

/// Stalled sockets are closed, not kept for ever: a client that connects and never starts
/// TLS, after the handshake timeout (10 s); one that finishes TLS on the web listener but
/// never ends its request header, after the header-read timeout (10 s).
#[tokio::test]
async fn stalled_sockets_are_closed_after_the_handshake_and_header_timeouts() {
    let nester = TestNester::start().await;
    let started = std::time::Instant::now();
    let silent = async {
        let mut stream = TcpStream::connect(nester.ingest).await.unwrap();
        let mut buf = [0u8; 64];
        // End of stream or a reset: either way, closed by the server.
        let _ = stream.read(&mut buf).await;
        started.elapsed()
    };
    let half_header = async {
        let mut stream = crate::harness::tls(nester.web, &nester.ca, None)
            .await
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break started.elapsed(),
                Ok(_) => {} // an answer (a 408, say) before it closes
            }
        }
    };
    let limit = std::time::Duration::from_secs(20);
    let (silent, half_header) =
        tokio::time::timeout(limit, async { tokio::join!(silent, half_header) })
            .await
            .expect("a stalled socket was still open after 20 s");
    for (what, after) in [("no TLS", silent), ("half a header", half_header)] {
        assert!(
            after >= std::time::Duration::from_secs(9)
                && after < std::time::Duration::from_secs(15),
            "{what}: closed after {after:?}, expected the 10 s timeout"
        );
    }
}
