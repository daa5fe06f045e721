//! `GET /api/v1/alerts`: alerts, newest first, filtered and paged. Security alerts (a revoked
//! probe's key in use, bad report signatures, bad enrollment tokens, bans, attacks on an
//! account) are raised by detection; an alert is one condition, with a count of occurrences.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::db::alerts::{Alert, AlertQuery, AlertState, Severity};
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;
use crate::web::params::Paging;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertFilter {
    /// Only alerts in this state.
    pub state: Option<AlertState>,
    /// Only alerts of this severity.
    pub severity: Option<Severity>,
    /// Only this rule, e.g. `security.revoked_probe`.
    pub rule: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A page of alerts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub next_cursor: Option<String>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", operation_id = "list_alerts", params(AlertFilter),
    responses(
        (status = 200, body = AlertPage),
        (status = 400, description = "A bad filter or cursor", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<AlertFilter>,
) -> Result<Json<AlertPage>, ApiError> {
    read(&state, filter).await.map(Json)
}

/// A page of alerts; for the API and the page alike.
pub async fn read(state: &AppState, f: AlertFilter) -> Result<AlertPage, ApiError> {
    let paging = Paging {
        limit: f.limit,
        cursor: f.cursor,
    };
    let limit = paging.limit()?;
    let items = state
        .db
        .alerts(AlertQuery {
            state: f.state,
            severity: f.severity,
            rule: f.rule.filter(|r| !r.is_empty()),
            before: paging.cursor()?,
            limit,
        })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(AlertPage { items, next_cursor })
}
