//! `/api/v1/probes`: probes, their reports, hosts, WAN latency and lost reports.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use time::Duration;
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::{Gap, HostSummary, Page, ProbeStatus, ProbeSummary, ReportQuery, ReportSummary};
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::ops::probes::{self, no_probe};
pub use crate::ops::probes::{ProbeDetail, WanSeries};
use crate::ops::query::{Paging, bad_query, range};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProbeFilter {
    /// Only probes of this site (exact name).
    site: Option<String>,
    /// Only probes in this state.
    status: Option<ProbeStatus>,
}

/// Every enrolled probe with its status and latest report, by site.
///
/// Status: `online` when the last report is at most two of the probe's intervals old, `stale`
/// at most six, `offline` beyond that, before its first report, or once revoked.
#[utoipa::path(get, path = "/api/v1/probes", tag = "probes", operation_id = "list_probes", params(ProbeFilter),
    responses(
        (status = 200, body = Vec<ProbeSummary>),
        (status = 400, description = "Unknown filter or status", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<ProbeFilter>,
) -> Result<Json<Vec<ProbeSummary>>, ApiError> {
    let probes = state.db.probes(None, state.clock.now()).await?;
    Ok(Json(
        probes
            .into_iter()
            .filter(|p| filter.site.as_ref().is_none_or(|s| *s == p.site))
            .filter(|p| filter.status.is_none_or(|s| s == p.status))
            .collect(),
    ))
}

/// Revokes a probe (admin): its next request is refused, on any connection, and it cannot
/// renew its certificate. Its reports and history stay.
#[utoipa::path(post, path = "/api/v1/probes/{probe_id}/revoke", tag = "probes", operation_id = "revoke_probe",
    params(("probe_id" = Uuid, Path, description = "Probe id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Not a probe id", body = ErrorBody),
        (status = 404, description = "No such probe, or already revoked", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    crate::ops::probes::revoke(&state.db, caller.actor(), probe_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One probe: status, certificate expiry, version, last report, hosts up, open ports, WAN.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}", tag = "probes", operation_id = "get_probe",
    params(("probe_id" = Uuid, Path, description = "Probe id")),
    responses(
        (status = 200, body = ProbeDetail),
        (status = 400, description = "Not a probe id", body = ErrorBody),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn one(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<Json<ProbeDetail>, ApiError> {
    let (detail, _) = probes::detail(&state.db, probe_id).await?;
    Ok(Json(detail))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// Only reports generated at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only reports generated before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
}

/// A probe's reports, newest first, one page at a time, optionally within a time range.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/reports", tag = "probes", operation_id = "list_probe_reports",
    params(("probe_id" = Uuid, Path, description = "Probe id"), ReportsQuery),
    responses(
        (status = 200, body = Page<ReportSummary>),
        (status = 400, description = "Bad limit, cursor or time", body = ErrorBody),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn reports(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<ReportsQuery>,
) -> Result<Json<Page<ReportSummary>>, ApiError> {
    let paging = Paging {
        limit: query.limit,
        cursor: query.cursor,
    };
    let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
    let query = ReportQuery {
        limit: paging.limit()?,
        before_sequence: paging.cursor()?,
        from,
        to,
    };
    state
        .db
        .probe_reports(probe_id, query)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::from(no_probe(probe_id)))
}

/// Every host the probe has seen, up ones first, with the ports open now.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/hosts", tag = "probes", operation_id = "list_probe_hosts",
    params(("probe_id" = Uuid, Path, description = "Probe id")),
    responses(
        (status = 200, body = Vec<HostSummary>),
        (status = 400, description = "Not a probe id", body = ErrorBody),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn hosts(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
) -> Result<Json<Vec<HostSummary>>, ApiError> {
    state
        .db
        .probe_hosts(probe_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::from(no_probe(probe_id)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WanQuery {
    /// Start (RFC 3339); default: 24 hours before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End (RFC 3339); default: now.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `raw`, `hour`, `day`, or `auto` (the default: raw up to 2 days, hourly up to 60, daily
    /// beyond).
    #[param(pattern = "^(raw|hour|day|auto)$")]
    resolution: Option<String>,
}

/// A probe's WAN latency over time: raw samples, or rolled up by hour or day.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/wan", tag = "probes", operation_id = "get_probe_wan",
    params(("probe_id" = Uuid, Path, description = "Probe id"), WanQuery),
    responses(
        (status = 200, body = WanSeries),
        (status = 400, description = "Bad time or resolution", body = ErrorBody),
        (status = 404, description = "No such probe", body = ErrorBody),
    ))]
pub async fn wan(
    State(state): State<AppState>,
    ApiPath(probe_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<WanQuery>,
) -> Result<Json<WanSeries>, ApiError> {
    let (from, to) = range(query.from.as_deref(), query.to.as_deref())?;
    let to = to.unwrap_or_else(|| state.clock.now());
    let from = from.unwrap_or(to - Duration::days(1));
    if from >= to {
        return Err(bad_query("`from` must be before `to`").into());
    }
    let resolution = query.resolution.as_deref();
    Ok(Json(
        probes::series(&state.db, probe_id, from, to, resolution).await?,
    ))
}

/// Missing sequence numbers (lost reports), as inclusive ranges.
#[utoipa::path(get, path = "/api/v1/probes/{probe_id}/gaps", tag = "probes", operation_id = "list_probe_gaps",
    params(("probe_id" = Uuid, Path, description = "Probe id")),
    responses(
        (status = 200, body = Vec<Gap>),
        (status = 400, description = "Not a probe id", body = ErrorBody),
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
        .ok_or_else(|| ApiError::from(no_probe(probe_id)))
}
