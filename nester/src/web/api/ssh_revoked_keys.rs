//! `/api/v1/ssh/revoked-keys` (admin): SSH keys revoked outright, for a key that leaked.
//! Every certificate for it is refused on every box from its harvester's next cycle (the
//! KRL carries the key's SHA-256), whoever it was issued to and whichever CA signed it, and
//! no certificate is issued for it again. Audited (`ssh.key_revoke`); never undone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::auth::Caller;
use crate::db::ssh_trust::RevokedKey;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::ops::ssh_keys;
pub use crate::ops::ssh_keys::NewRevokedKey;
use crate::state::AppState;

/// Revokes an SSH key outright.
#[utoipa::path(post, path = "/api/v1/ssh/revoked-keys", tag = "ssh", operation_id = "revoke_ssh_key",
    request_body = NewRevokedKey,
    responses(
        (status = 201, description = "Revoked now", body = RevokedKey),
        (status = 200, description = "It already was", body = RevokedKey),
        (status = 400, description = "Not a public key, or no reason", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewRevokedKey>,
) -> Result<impl IntoResponse, ApiError> {
    let (revoked, record) = ssh_keys::revoke(&state.db, caller.actor(), &new).await?;
    let status = if revoked {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// Every key revoked outright, newest first.
#[utoipa::path(get, path = "/api/v1/ssh/revoked-keys", tag = "ssh", operation_id = "list_revoked_ssh_keys",
    responses((status = 200, body = Vec<RevokedKey>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<RevokedKey>>, ApiError> {
    Ok(Json(state.db.ssh_revoked_keys().await?))
}
