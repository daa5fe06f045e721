//! `GET /api/v1/alerts`: alerts, newest first, filtered and paged. Security alerts (a revoked
//! probe's key in use, bad report signatures, bad enrollment tokens, bans, attacks on an
//! account) are raised by detection; an alert is one condition, with a count of occurrences.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::ops::alerts;
pub use crate::ops::alerts::{AlertFilter, AlertPage};
use crate::state::AppState;

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
    Ok(Json(alerts::read(&state.db, filter).await?))
}

/// An acknowledgement: why, and for how long (the alert fires again after).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledge {
    /// What is being done about it (1 to 500 characters).
    pub comment: String,
    /// How long, e.g. `1h`, `4h`, `1d` (1 minute to 7 days).
    #[serde(default = "four_hours", rename = "for")]
    #[schema(default = "4h")]
    pub for_: String,
}

fn four_hours() -> String {
    "4h".into()
}

/// Acknowledges an open alert (noc, admin): it stops firing until the time given is up, or it
/// resolves. Audited.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", operation_id = "acknowledge_alert",
    params(("id" = i64, Path, description = "Alert id")),
    request_body = Acknowledge,
    responses(
        (status = 204, description = "Acknowledged"),
        (status = 400, description = "No comment, or a time out of bounds", body = ErrorBody),
        (status = 404, description = "No such open alert", body = ErrorBody),
    ))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Acknowledge>,
) -> Result<StatusCode, ApiError> {
    alerts::acknowledge(&state.db, caller.actor(), id, &body.comment, &body.for_).await?;
    Ok(StatusCode::NO_CONTENT)
}
