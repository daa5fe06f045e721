//! `/api/v1/silences`: alerts matching a silence are raised and shown but notify nobody until
//! it expires or is lifted (noc and admin make and lift them; everyone sees them). Audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::auth::Caller;
use crate::db::silences::Silence;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::ops::silences;
pub use crate::ops::silences::NewSilence;
use crate::state::AppState;

/// The silences in force, newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerts", operation_id = "list_silences",
    responses((status = 200, body = Vec<Silence>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Silence>>, ApiError> {
    Ok(Json(state.db.active_silences().await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSilence {
    pub id: i64,
}

/// Makes a silence.
#[utoipa::path(post, path = "/api/v1/silences", tag = "alerts", operation_id = "create_silence",
    request_body = NewSilence,
    responses(
        (status = 201, body = CreatedSilence),
        (status = 400, description = "No matcher, no comment, or a time out of bounds", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewSilence>,
) -> Result<impl IntoResponse, ApiError> {
    let id = silences::make(&state.db, caller.actor(), new).await?;
    Ok((StatusCode::CREATED, Json(CreatedSilence { id })))
}

/// Lifts a silence before its time.
#[utoipa::path(post, path = "/api/v1/silences/{id}/lift", tag = "alerts", operation_id = "lift_silence",
    params(("id" = i64, Path, description = "Silence id")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 404, description = "No such silence in force", body = ErrorBody),
    ))]
pub async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    silences::lift(&state.db, caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
