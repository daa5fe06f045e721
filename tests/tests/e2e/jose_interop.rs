//! A report pulled from the API verifies with a non-Rust JOSE library (PyJWT + cryptography),
//! using only its `x5c` chain, `/ca.pem` and the committed JSON Schema. The API's OpenAPI
//! document passes an independent validator, and describes routes that exist.
//!
//! `tests/run` installs the Python side into a venv and exports `SEAHAWKS_PYTHON`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::harness::{TestNester, closed_port};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python() -> String {
    std::env::var("SEAHAWKS_PYTHON").unwrap_or_else(|_| {
        panic!("SEAHAWKS_PYTHON is not set: run the suite with `tests/run`, which installs the Python checker")
    })
}

/// Runs the Python verifier on `jws`; returns its exit status and output.
fn python_verify(dir: &Path, ca_pem: &[u8], jws: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.join("report.jws"), jws).unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/interop/verify_report.py"))
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .arg("--schema")
        .arg(repo().join("shared/schema/report.schema.json"))
        .arg(dir.join("report.jws"))
        .output()
        .expect("the Python checker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

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
    for path in served_json["paths"].as_object().unwrap().keys() {
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
