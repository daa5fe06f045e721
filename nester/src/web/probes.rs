//! `/api/v1/probes`: probes and their reports.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use crate::db::{Gap, Page, ProbeSummary, ReportSummary};
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Every enrolled probe with its latest report.
#[utoipa::path(get, path = "/api/v1/probes", tag = "probes",
    responses((status = 200, body = Vec<ProbeSummary>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<ProbeSummary>>, ApiError> {
    Ok(Json(state.db.probes().await?))
}

/// Paging: `limit` (1-500, default 50) and `cursor` (the `next_cursor` of the previous page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A probe's reports, newest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/reports", tag = "probes",
    params(("probe_id" = Uuid, Path, description = "Probe id"), PageQuery),
    responses(
        (status = 200, body = Page<ReportSummary>),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn reports(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Page<ReportSummary>>, ApiError> {
    let bad = |m: String| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_query", m);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let before = match query.cursor {
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| bad(format!("invalid cursor `{c}`")))?,
        ),
        None => None,
    };
    state
        .db
        .probe_reports(probe_id, limit, before)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no probe {probe_id}")))
}

/// Missing sequence numbers (lost reports), as inclusive ranges.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/gaps", tag = "probes",
    params(("probe_id" = Uuid, Path, description = "Probe id")),
    responses(
        (status = 200, body = Vec<Gap>),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn gaps(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<Json<Vec<Gap>>, ApiError> {
    state
        .db
        .gaps(probe_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no probe {probe_id}")))
}
