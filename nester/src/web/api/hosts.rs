//! `/api/v1/hosts`: host search across every site, and one host with its port timeline.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use crate::db::{HostDetail, HostSummary, Page};
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::ops::hosts;
use crate::ops::query::Paging;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of a host name or address, any case (1 to 256 characters).
    #[param(min_length = 1, max_length = 256)]
    q: String,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// Hosts whose name or address contains `q`, ignoring case, across every site.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts", operation_id = "search_hosts", params(SearchQuery),
    responses(
        (status = 200, body = Page<HostSummary>),
        (status = 400, description = "Missing or too long `q`, bad limit or cursor", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Page<HostSummary>>, ApiError> {
    let paging = Paging {
        limit: query.limit,
        cursor: query.cursor,
    };
    Ok(Json(hosts::find(&state.db, &query.q, paging).await?))
}

/// One host: when it was up, and each port's timeline (first and last seen open, every close
/// and reopening).
#[utoipa::path(get, path = "/api/v1/hosts/{host_id}", tag = "hosts", operation_id = "get_host",
    params(("host_id" = i64, Path, description = "Host id (from a search or a probe's hosts)")),
    responses(
        (status = 200, body = HostDetail),
        (status = 400, description = "Not a host id", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
    ))]
pub async fn one(
    State(state): State<AppState>,
    ApiPath(host_id): ApiPath<i64>,
) -> Result<Json<HostDetail>, ApiError> {
    state
        .db
        .host(host_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no host {host_id}")))
}
