//! A report pulled from the API verifies with a non-Rust JOSE library (PyJWT + cryptography),
//! using only its `x5c` chain, `/ca.pem` and the committed JSON Schema. The API's OpenAPI
//! document passes an independent validator, describes routes that exist, and the answers of
//! a live nester match it (schemathesis).
//!
//! `tests/run` installs the Python side into a venv and exports `SEAHAWKS_PYTHON`.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::harness::{TestNester, closed_port};
use crate::interop::{python, python_verify, repo};

#[tokio::test]
async fn pyjwt_verifies_a_report_pulled_from_the_api() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let service = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ports = format!("{},{}", service.local_addr().unwrap().port(), closed_port());
    let (signed, _) = nester.agent(&probe, &ports).cycle().await.unwrap();

    let jws = nester
        .get(&format!("/api/v1/reports/{}/signed", signed.report_id))
        .await
        .body;
    let ca = nester.get("/ca.pem").await.body;
    let temp = tempfile::tempdir().unwrap();

    let (ok, out) = python_verify(temp.path(), &ca, &jws);
    assert!(ok, "PyJWT refused a genuine report: {out}");
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["probe_id"], probe.id.to_string());
    assert_eq!(summary["report_id"], signed.report_id.to_string());

    // The checker is not a rubber stamp: a changed payload, or another CA, fails.
    let text = String::from_utf8(jws.clone()).unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    let mut payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let at = payload.windows(6).position(|w| w == b"\"site\"").unwrap();
    payload[at + 9] ^= 0x01;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(&payload),
        parts[2]
    );
    let (ok, out) = python_verify(temp.path(), &ca, tampered.as_bytes());
    assert!(
        !ok && out.contains("InvalidSignatureError"),
        "tampered report accepted: {out}"
    );

    let foreign = TestNester::start().await;
    let other_ca = foreign.get("/ca.pem").await.body;
    let (ok, out) = python_verify(temp.path(), &other_ca, &jws);
    assert!(!ok, "report verified against another CA: {out}");
}

/// The served OpenAPI document is the committed one, valid OpenAPI 3.1 to a non-Rust
/// validator, and every path it lists answers (a real route, not the 404 fallback).
#[tokio::test]
async fn the_openapi_document_is_valid_and_true() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (signed, _) = nester
        .agent(&probe, &closed_port().to_string())
        .cycle()
        .await
        .unwrap();

    let served = nester.get("/api/v1/openapi.json").await;
    assert_eq!(served.status, 200);
    let committed = std::fs::read(repo().join("docs/openapi.json")).unwrap();
    let served_json: serde_json::Value = serde_json::from_slice(&served.body).unwrap();
    let committed_json: serde_json::Value = serde_json::from_slice(&committed).unwrap();
    assert_eq!(
        served_json, committed_json,
        "served and committed documents differ"
    );

    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("openapi.json");
    std::fs::write(&file, &served.body).unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/interop/validate_openapi.py"))
        .arg(&file)
        .output()
        .expect("the Python validator runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3.1.0");

    let found = nester.get("/api/v1/hosts?q=127.0.0.1").await.json();
    let host_id = found["items"][0]["host_id"].to_string();
    assert_ne!(host_id, "null", "the scanned host is in history: {found}");
    // Every path one can read answers; those that only change things (`POST`) are the
    // admin's, covered in admin.rs.
    let paths = served_json["paths"].as_object().unwrap();
    for path in paths.keys().filter(|p| paths[*p].get("get").is_some()) {
        let mut concrete = path
            .replace("{probe_id}", &probe.id.to_string())
            .replace("{report_id}", &signed.report_id.to_string())
            .replace("{host_id}", &host_id);
        if concrete == "/api/v1/hosts" {
            concrete.push_str("?q=127");
        }
        let response = nester.get(&concrete).await;
        assert_eq!(response.status, 200, "{concrete}");
    }
}

/// Real answers against the OpenAPI document, both ways round: schemathesis generates
/// requests from the document (valid ones, and invalid ones the API must refuse with a 4xx)
/// and checks every answer's status, content type, headers and body against it. The seed is
/// fixed, so a failure is reproducible with the command it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_answers_true_to_the_document() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    nester
        .agent(&probe, &closed_port().to_string())
        .cycle()
        .await
        .unwrap();
    let schemathesis = Path::new(&python()).with_file_name("schemathesis");
    let from_to = r"^/api/v1/probes/\{probe_id\}/(reports|wan)$";
    // `from` before `to` is the one rule the document cannot state: those two operations
    // are run without the check that every schema-valid request is accepted.
    for (select, exclude) in [
        (format!("--exclude-path-regex={from_to}"), None),
        (
            format!("--include-path-regex={from_to}"),
            Some("--exclude-checks=positive_data_acceptance"),
        ),
    ] {
        let bearer = format!("Authorization: Bearer {}", nester.api_token);
        let out = tokio::task::spawn_blocking({
            let (schemathesis, url) = (schemathesis.clone(), format!("https://{}", nester.web));
            let ca = nester.dir.ca_cert();
            move || {
                Command::new(schemathesis)
                    .arg("run")
                    .arg(repo().join("docs/openapi.json"))
                    .args(["--url", &url, "-H", &bearer, "--tls-verify"])
                    .arg(ca)
                    .args(["--checks", "all", "--max-examples", "20", "--seed", "1"])
                    .args(["--no-color", &select])
                    .args(exclude)
                    .output()
                    .expect("schemathesis runs (tests/run installs it)")
            }
        })
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Tested:"), "{text}");
    }
}
