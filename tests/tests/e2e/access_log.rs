//! The access log: one JSON line per request and per connection refused before HTTP, with
//! its fields and a request id the response carries; and never a secret, whatever the
//! requests carried (a token, a session cookie, a password, a query string).

use std::time::Duration;

use hyper::{Method, StatusCode};
use nester::config::Destination;
use nester::db::Role;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestNester;

fn lines(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("access.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The log's lines once `want` holds for them (at most 10 s).
async fn wait_for(dir: &std::path::Path, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let came = || {
        let all = lines(dir);
        let why = format!("not yet in {all:#?}");
        std::future::ready(if want(&all) { Ok(all) } else { Err(why) })
    };
    crate::harness::until(Duration::from_secs(10), came).await
}

fn find(all: &[Value], f: impl Fn(&Value) -> bool) -> &Value {
    all.iter()
        .find(|l| f(l))
        .unwrap_or_else(|| panic!("no such line in {all:#?}"))
}

#[tokio::test]
async fn every_request_and_refused_connection_is_one_line_without_secrets() {
    let logs = tempfile::tempdir().unwrap();
    let dir = logs.path().to_path_buf();
    let nester = TestNester::start_with(|c| {
        c.log.access = Destination::File;
        c.log.access_dir = Some(dir.clone());
    })
    .await;
    let (user, password) = nester.add_user("logged", Role::Noc).await;

    // 200 with a token (the harness's), and the id it was given.
    let ok = nester.get("/api/v1/probes").await;
    assert_eq!(ok.status, StatusCode::OK);
    let id = ok.header("x-request-id").to_string();
    assert_eq!(id.len(), 16, "{id}");
    // 401 without credentials; 404 with a secret in the path and the query.
    let anonymous = nester
        .anonymous(Method::GET, "/api/v1/probes", &[], vec![])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let secret_query = "/no/such/page/SECRETPATH?token=SECRETQUERY";
    let missing = nester
        .anonymous(Method::GET, secret_query, &[], vec![])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // 413: a body over the web listener's limit.
    let big = vec![b'a'; 2 << 20];
    let too_big = nester
        .anonymous(
            Method::POST,
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            big,
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A sign-in with a password, then the session's cookie.
    let session = nester.login(&user, &password).await.unwrap();
    let page = nester
        .as_session(&session, Method::GET, "/", &[], vec![])
        .await;
    assert_eq!(page.status, StatusCode::OK);

    // Refused before HTTP: garbage on ingest, and a client certificate from another CA.
    let mut garbage = tokio::net::TcpStream::connect(nester.ingest).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\x05hello")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut sink)).await;
    let foreign = TestNester::start().await;
    let stranger = foreign.probe().await;
    let refused = nester
        .post_ingest(Some(&stranger.client_cert()), "/v1/reports", None, vec![])
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // A probe of ours, on ingest: the line names it.
    let probe = nester.probe().await;
    let enrolled = nester
        .post_ingest(
            Some(&probe.client_cert()),
            "/v1/reports",
            None,
            b"x".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(enrolled.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let all = wait_for(&dir, |all| {
        all.iter().any(|l| l["refused"] == "tls_bad_certificate")
            && all.iter().any(|l| l["status"] == 415)
    })
    .await;
    let line = find(&all, |l| l["request_id"] == id.as_str());
    assert_eq!(line["listener"], "web");
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/v1/probes");
    assert_eq!(line["status"], 200);
    assert_eq!(line["who"], "user:harness-admin");
    assert!(line["bytes_out"].as_u64().unwrap() > 0 && line["duration_ms"].as_f64().is_some());
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    find(&all, |l| {
        l["status"] == 401 && l["route"] == "/api/v1/probes" && l["who"].is_null()
    });
    find(&all, |l| l["status"] == 404 && l["route"] == "-");
    let big = find(&all, |l| l["status"] == 413);
    assert!(big["bytes_in"].as_u64().unwrap() >= 2 << 20, "{big}");
    find(&all, |l| {
        l["status"] == 200 && l["route"] == "/" && l["who"] == "user:logged"
    });
    find(&all, |l| {
        l["listener"] == "ingest" && l["refused"] == "tls_not_tls" && l["status"] == 0
    });
    find(&all, |l| {
        l["listener"] == "ingest" && l["refused"] == "tls_bad_certificate"
    });
    let probe_line = find(&all, |l| l["status"] == 415);
    assert_eq!(probe_line["who"], format!("probe:{}", probe.id));
    assert_eq!(probe_line["route"], "/v1/reports");

    // No secret, anywhere.
    let text = std::fs::read_to_string(dir.join("access.log")).unwrap();
    let cookie_value = session.cookie.split('=').nth(1).unwrap();
    for secret in [
        nester.api_token.as_str(),
        cookie_value,
        password.as_str(),
        session.csrf.as_str(),
        "SECRETPATH",
        "SECRETQUERY",
    ] {
        assert!(!text.contains(secret), "`{secret}` is in the access log");
    }
}
