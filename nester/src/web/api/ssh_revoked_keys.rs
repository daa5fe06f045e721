//! `/api/v1/ssh/revoked-keys` (admin): SSH keys revoked outright, for a key that leaked.
//! Every certificate for it is refused on every box from its harvester's next cycle (the
//! KRL carries the key's SHA-256), whoever it was issued to and whichever CA signed it, and
//! no certificate is issued for it again. Audited (`ssh.key_revoke`); never undone.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use russh::keys::HashAlg;
use serde::Deserialize;

use crate::auth::Caller;
use crate::db::ssh_trust::RevokedKey;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::ssh_ca::keys;
use crate::state::AppState;

/// A key to revoke.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRevokedKey {
    /// An OpenSSH public key line.
    pub public_key: String,
    /// Why, for the record (e.g. "laptop stolen"); at most 200 characters.
    pub reason: String,
}

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
    let (revoked, record) = revoke_key(&state, &caller, &new).await?;
    let status = if revoked {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)))
}

/// Revokes a key for `caller`, for the API and the page alike: whether it is revoked now
/// (not before), and its record.
pub async fn revoke_key(
    state: &AppState,
    caller: &Caller,
    new: &NewRevokedKey,
) -> Result<(bool, RevokedKey), ApiError> {
    let key = keys::accepted(&new.public_key)
        .map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "bad_public_key", why))?;
    let reason = new.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_reason",
            "say why in one line of at most 200 characters",
        ));
    }
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let revoked = state
        .db
        .revoke_ssh_key(
            caller.actor(),
            fingerprint.clone(),
            key.to_openssh().map_err(ApiError::internal)?,
            reason.to_string(),
        )
        .await?;
    if revoked {
        tracing::warn!(username = %caller.username, %fingerprint, "SSH key revoked outright");
    }
    let record = state
        .db
        .ssh_revoked_keys()
        .await?
        .into_iter()
        .find(|k| k.fingerprint == fingerprint)
        .ok_or_else(|| ApiError::internal("the key just revoked is missing"))?;
    Ok((revoked, record))
}

/// Every key revoked outright, newest first.
#[utoipa::path(get, path = "/api/v1/ssh/revoked-keys", tag = "ssh", operation_id = "list_revoked_ssh_keys",
    responses((status = 200, body = Vec<RevokedKey>)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<RevokedKey>>, ApiError> {
    Ok(Json(state.db.ssh_revoked_keys().await?))
}
