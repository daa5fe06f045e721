//! `/api/v1/silences`: alerts matching a silence are raised and shown but notify nobody until
//! it expires or is lifted (noc and admin make and lift them; everyone sees them). Audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::clock::to_ms;
use crate::db::silences::{Matcher, Silence};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;
use crate::web::api::alerts::{BAD_ALERT_REQUEST, bad_alert_request, required_comment};
use crate::web::params::bounded_duration;

/// The silences in force, newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerts", operation_id = "list_silences",
    responses((status = 200, body = Vec<Silence>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Silence>>, ApiError> {
    Ok(Json(state.db.active_silences().await?))
}

/// A silence to make: at least one of `rule`, `site`, `subject`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub rule: Option<String>,
    pub site: Option<String>,
    pub subject: Option<String>,
    /// Why (1 to 500 characters).
    pub comment: String,
    /// How long, e.g. `2h`, `1d` (1 minute to 30 days).
    #[serde(rename = "for")]
    pub for_: String,
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
    let id = make(&state, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(CreatedSilence { id })))
}

/// Makes a silence for the API and the page alike.
pub async fn make(state: &AppState, caller: &Caller, new: NewSilence) -> Result<i64, ApiError> {
    let field = |v: Option<String>| -> Result<Option<String>, ApiError> {
        match v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > 200 => {
                Err(bad_alert_request("a matcher is at most 200 characters"))
            }
            other => Ok(other),
        }
    };
    let matcher = Matcher {
        rule: field(new.rule)?,
        site: field(new.site)?,
        subject: field(new.subject)?,
    };
    if matcher.is_empty() {
        return Err(bad_alert_request(
            "say what to silence: a rule, a site or a subject (or several)",
        ));
    }
    let comment = required_comment(&new.comment)?;
    let until = state.clock.now()
        + bounded_duration(&new.for_, time::Duration::days(30), BAD_ALERT_REQUEST)?;
    Ok(state
        .db
        .add_silence(caller.actor(), matcher, comment, to_ms(until))
        .await?)
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
    lift_silence(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn lift_silence(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    if !state.db.lift_silence(caller.actor(), id).await? {
        return Err(ApiError::not_found(format!("no silence {id} in force")));
    }
    Ok(())
}
