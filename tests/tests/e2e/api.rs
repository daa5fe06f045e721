//! The client API as the tests read it, and reports stored past ingest.

use hyper::StatusCode;
use nester::db::SignedReport;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::TestNester;

/// `t` as the API writes times (RFC 3339).
pub fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// A GET with the harness's API token that must answer 200; its JSON.
pub async fn get_ok(nester: &TestNester, path: &str) -> Value {
    let response = nester.get(path).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
}

/// Stores a report signed by the test straight through the database, past the listener.
pub async fn store(
    db: &nester::db::Db,
    report: shared::Report,
    jws: String,
) -> nester::db::Inserted {
    let signed = SignedReport::own(report, "kid".into(), jws.into_bytes()).unwrap();
    db.insert_report(signed, db.expect_write()).await.unwrap()
}
