//! The ingest listener's routes: harvesters enroll, renew their certificate and post signed
//! reports here.
//!
//! Reports: a client certificate naming an enrolled, unrevoked probe ([`ProbeIdentity`]), the
//! content type, the body size, the JWS (chain to our CA, signature, report probe id = signer),
//! signer = connected probe, a sane timestamp, the enrolled site. Then the report is stored
//! whole, once. Enrollment (`enroll.rs`) is the only route open without a client certificate.

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use rustls_pki_types::UnixTime;
use serde_json::{Value, json};
use shared::VerifyError;
use shared::protocol::{JWS_MEDIA_TYPE, REPORTS_PATH};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::{Inserted, SignedReport};
use crate::enroll;
use crate::error::{ApiError, method_not_allowed, not_found};
use crate::listener::Peer;
use crate::state::AppState;

/// How far in the future a report's timestamp may be (clock skew).
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(REPORTS_PATH, post(receive))
        .route(shared::enroll::ENROLL_PATH, post(enroll::enroll))
        .route(shared::enroll::RENEW_PATH, post(enroll::renew))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// The enrolled, unrevoked probe on the other end of an mTLS connection.
#[derive(Debug, Clone)]
pub struct ProbeIdentity {
    pub probe_id: Uuid,
    pub site: String,
    pub peer: Peer,
}

impl FromRequestParts<AppState> for ProbeIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .cloned()
            .ok_or_else(|| ApiError::internal("ingest request without connection info"))?;
        let Some(probe_id) = peer.probe_id else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "client_certificate_required",
                "this route needs a probe certificate; enroll first with `harvester enroll`",
            ));
        };
        let refuse = |code, message: &str| {
            tracing::warn!(client_ip = %peer.addr.ip(), %probe_id, code, "probe refused");
            Err(ApiError::new(StatusCode::FORBIDDEN, code, message))
        };
        let standing = peer
            .standing
            .get_or_try_init(|| async { state.db.probe_standing(probe_id) })
            .await?;
        match standing.clone() {
            None => refuse("unknown_probe", "this probe is not enrolled here"),
            Some((_, true)) => refuse(
                "probe_revoked",
                "this probe has been revoked; ask an administrator to enroll it again",
            ),
            Some((site, false)) => Ok(Self {
                probe_id,
                site,
                peer,
            }),
        }
    }
}

async fn receive(
    State(state): State<AppState>,
    probe: ProbeIdentity,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = accept(&state, &probe, &headers, body).await;
    let client_ip = probe.peer.addr.ip();
    match &result {
        Ok((status, body)) => tracing::info!(
            %client_ip, probe_id = %probe.probe_id, status = status.as_u16(), report_id = %body["report_id"], "report received"
        ),
        Err(e) => tracing::warn!(
            %client_ip, probe_id = %probe.probe_id, status = e.status.as_u16(), code = e.code, message = %e.message, "report refused"
        ),
    }
    result
}

async fn accept(
    state: &AppState,
    probe: &ProbeIdentity,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_content_type(headers)?;
    let body = body?;
    // From here the report is on its way to the writer, unless refused: commits wait for it.
    let expected = state.db.expect_write();
    let verified = state
        .verifier
        .verify(&body, UnixTime::now())
        .map_err(refusal)?;
    if verified.probe_id != probe.probe_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "probe_mismatch",
            format!(
                "report signed by probe {} but sent by probe {}",
                verified.probe_id, probe.probe_id
            ),
        ));
    }
    if verified.report.generated_at > OffsetDateTime::now_utc() + MAX_CLOCK_SKEW {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "timestamp_in_future",
            format!(
                "report generated_at {} is in the future; check the harvester's clock",
                verified.report.generated_at
            ),
        ));
    }
    let (report_id, site) = (verified.report.report_id, verified.report.site.clone());
    let inserted = state
        .db
        .insert_report(SignedReport::verified(verified, body.to_vec()), expected)
        .await?;
    let conflict = |code, message: String| Err(ApiError::new(StatusCode::CONFLICT, code, message));
    let (status, outcome) = match inserted {
        Inserted::Stored => (StatusCode::CREATED, "stored"),
        Inserted::Duplicate => (StatusCode::OK, "duplicate"),
        Inserted::ConflictingId => {
            return conflict(
                "report_id_conflict",
                format!("a different report {report_id} is already stored"),
            );
        }
        Inserted::ConflictingSequence => {
            return conflict(
                "sequence_conflict",
                "this probe already sent a report with this sequence number".into(),
            );
        }
        Inserted::SiteMismatch { enrolled } => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "site_mismatch",
                format!("this probe is enrolled for site `{enrolled}`, not `{site}`"),
            ));
        }
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
