//! `/account/ssh`: SSH certificates for harvester boxes, for support and admin users. Ask
//! with a public key and a fresh code from the authenticator (the same rules as the API:
//! `ops/ssh_certs.rs`), see one's certificates (an admin: everyone's) and revoke them; an
//! admin also revokes keys outright (`ops/ssh_keys.rs`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::Caller;
use crate::auth::attempt::Attempt;
use crate::clock::rfc3339;
use crate::db::Role;
use crate::db::ssh_trust::RevokedKey;
use crate::error::{ApiError, ApiForm, ApiPath};
use crate::ops::ssh_certs::{self, NewCertificate};
use crate::ops::ssh_keys::{self, NewRevokedKey};
use crate::state::AppState;
use crate::web::view::{self, Nav};

struct CertificateView {
    serial: u64,
    username: String,
    principals: String,
    valid_before: String,
    issued: String,
    fingerprint: String,
    source_ip: String,
    revoked: Option<String>,
    /// Still valid and not revoked.
    live: bool,
}

/// A harvester box as an admin sees it: the SSH trust it holds, its host certificate.
struct BoxView {
    probe_id: String,
    site: String,
    /// `current`, `behind` (not fetched yet) or `failing` (could not install it).
    trust: &'static str,
    held: String,
    /// Valid until, when it has a host certificate.
    host_certificate: Option<String>,
    /// The host certificate is valid and from the signing host CA.
    host_current: bool,
}

/// Every box keeping its SSH trust, with its host certificate if it has one.
async fn boxes(state: &AppState, version: u64) -> Result<Vec<BoxView>, ApiError> {
    let now = state.clock.now_ms();
    let signing = state.ssh.cas().host.signing(now).fingerprint();
    let certificates = state.db.latest_host_certificates().await?;
    Ok(state
        .db
        .ssh_trust_holders()
        .await?
        .into_iter()
        .map(|h| {
            let cert = certificates.iter().find(|c| c.probe_id == h.probe_id);
            BoxView {
                trust: match (h.behind, h.held_version == Some(version)) {
                    (true, _) => "failing",
                    (false, true) => "current",
                    (false, false) => "behind",
                },
                held: h.held_version.map_or("none".into(), |v| v.to_string()),
                host_certificate: cert.map(|c| crate::clock::rfc3339_ms(c.valid_before_ms)),
                host_current: cert.is_some_and(|c| c.ca == signing && c.valid_before_ms > now),
                probe_id: h.probe_id,
                site: h.site,
            }
        })
        .collect())
}

#[derive(Template)]
#[template(path = "ssh.html")]
struct SshPage {
    nav: Option<Nav>,
    csrf: String,
    everyone: bool,
    principals: String,
    validity: String,
    max_validity: String,
    certificates: Vec<CertificateView>,
    /// A certificate just issued, to copy.
    issued: Option<String>,
    known_hosts: String,
    /// Keys revoked outright (shown to admins).
    revoked_keys: Vec<RevokedKey>,
    /// The harvester boxes (shown to admins).
    boxes: Vec<BoxView>,
    /// The SSH trust's version now.
    trust_version: u64,
    error: Option<String>,
}

async fn render(
    state: &AppState,
    caller: &Caller,
    status: StatusCode,
    issued: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let everyone = caller.role == Role::Admin;
    let now = state.clock.now();
    let certificates = state
        .db
        .ssh_certificates((!everyone).then_some(caller.user_id))
        .await?
        .into_iter()
        .map(|c| CertificateView {
            serial: c.serial,
            username: c.username,
            principals: c.principals.join(", "),
            valid_before: rfc3339(c.valid_before),
            issued: rfc3339(c.issued_at),
            fingerprint: c.fingerprint,
            source_ip: c.source_ip.unwrap_or_default(),
            live: c.revoked_at.is_none() && c.valid_before > now,
            revoked: c.revoked_at.map(rfc3339),
        })
        .collect();
    let config = &state.ssh.config;
    let trust_version = state.db.ssh_trust_version().await?;
    view::render(
        status,
        &SshPage {
            nav: Nav::of(caller),
            csrf: caller.csrf().to_string(),
            everyone,
            principals: config.principals_of(caller.role).join(", "),
            validity: humantime::format_duration(config.validity).to_string(),
            max_validity: humantime::format_duration(config.max_validity).to_string(),
            certificates,
            issued,
            known_hosts: ssh_certs::known_hosts(state).await?,
            revoked_keys: if everyone {
                state.db.ssh_revoked_keys().await?
            } else {
                Vec::new()
            },
            boxes: if everyone {
                boxes(state, trust_version).await?
            } else {
                Vec::new()
            },
            trust_version,
            error,
        },
    )
}

pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    render(&state, &caller, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct CertificateForm {
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    validity: String,
}

/// Issues a certificate and shows it; a refusal is shown on the page with its status.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    parts: Parts,
    ApiForm(form): ApiForm<CertificateForm>,
) -> Result<Response, ApiError> {
    let attempt = Attempt::new(&caller.username, &parts);
    let new = NewCertificate {
        public_key: form.public_key,
        totp: form.code,
        validity: Some(form.validity),
    };
    match ssh_certs::issue(&state, &caller, &attempt, new)
        .await
        .map_err(ApiError::from)
    {
        Ok(issued) => {
            render(
                &state,
                &caller,
                StatusCode::OK,
                Some(issued.certificate),
                None,
            )
            .await
        }
        Err(e) if e.status.is_client_error() => {
            render(&state, &caller, e.status, None, Some(e.message)).await
        }
        Err(e) => Err(e),
    }
}

/// Revokes a certificate of the caller's (an admin's: anyone's).
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(serial): ApiPath<u64>,
) -> Result<Response, ApiError> {
    ssh_certs::revoke(&state, &caller, serial).await?;
    Ok(Redirect::to("/account/ssh").into_response())
}

#[derive(Deserialize)]
pub struct RevokeKeyForm {
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    reason: String,
}

/// Revokes a key outright (admin); a refusal is shown on the page with its status.
pub async fn revoke_key_form(
    State(state): State<AppState>,
    caller: Caller,
    ApiForm(form): ApiForm<RevokeKeyForm>,
) -> Result<Response, ApiError> {
    let new = NewRevokedKey {
        public_key: form.public_key,
        reason: form.reason,
    };
    match ssh_keys::revoke(&state.db, caller.actor(), &new)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => Ok(Redirect::to("/account/ssh").into_response()),
        Err(e) if e.status.is_client_error() => {
            render(&state, &caller, e.status, None, Some(e.message)).await
        }
        Err(e) => Err(e),
    }
}
