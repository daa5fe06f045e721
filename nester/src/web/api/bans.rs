//! `GET /api/v1/bans` (admin): the bans in force and why.

use axum::Json;
use axum::extract::State;

use crate::db::Ban;
use crate::error::ApiError;
use crate::state::AppState;

/// Bans in force, newest first: the prefix refused at the accept loop, the rule that banned
/// it (or `manual`), why, until when, and how many times it was banned.
#[utoipa::path(get, path = "/api/v1/bans", tag = "security", operation_id = "list_bans",
    responses((status = 200, body = Vec<Ban>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Ban>>, ApiError> {
    Ok(Json(state.db.active_bans().await?))
}
