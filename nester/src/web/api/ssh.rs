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
use russh::keys::{HashAlg, PublicKey};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::auth::attempt::{Attempt, fresh_totp};
use crate::clock::to_ms;
use crate::db::ssh_certificates::{Issued, SshCertificate};
use crate::db::{LoginOutcome, Role};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::ssh_ca::ca::Request;
use crate::ssh_ca::keys;
use crate::state::AppState;
use crate::web::params::bounded_duration;

/// How far back a certificate's validity starts, for clocks a little behind.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// A certificate request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCertificate {
    /// An OpenSSH public key line (`ssh-ed25519 AAAA... comment`): Ed25519, ECDSA, their
    /// security-key forms, or RSA of at least 3072 bits.
    pub public_key: String,
    /// A current code from the user's authenticator, not used before.
    pub totp: String,
    /// How long, e.g. `30m` (default `[ssh] validity`, at most `[ssh] max_validity`).
    pub validity: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedCertificate {
    /// The certificate, one line, for `~/.ssh/id_ed25519-cert.pub` (or `-o CertificateFile`).
    pub certificate: String,
    #[serde(flatten)]
    pub record: SshCertificate,
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

/// The key to certify, or why not.
fn subject_key(text: &str) -> Result<PublicKey, ApiError> {
    keys::accepted(text).map_err(|why| refused(StatusCode::BAD_REQUEST, "bad_public_key", why))
}

/// Checks a fresh TOTP code for `caller`, throttled and recorded as sign-in codes are.
async fn fresh_code(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    code: &str,
) -> Result<(), ApiError> {
    if state.db.totp(caller.user_id).await?.is_none() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "mfa_required",
            "SSH certificates need two-factor authentication: turn it on from your account page",
        ));
    }
    if let Some(secs) = attempt.throttled(state).await? {
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many wrong codes: try again in {secs} s"),
        ));
    }
    if fresh_totp(state, caller.user_id, code).await? {
        return Ok(());
    }
    attempt.record(state, LoginOutcome::BadCode).await?;
    Err(refused(
        StatusCode::FORBIDDEN,
        "bad_code",
        "that code is wrong or was already used: wait for the next one",
    ))
}

/// Issues a certificate to `caller`, for the API and the page alike.
pub async fn issue(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    new: NewCertificate,
) -> Result<IssuedCertificate, ApiError> {
    let config = &state.ssh.config;
    let principals = config.principals_of(caller.role).to_vec();
    if principals.is_empty() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the {} role gets no SSH certificates", caller.role),
        ));
    }
    let subject = subject_key(&new.public_key)?;
    let fingerprint = subject.fingerprint(HashAlg::Sha256).to_string();
    if state.db.ssh_key_revoked(fingerprint.clone()).await? {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "key_revoked",
            "that key is revoked: make a new one (ssh-keygen -t ed25519)",
        ));
    }
    let max = time::Duration::try_from(config.max_validity).map_err(ApiError::internal)?;
    let validity = match new
        .validity
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(text) => bounded_duration(text, max, "bad_validity")?,
        None => time::Duration::try_from(config.validity).map_err(ApiError::internal)?,
    };
    // Last: a code is spent only on a request that is otherwise good.
    fresh_code(state, caller, attempt, &new.totp).await?;

    let now = state.clock.now();
    let (after, before) = (now - BACKDATE, now + validity);
    let serial = keys::serial().map_err(ApiError::internal)?;
    let key_id = format!("{} serial {serial}", caller.username);
    let cas = state.ssh.cas();
    let ca = cas.user.signing(to_ms(now));
    let certificate = ca
        .sign(
            &subject,
            &Request {
                serial,
                key_id: key_id.clone(),
                principals: principals.clone(),
                valid_after: keys::unix_secs(to_ms(after)),
                valid_before: keys::unix_secs(to_ms(before)),
                forwarding: config.forwarding,
            },
        )
        .map_err(ApiError::internal)?;
    state
        .db
        .record_ssh_certificate(
            caller.actor(),
            Issued {
                serial,
                user_id: caller.user_id,
                key_id,
                principals,
                valid_after_ms: to_ms(after),
                valid_before_ms: to_ms(before),
                public_key: subject.to_openssh().map_err(ApiError::internal)?,
                fingerprint,
                ca: ca.fingerprint(),
            },
        )
        .await?;
    let (record, _) = state
        .db
        .ssh_certificate(serial)
        .await?
        .ok_or_else(|| ApiError::internal("the certificate just recorded is missing"))?;
    tracing::info!(username = %caller.username, serial, "SSH certificate issued");
    crate::metrics::ssh_certificate_issued("user");
    Ok(IssuedCertificate {
        certificate: certificate.to_openssh().map_err(ApiError::internal)?,
        record,
    })
}

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
        Json(issue(&state, &caller, &attempt, new).await?),
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
    Ok(Json(revoke_as(&state, &caller, serial).await?))
}

/// Revokes certificate `serial` for `caller`, for the API and the page alike.
pub async fn revoke_as(
    state: &AppState,
    caller: &Caller,
    serial: u64,
) -> Result<SshCertificate, ApiError> {
    let not_found = || ApiError::not_found(format!("no SSH certificate {serial} of yours"));
    let (_, owner) = state
        .db
        .ssh_certificate(serial)
        .await?
        .ok_or_else(not_found)?;
    if owner != caller.user_id && caller.role != Role::Admin {
        return Err(not_found());
    }
    if state
        .db
        .revoke_ssh_certificate(caller.actor(), serial)
        .await?
    {
        tracing::info!(username = %caller.username, serial, "SSH certificate revoked");
    }
    let (record, _) = state
        .db
        .ssh_certificate(serial)
        .await?
        .ok_or_else(not_found)?;
    Ok(record)
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

/// The `known_hosts` text for support engineers: an `@cert-authority` line per trusted host
/// CA, and an `@revoked` line per host key of a revoked probe whose certificate has not
/// expired yet (ssh refuses those boxes even with a valid certificate).
pub async fn known_hosts(state: &AppState) -> Result<String, ApiError> {
    let now = state.clock.now_ms();
    let mut lines = state.ssh.known_hosts(now);
    for (_, key) in state.db.revoked_host_keys(now).await? {
        lines.push(format!("@revoked * {key}"));
    }
    Ok(lines.join("\n"))
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
        known_hosts: known_hosts(&state).await?,
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
