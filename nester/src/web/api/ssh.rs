//! `/api/v1/ssh/`: short-lived SSH user certificates for harvester boxes. Support and admin
//! users ask with an OpenSSH public key and a fresh TOTP code (entered for this request; a
//! code already used, at sign-in or for another certificate, is refused, and wrong codes
//! count toward sign-in throttling); the certificate names the principals of their role
//! (`[ssh] principals`). Everyone sees and revokes their own; an admin, anyone's. Issuing
//! and revoking are audited; revocations reach harvesters in the KRL (`/v1/ssh/trust`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::auth::Caller;
use crate::auth::attempt::Attempt;
use crate::db::Role;
use crate::db::ssh_certificates::SshCertificate;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::ops::ssh_certs;
pub use crate::ops::ssh_certs::{IssuedCertificate, NewCertificate};
use crate::state::AppState;

/// Issues an SSH user certificate.
#[utoipa::path(post, path = "/api/v1/ssh/certificates", tag = "ssh", operation_id = "issue_ssh_certificate",
    request_body = NewCertificate,
    responses(
        (status = 201, body = IssuedCertificate),
        (status = 400, description = "Not a usable public key, or a validity out of bounds", body = ErrorBody),
        (status = 403, description = "A role without certificates, no two-factor authentication, or a wrong or used code", body = ErrorBody),
        (status = 429, description = "Too many wrong codes", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    ApiJson(new): ApiJson<NewCertificate>,
) -> Result<impl IntoResponse, ApiError> {
    let attempt = Attempt::new(&caller.username, &parts);
    Ok((
        StatusCode::CREATED,
        Json(ssh_certs::issue(&state, &caller, &attempt, new).await?),
    ))
}

/// The caller's certificates (an admin's: everyone's), newest first.
#[utoipa::path(get, path = "/api/v1/ssh/certificates", tag = "ssh", operation_id = "list_ssh_certificates",
    responses((status = 200, body = Vec<SshCertificate>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SshCertificate>>, ApiError> {
    let whose = (caller.role != Role::Admin).then_some(caller.user_id);
    Ok(Json(state.db.ssh_certificates(whose).await?))
}

/// Revokes a certificate (one's own; an admin, anyone's). Harvesters refuse it from their
/// next cycle.
#[utoipa::path(post, path = "/api/v1/ssh/certificates/{serial}/revoke", tag = "ssh",
    operation_id = "revoke_ssh_certificate",
    params(("serial" = u64, Path)),
    responses(
        (status = 200, body = SshCertificate),
        (status = 404, description = "No such certificate of yours", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<u64>,
) -> Result<Json<SshCertificate>, ApiError> {
    Ok(Json(ssh_certs::revoke(&state, &caller, serial).await?))
}

/// What clients trust: the user CAs' public keys and the `known_hosts` lines for host
/// certificates.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SshAuthorities {
    /// The user CA that signs now (harvesters install every trusted one on their own).
    pub user_ca: String,
    pub user_ca_fingerprint: String,
    /// Every user CA trusted now: two during a rotation.
    pub user_cas: Vec<String>,
    /// Add to `~/.ssh/known_hosts`: every harvester box whose host key the nester signed is
    /// then trusted without a question. One line per host CA trusted now (two during a
    /// rotation), and an `@revoked` line per host key of a revoked probe.
    pub known_hosts: String,
}

/// The SSH CAs' public halves.
#[utoipa::path(get, path = "/api/v1/ssh/ca", tag = "ssh", operation_id = "ssh_authorities",
    responses((status = 200, body = SshAuthorities)))]
pub async fn authorities(State(state): State<AppState>) -> Result<Json<SshAuthorities>, ApiError> {
    let now = state.clock.now_ms();
    let cas = state.ssh.cas();
    let signing = cas.user.signing(now);
    Ok(Json(SshAuthorities {
        user_ca: signing.openssh(),
        user_ca_fingerprint: signing.fingerprint(),
        user_cas: cas
            .user
            .trusted(now)
            .iter()
            .map(|ca| ca.openssh())
            .collect(),
        known_hosts: ssh_certs::known_hosts(&state).await?,
    }))
}

/// The KRL of revoked user certificates, for boxes without a harvester (`RevokedKeys`;
/// harvesters fetch it themselves each cycle). `X-Krl-Version` rises with each revocation.
#[utoipa::path(get, path = "/api/v1/ssh/krl", tag = "ssh", operation_id = "ssh_krl",
    responses((status = 200, description = "An OpenSSH KRL (binary)", content_type = "application/octet-stream")))]
pub async fn krl(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (version, bytes) = state
        .ssh
        .krl(&state.db, state.clock.now_ms())
        .await
        .map_err(ApiError::internal)?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (
                axum::http::header::HeaderName::from_static("x-krl-version"),
                version.to_string(),
            ),
        ],
        bytes,
    ))
}
