//! `POST /v1/reports`: a client certificate naming an enrolled, unrevoked probe
//! ([`ProbeIdentity`]), the content type, the body size, the JWS (chain to our CA, signature,
//! report probe id = signer), signer = connected probe, a sane timestamp, the enrolled site.
//! Then the report is stored whole, once.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde_json::{Value, json};
use shared::VerifyError;
use shared::protocol::{JWS_MEDIA_TYPE, code};
use time::Duration;

use super::{IngestState, ProbeIdentity, identity};
use crate::clock::unix_time;
use crate::db::{Inserted, SignedReport};
use crate::error::ApiError;
use crate::metrics;

/// How far in the future a report's timestamp may be (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

pub(super) async fn receive(
    State(state): State<IngestState>,
    probe: ProbeIdentity,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = accept(&state, &probe, &headers, body).await;
    let client_ip = probe.peer.addr.ip();
    match &result {
        Ok((status, body)) => {
            metrics::report_received(body["status"].as_str().unwrap_or("stored"));
            tracing::info!(
                %client_ip, probe_id = %probe.probe_id, status = status.as_u16(), report_id = %body["report_id"], "report received"
            );
        }
        Err(e) => {
            metrics::report_received(e.code);
            tracing::warn!(
                %client_ip, probe_id = %probe.probe_id, status = e.status.as_u16(), code = e.code, message = %e.message, "report refused"
            );
        }
    }
    result
}

async fn accept(
    state: &IngestState,
    probe: &ProbeIdentity,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_content_type(headers)?;
    let body = body?;
    // From here the report is on its way to the writer, unless refused: commits wait for it.
    let expected = state.app.db.expect_write();
    let now = state.app.clock.now();
    let verified = state
        .app
        .verifier
        .verify(&body, unix_time(now))
        .map_err(refusal)?;
    if verified.probe_id != probe.probe_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            code::PROBE_MISMATCH,
            format!(
                "report signed by probe {} but sent by probe {}",
                verified.probe_id, probe.probe_id
            ),
        ));
    }
    if verified.report.generated_at > now + MAX_CLOCK_SKEW {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::TIMESTAMP_IN_FUTURE,
            format!(
                "report generated_at {} is in the future; check the harvester's clock",
                verified.report.generated_at
            ),
        ));
    }
    let (report_id, site) = (verified.report.report_id, verified.report.site.clone());
    let wan_samples = verified.report.wan.len();
    let inserted = state
        .app
        .db
        .insert_report(SignedReport::verified(verified, body.to_vec()), expected)
        .await?;
    let conflict = |code, message: String| Err(ApiError::new(StatusCode::CONFLICT, code, message));
    let (status, outcome) = match inserted {
        Inserted::Stored => {
            metrics::wan_samples_stored(wan_samples);
            (StatusCode::CREATED, "stored")
        }
        Inserted::Duplicate => (StatusCode::OK, "duplicate"),
        Inserted::ConflictingId => {
            return conflict(
                code::REPORT_ID_CONFLICT,
                format!("a different report {report_id} is already stored"),
            );
        }
        Inserted::ConflictingSequence => {
            return conflict(
                code::SEQUENCE_CONFLICT,
                "this probe already sent a report with this sequence number".into(),
            );
        }
        Inserted::SiteMismatch { enrolled } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::SITE_MISMATCH,
                format!("this probe is enrolled for site `{enrolled}`, not `{site}`"),
            ));
        }
        Inserted::ProbeRevoked => return Err(identity::revoked(&probe.peer, probe.probe_id)),
    };
    Ok((
        status,
        Json(json!({ "report_id": report_id, "status": outcome })),
    ))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match media_type {
        Some(t) if t.eq_ignore_ascii_case(JWS_MEDIA_TYPE) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the signed report as {JWS_MEDIA_TYPE}"),
        )),
    }
}

fn refusal(e: VerifyError) -> ApiError {
    let status = match &e {
        VerifyError::Malformed(_)
        | VerifyError::UnsupportedAlgorithm(_)
        | VerifyError::UnsupportedHeader(_)
        | VerifyError::MissingCertificate => StatusCode::BAD_REQUEST,
        VerifyError::ProbeMismatch { .. } => StatusCode::FORBIDDEN,
        VerifyError::UntrustedCertificate(_)
        | VerifyError::KeyIdMismatch
        | VerifyError::BadSignature
        | VerifyError::Identity(_)
        | VerifyError::Report(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.code(), e.to_string())
}
