//! `/api/v1/reports/{id}`: one report, parsed or as the original signed bytes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use shared::protocol::JWS_MEDIA_TYPE;
use uuid::Uuid;

use crate::error::{ApiError, ApiPath};
use crate::state::AppState;

async fn load(state: &AppState, report_id: Uuid) -> Result<Vec<u8>, ApiError> {
    state
        .db
        .report_jws(report_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no report {report_id}")))
}

/// The report JSON, exactly the payload the probe signed.
pub async fn parsed(
    State(state): State<AppState>,
    ApiPath(report_id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let jws = load(&state, report_id).await?;
    let payload = shared::jws::payload_unverified(&jws).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], payload))
}

/// The JWS as received, for offline verification against `/ca.pem`.
pub async fn signed(
    State(state): State<AppState>,
    ApiPath(report_id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let jws = load(&state, report_id).await?;
    let disposition = format!("attachment; filename=\"report-{report_id}.jws\"");
    Ok((
        [
            (header::CONTENT_TYPE, JWS_MEDIA_TYPE.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        jws,
    ))
}
