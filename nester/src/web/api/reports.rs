//! `/api/v1/reports/{id}`: one report, parsed or as the original signed bytes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use shared::protocol::JWS_MEDIA_TYPE;
use uuid::Uuid;

use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

async fn load(state: &AppState, report_id: Uuid) -> Result<Vec<u8>, ApiError> {
    state
        .db
        .report_jws(report_id)
        .await?
        .ok_or_else(|| no_report(report_id))
}

fn no_report(report_id: Uuid) -> ApiError {
    ApiError::not_found(format!("no report {report_id}"))
}

/// The report JSON, exactly the payload the probe signed (schema: `Report`).
#[utoipa::path(get, path = "/api/v1/reports/{report_id}", tag = "reports",
    params(("report_id" = Uuid, Path, description = "Report id")),
    responses(
        (status = 200, description = "The report", content_type = "application/json",
            body = Object),
        (status = 400, description = "Not a report id", body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody),
    ))]
pub async fn parsed(
    State(state): State<AppState>,
    ApiPath(report_id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let payload = state
        .db
        .report_payload(report_id)
        .await?
        .ok_or_else(|| no_report(report_id))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], payload))
}

/// The JWS as received, for offline verification against `/ca.pem`.
#[utoipa::path(get, path = "/api/v1/reports/{report_id}/signed", tag = "reports",
    params(("report_id" = Uuid, Path, description = "Report id")),
    responses(
        (status = 200, description = "JWS compact serialisation, EdDSA, `x5c` chain to the CA",
            content_type = "application/jose", body = String),
        (status = 400, description = "Not a report id", body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody),
    ))]
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
