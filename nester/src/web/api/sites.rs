//! `/api/v1/sites` and `/api/v1/changes`: the sites, and what changed on their networks.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use crate::db::{Change, ChangeFilter, Page};
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::ops::query::{Paging, time};
pub use crate::ops::sites::SiteSummary;
use crate::ops::sites::sites;
use crate::state::AppState;

/// Every site with its probes' states.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", operation_id = "list_sites",
    responses((status = 200, body = Vec<SiteSummary>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<SiteSummary>>, ApiError> {
    let probes = state.db.probes(None, state.clock.now()).await?;
    Ok(Json(sites(&probes)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Changes seen at or after this time (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only this site.
    site: Option<String>,
    /// Only this probe.
    probe_id: Option<Uuid>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// What changed: hosts up or down, ports opened or closed, oldest first. Follow the feed by
/// passing `next_cursor` back; on the last page, keep the last `change_id` and ask again later
/// with `cursor` set to it.
#[utoipa::path(get, path = "/api/v1/changes", tag = "changes", operation_id = "list_changes", params(ChangesQuery),
    responses(
        (status = 200, body = Page<Change>),
        (status = 400, description = "Bad time, limit or cursor", body = ErrorBody),
    ))]
pub async fn changes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<Page<Change>>, ApiError> {
    let paging = Paging {
        limit: query.limit,
        cursor: query.cursor,
    };
    let filter = ChangeFilter {
        since: time("since", query.since.as_deref())?,
        site: query.site,
        probe_id: query.probe_id,
        after: paging.cursor()?,
        newest_first: false,
        limit: paging.limit()?,
    };
    Ok(Json(state.db.changes(filter).await?))
}
