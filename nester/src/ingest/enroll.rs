//! `POST /v1/enroll` (token + CSR, no client certificate yet) and `POST /v1/renew` (CSR, over
//! mTLS). Both answer with a certificate bound to the probe id, from the issuing CA; the key
//! never leaves the probe. `GET /v1/trust` (over mTLS): the signed bundle of CAs to trust.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::enroll::{CertificateResponse, EnrollRequest, RenewRequest};
use shared::protocol::code;
use shared::trust::SignedTrust;
use uuid::Uuid;

use super::{IngestState, ProbeIdentity};
use crate::db::audit::Actor;
use crate::db::{IssuedCert, TokenRefusal};
use crate::error::ApiError;
use crate::net::Peer;
use crate::pki::{CsrError, ProbeCert};

/// Enrollment attempts per client IP.
pub type EnrollLimiter = Arc<DefaultKeyedRateLimiter<IpAddr>>;

pub fn limiter(per_minute: u32) -> EnrollLimiter {
    let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(rate)))
}

pub(super) async fn enroll(
    State(state): State<IngestState>,
    Extension(peer): Extension<Peer>,
    request: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CertificateResponse>), ApiError> {
    let client_ip = peer.addr.ip();
    if state.enroll_limiter.check_key(&client_ip).is_err() {
        tracing::warn!(%client_ip, "enrollment rate limit hit");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many enrollment attempts from this address; wait a minute",
        ));
    }
    if state.enroll_limiter.len() > 10_000 {
        state.enroll_limiter.retain_recent();
    }
    let Json(request) = request?;
    let refused = |r| {
        tracing::warn!(%client_ip, token_id = %request.token_id, refusal = ?r, "enrollment refused");
        token_refusal(r)
    };
    // Check before signing, so a bad token costs us no signature; the real check that uses
    // the token happens again in the same transaction that records the probe.
    state
        .app
        .db
        .check_token(request.token_id.clone(), request.secret.clone())
        .await?
        .map_err(refused)?;
    let probe_id = Uuid::new_v4();
    let cert = sign(&state, &request.csr, probe_id)?;
    let issued = IssuedCert {
        probe_id,
        serial: cert.serial.clone(),
        expires_at: cert.expires_at,
        issuer: cert.issuer.clone(),
    };
    let site = state
        .app
        .db
        .enroll(
            Actor::probe(probe_id, client_ip),
            request.token_id.clone(),
            request.secret.clone(),
            issued,
        )
        .await?
        .map_err(refused)?;
    tracing::info!(%client_ip, %probe_id, %site, token_id = %request.token_id, serial = %cert.serial, "probe enrolled");
    Ok((
        StatusCode::CREATED,
        Json(response(&state, probe_id, site, cert)),
    ))
}

pub(super) async fn renew(
    State(state): State<IngestState>,
    probe: ProbeIdentity,
    request: Result<Json<RenewRequest>, JsonRejection>,
) -> Result<Json<CertificateResponse>, ApiError> {
    let Json(request) = request?;
    let cert = sign(&state, &request.csr, probe.probe_id)?;
    let issued = IssuedCert {
        probe_id: probe.probe_id,
        serial: cert.serial.clone(),
        expires_at: cert.expires_at,
        issuer: cert.issuer.clone(),
    };
    // Refused here, not only when the connection opened: it may have been revoked since.
    if !state
        .app
        .db
        .record_renewal(Actor::probe(probe.probe_id, probe.peer.addr.ip()), issued)
        .await?
    {
        return Err(super::identity::revoked(&probe.peer, probe.probe_id));
    }
    tracing::info!(client_ip = %probe.peer.addr.ip(), probe_id = %probe.probe_id, serial = %cert.serial, "certificate renewed");
    Ok(Json(response(&state, probe.probe_id, probe.site, cert)))
}

pub(super) async fn trust(
    _probe: ProbeIdentity,
    State(state): State<IngestState>,
) -> Json<SignedTrust> {
    Json(state.app.authorities.get().trust().clone())
}

fn sign(state: &IngestState, csr: &str, probe_id: Uuid) -> Result<ProbeCert, ApiError> {
    state
        .app
        .authorities
        .get()
        .issuing
        .sign_probe_csr(csr, probe_id, state.probe_validity, state.app.clock.now())
        .map_err(|e| match e {
            CsrError::Sign(e) => ApiError::internal(e),
            e => ApiError::new(StatusCode::BAD_REQUEST, code::BAD_CSR, e.to_string()),
        })
}

fn response(
    state: &IngestState,
    probe_id: Uuid,
    site: String,
    cert: ProbeCert,
) -> CertificateResponse {
    CertificateResponse {
        probe_id,
        site,
        certificate: cert.cert_pem,
        ca: state.app.authorities.get().issuing.cert.pem.to_string(),
    }
}

fn token_refusal(r: TokenRefusal) -> ApiError {
    let (status, code, message) = match r {
        TokenRefusal::Invalid => (
            StatusCode::UNAUTHORIZED,
            code::TOKEN_INVALID,
            "this enrollment token is not valid here; check it was copied in full",
        ),
        TokenRefusal::Expired => (
            StatusCode::FORBIDDEN,
            code::TOKEN_EXPIRED,
            "this enrollment token has expired",
        ),
        TokenRefusal::UsedUp => (
            StatusCode::FORBIDDEN,
            code::TOKEN_USED_UP,
            "this enrollment token has been used up",
        ),
        TokenRefusal::Revoked => (
            StatusCode::FORBIDDEN,
            code::TOKEN_REVOKED,
            "this enrollment token has been revoked",
        ),
    };
    ApiError::new(
        status,
        code,
        format!("{message}; ask an administrator for a new one"),
    )
}
