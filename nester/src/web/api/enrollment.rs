//! `/api/v1/enrollment-tokens` (admin): make, list and revoke the tokens harvesters enroll
//! with, as `nester token` does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::db::{TokenInfo, TokenState};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::ops::enrollment;
pub use crate::ops::enrollment::CreatedToken;
use crate::state::AppState;
use crate::web::IngestAddress;

/// A token as listed, with its state now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    #[serde(flatten)]
    pub token: TokenInfo,
    pub state: TokenState,
}

/// Every enrollment token, oldest first, with its state. The secrets are never listed.
#[utoipa::path(get, path = "/api/v1/enrollment-tokens", tag = "enrollment", operation_id = "list_enrollment_tokens",
    responses((status = 200, body = Vec<TokenView>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    let now = state.clock.now();
    Ok(Json(
        state
            .db
            .tokens()
            .await?
            .into_iter()
            .map(|token| TokenView {
                state: token.state(now),
                token,
            })
            .collect(),
    ))
}

/// What token to make.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The site the enrolled probes belong to (1 to 128 characters).
    pub site: String,
    /// How long it stays usable, e.g. `30m`, `2h`, `1d` (1 minute to 30 days).
    #[serde(default = "default_ttl")]
    #[schema(default = "30m")]
    pub ttl: String,
    /// How many probes may enroll with it (1 to 10,000).
    #[serde(default = "one")]
    #[schema(default = 1)]
    pub uses: u32,
}

fn default_ttl() -> String {
    "30m".into()
}

fn one() -> u32 {
    1
}

/// Makes a token. Its string is in this answer only: the nester keeps its hash.
#[utoipa::path(post, path = "/api/v1/enrollment-tokens", tag = "enrollment", operation_id = "create_enrollment_token",
    request_body = NewToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 400, description = "A site, lifetime or number of uses out of bounds", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    axum::Extension(ingest): axum::Extension<IngestAddress>,
    caller: Caller,
    ApiJson(new): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    let ca = &state.authorities.get().issuing.cert;
    let (site, dial) = (&new.site, ingest.0.to_string());
    let created = enrollment::make(
        &state.db,
        caller.actor(),
        ca,
        dial,
        site,
        &new.ttl,
        new.uses,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a token: nobody enrolls with it any more. Probes it already admitted stay.
#[utoipa::path(post, path = "/api/v1/enrollment-tokens/{token_id}/revoke", tag = "enrollment", operation_id = "revoke_enrollment_token",
    params(("token_id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token, or already revoked", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(token_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    enrollment::revoke(&state.db, caller.actor(), &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
