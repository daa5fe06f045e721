//! The whole pipe: harvester → mTLS → nester → SQLite → HTTPS API.

use harvester::uplink::Delivery;
use hyper::{Method, StatusCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use shared::report::{PortState, Report};
use tokio::net::TcpListener;

use crate::harness::{TestNester, closed_port};

#[tokio::test]
async fn a_report_travels_from_scan_to_api_and_verifies() {
    let nester = TestNester::start().await;
    let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = service.local_addr().unwrap().port();
    let closed = closed_port();
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &format!("{open},{closed}"));

    let (signed, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, Delivery::Stored);

    // In the real SQLite file: the report, stored in parts (the API gives the exact bytes
    // back, checked below): the certificate header once, the payload compressed.
    let db = nester.sqlite();
    let (probe_id, stored, encoding, header, signature): (String, Vec<u8>, String, String, String) =
        db.query_row(
            "SELECT r.probe_id, r.jws, r.jws_encoding, h.header, r.jws_signature
             FROM reports r JOIN jws_headers h ON h.header_id = r.jws_header_id
             WHERE r.report_id = ?",
            [signed.report_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(probe_id, probe.id.to_string());
    assert_eq!(encoding, "parts");
    let parts: Vec<&str> = signed.jws.split('.').collect();
    assert_eq!((header.as_str(), signature.as_str()), (parts[0], parts[2]));
    // Smaller than the decoded payload (three quarters of its base64).
    assert!(
        stored.len() < parts[1].len() * 3 / 4,
        "{} bytes stored for a payload of {} in base64",
        stored.len(),
        parts[1].len()
    );

    // Served by the API.
    let probes = nester.get("/api/v1/probes").await.json();
    assert_eq!(probes[0]["probe_id"], probe.id.to_string());
    assert_eq!(probes[0]["site"], "test-site");
    assert_eq!(
        probes[0]["last_report"]["report_id"],
        signed.report_id.to_string()
    );
    assert_eq!(probes[0]["last_report"]["open_ports"], 1);

    let list = nester
        .get(&format!("/api/v1/probes/{}/reports", probe.id))
        .await
        .json();
    assert_eq!(list["items"][0]["report_id"], signed.report_id.to_string());
    assert_eq!(list["next_cursor"], serde_json::Value::Null);

    let parsed = nester
        .get(&format!("/api/v1/reports/{}", signed.report_id))
        .await;
    assert_eq!(parsed.header("content-type"), "application/json");
    let report: Report = serde_json::from_slice(&parsed.body).unwrap();
    assert_eq!(report.report_id, signed.report_id);
    let port = report.hosts[0]
        .ports
        .iter()
        .find(|p| p.port == open)
        .unwrap();
    assert_eq!(port.state, PortState::Open);

    // The signed bytes verify offline against the CA the web listener publishes.
    let signed_response = nester
        .get(&format!("/api/v1/reports/{}/signed", signed.report_id))
        .await;
    assert_eq!(signed_response.status, StatusCode::OK);
    assert_eq!(signed_response.header("content-type"), "application/jose");
    assert_eq!(signed_response.body, signed.jws.as_bytes());
    let ca_pem = nester.get("/ca.pem").await;
    let ca = CertificateDer::from_pem_slice(&ca_pem.body)
        .unwrap()
        .into_owned();
    let verified = shared::Verifier::new(ca)
        .unwrap()
        .verify(&signed_response.body, UnixTime::now())
        .unwrap();
    assert_eq!(verified.report, report);
    assert_eq!(verified.probe_id, probe.id);

    // And the dashboard lists the probe.
    let page = nester.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        html.contains(&probe.id.to_string()) && html.contains("test-site"),
        "{html}"
    );
    assert!(page.headers.get("content-security-policy").is_some());
    drop(service);
}

#[tokio::test]
async fn a_repeated_report_is_stored_once() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    let signed = agent.produce().await.unwrap().unwrap();
    let client = probe.client_cert();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = nester
            .post_ingest(
                Some(&client),
                "/v1/reports",
                Some("application/jose"),
                signed.jws.clone(),
            )
            .await
            .unwrap();
        statuses.push(response.status);
    }
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::OK, StatusCode::OK]
    );
    // The harvester's own delivery of the same spooled report is a harmless repeat too.
    assert_eq!(
        agent.drain().await.unwrap(),
        [(signed.sequence, Delivery::AlreadyStored)]
    );
    assert_eq!(nester.count("reports"), 1);
}

#[tokio::test]
async fn reports_are_paged_newest_first() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    for _ in 0..5 {
        agent.cycle().await.unwrap();
    }
    let mut sequences = Vec::new();
    let mut path = format!("/api/v1/probes/{}/reports?limit=2", probe.id);
    for _ in 0..5 {
        let page = nester.get(&path).await.json();
        sequences.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["sequence"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/api/v1/probes/{}/reports?limit=2&cursor={cursor}",
                    probe.id
                )
            }
            None => break,
        }
    }
    assert_eq!(sequences, [5, 4, 3, 2, 1]);
}

#[tokio::test]
async fn web_errors_have_the_json_shape() {
    let nester = TestNester::start().await;
    let probe = uuid::Uuid::new_v4();
    let cases = [
        (
            Method::GET,
            "/api/v1/reports/not-a-uuid".to_string(),
            StatusCode::BAD_REQUEST,
            "bad_path",
        ),
        (
            Method::GET,
            format!("/api/v1/reports/{probe}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/reports/{probe}/signed"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/probes/{probe}/reports"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/api/v1/probes/{probe}/reports?limit=0"),
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            Method::GET,
            format!("/api/v1/probes/{probe}/reports?cursor=x"),
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            Method::GET,
            format!("/api/v1/probes/{probe}/reports?evil=1"),
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            Method::GET,
            "/no/such/page".to_string(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            "/static/../../etc/passwd".to_string(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/probes".to_string(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, status, code) in cases {
        let response = nester.web_request(method.clone(), &path).await;
        assert_eq!(response.status, status, "{method} {path}");
        assert_eq!(response.error_code(), code, "{method} {path}");
        assert_eq!(
            response.header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_ca_and_the_stylesheet_are_public() {
    let nester = TestNester::start().await;
    let ca = nester.get("/ca.pem").await;
    assert_eq!(ca.status, StatusCode::OK);
    assert_eq!(
        CertificateDer::from_pem_slice(&ca.body).unwrap().as_ref(),
        nester.ca.as_ref()
    );
    let css = nester.get("/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
}

#[tokio::test]
async fn shutdown_closes_both_listeners() {
    let nester = TestNester::start().await;
    let (ingest, web) = (nester.ingest, nester.web);
    assert_eq!(nester.get("/ca.pem").await.status, StatusCode::OK);
    nester.stop().await;
    for addr in [ingest, web] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts"
        );
    }
}

#[tokio::test]
async fn a_harvester_keeps_delivering_across_a_nester_restart() {
    let mut nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    assert_eq!(agent.cycle().await.unwrap().1, Delivery::Stored);
    // The restart closes the harvester's kept-alive connection under it.
    nester.restart().await;
    assert_eq!(agent.cycle().await.unwrap().1, Delivery::Stored);
    assert_eq!(agent.cycle().await.unwrap().1, Delivery::Stored);
    assert_eq!(nester.count("reports"), 3);
}
