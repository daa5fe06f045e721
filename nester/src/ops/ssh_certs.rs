//! Short-lived SSH user certificates for harvester boxes. Support and admin users ask with
//! an OpenSSH public key and a fresh TOTP code (entered for this request; a code already
//! used, at sign-in or for another certificate, is refused, and wrong codes count toward
//! sign-in throttling); the certificate names the principals of their role (`[ssh]
//! principals`). Everyone revokes their own; an admin, anyone's. Issuing and revoking are
//! audited; revocations reach harvesters in the KRL (`/v1/ssh/trust`).

use russh::keys::{HashAlg, PublicKey};
use serde::{Deserialize, Serialize};

use super::{Internal, Kind, Refused, bounded_duration};
use crate::auth::Caller;
use crate::auth::attempt::{Attempt, fresh_totp};
use crate::clock::to_ms;
use crate::db::ssh_certificates::{Issued, SshCertificate};
use crate::db::{DbError, LoginOutcome, Role};
use crate::ssh_ca::ca::Request;
use crate::ssh_ca::keys;
use crate::state::AppState;

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

#[derive(Debug, thiserror::Error)]
pub enum SshCertError {
    #[error("the {0} role gets no SSH certificates")]
    NoPrincipals(Role),
    #[error("{0}")]
    BadKey(&'static str),
    #[error("that key is revoked: make a new one (ssh-keygen -t ed25519)")]
    KeyRevoked,
    #[error("{0}")]
    BadValidity(String),
    #[error("SSH certificates need two-factor authentication: turn it on from your account page")]
    MfaRequired,
    #[error("too many wrong codes: try again in {0} s")]
    Throttled(u64),
    #[error("that code is wrong or was already used: wait for the next one")]
    BadCode,
    #[error("no SSH certificate {0} of yours")]
    NotFound(u64),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<DbError> for SshCertError {
    fn from(e: DbError) -> Self {
        Self::Internal(e.into())
    }
}

impl Refused for SshCertError {
    fn kind(&self) -> Kind {
        match self {
            Self::BadKey(_) | Self::BadValidity(_) => Kind::Invalid,
            Self::NoPrincipals(_) | Self::KeyRevoked | Self::MfaRequired | Self::BadCode => {
                Kind::Forbidden
            }
            Self::Throttled(_) => Kind::Throttled,
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::NoPrincipals(_) => "forbidden",
            Self::BadKey(_) => "bad_public_key",
            Self::KeyRevoked => "key_revoked",
            Self::BadValidity(_) => "bad_validity",
            Self::MfaRequired => "mfa_required",
            Self::Throttled(_) => "throttled",
            Self::BadCode => "bad_code",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> SshCertError {
    SshCertError::Internal(Internal(e.to_string()))
}

/// Checks a fresh TOTP code for `caller`, throttled and recorded as sign-in codes are.
async fn fresh_code(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    code: &str,
) -> Result<(), SshCertError> {
    if state.db.totp(caller.user_id).await?.is_none() {
        return Err(SshCertError::MfaRequired);
    }
    if let Some(secs) = attempt.throttled(state).await? {
        return Err(SshCertError::Throttled(secs));
    }
    if fresh_totp(state, caller.user_id, code).await? {
        return Ok(());
    }
    attempt.record(state, LoginOutcome::BadCode).await?;
    Err(SshCertError::BadCode)
}

/// Issues a certificate to `caller`.
pub async fn issue(
    state: &AppState,
    caller: &Caller,
    attempt: &Attempt,
    new: NewCertificate,
) -> Result<IssuedCertificate, SshCertError> {
    let config = &state.ssh.config;
    let principals = config.principals_of(caller.role).to_vec();
    if principals.is_empty() {
        return Err(SshCertError::NoPrincipals(caller.role));
    }
    let subject: PublicKey = keys::accepted(&new.public_key).map_err(SshCertError::BadKey)?;
    let fingerprint = subject.fingerprint(HashAlg::Sha256).to_string();
    if state.db.ssh_key_revoked(fingerprint.clone()).await? {
        return Err(SshCertError::KeyRevoked);
    }
    let max = time::Duration::try_from(config.max_validity).map_err(internal)?;
    let validity = match new
        .validity
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(text) => bounded_duration(text, max).map_err(SshCertError::BadValidity)?,
        None => time::Duration::try_from(config.validity).map_err(internal)?,
    };
    // Last: a code is spent only on a request that is otherwise good.
    fresh_code(state, caller, attempt, &new.totp).await?;

    let now = state.clock.now();
    let (after, before) = (now - BACKDATE, now + validity);
    let serial = keys::serial().map_err(internal)?;
    let key_id = format!("{} serial {serial}", caller.username);
    let cas = state.ssh.cas();
    let ca = cas.user.signing(to_ms(now));
    let request = Request {
        serial,
        key_id: key_id.clone(),
        principals: principals.clone(),
        valid_after: keys::unix_secs(to_ms(after)),
        valid_before: keys::unix_secs(to_ms(before)),
        forwarding: config.forwarding,
    };
    let certificate = ca.sign(&subject, &request).map_err(internal)?;
    let issued = Issued {
        serial,
        user_id: caller.user_id,
        key_id,
        principals,
        valid_after_ms: to_ms(after),
        valid_before_ms: to_ms(before),
        public_key: subject.to_openssh().map_err(internal)?,
        fingerprint,
        ca: ca.fingerprint(),
    };
    state
        .db
        .record_ssh_certificate(caller.actor(), issued)
        .await?;
    let (record, _) = state
        .db
        .ssh_certificate(serial)
        .await?
        .ok_or_else(|| internal("the certificate just recorded is missing"))?;
    tracing::info!(username = %caller.username, serial, "SSH certificate issued");
    crate::metrics::ssh_certificate_issued("user");
    Ok(IssuedCertificate {
        certificate: certificate.to_openssh().map_err(internal)?,
        record,
    })
}

/// Revokes certificate `serial` for `caller` (one's own; an admin, anyone's). Harvesters
/// refuse it from their next cycle.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    serial: u64,
) -> Result<SshCertificate, SshCertError> {
    let not_found = || SshCertError::NotFound(serial);
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

/// The `known_hosts` text for support engineers: an `@cert-authority` line per trusted host
/// CA, and an `@revoked` line per host key of a revoked probe whose certificate has not
/// expired yet (ssh refuses those boxes even with a valid certificate).
pub async fn known_hosts(state: &AppState) -> Result<String, DbError> {
    let now = state.clock.now_ms();
    let mut lines = state.ssh.known_hosts(now);
    for (_, key) in state.db.revoked_host_keys(now).await? {
        lines.push(format!("@revoked * {key}"));
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Via;
    use crate::db::Scope;
    use crate::db::audit::Actor;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1mYHqctpacFyS52dBi5SvFHLFR0cPd1hRlo4trZWyw laptop";

    fn caller(user_id: i64, role: Role) -> Caller {
        Caller {
            user_id,
            username: "ana".into(),
            role,
            ip: None,
            alerts_firing: 0,
            via: Via::Token {
                token_id: 1,
                scope: Scope::ReadWrite,
            },
        }
    }

    fn ask(key: &str, validity: Option<&str>) -> NewCertificate {
        NewCertificate {
            public_key: key.into(),
            totp: "123456".into(),
            validity: validity.map(str::to_string),
        }
    }

    /// Every refusal before the code is spent, in order: role, key, revoked key, validity,
    /// two-factor authentication; nothing is signed or recorded.
    #[tokio::test]
    async fn requests_are_refused_before_a_code_is_spent() {
        let (_temp, state) = crate::state::testing::state().await;
        let attempt = Attempt {
            username: "ana".into(),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        };
        let issue = |who: Caller, new: NewCertificate| {
            let (state, attempt) = (&state, &attempt);
            async move { issue(state, &who, attempt, new).await.unwrap_err() }
        };
        let noc = issue(caller(1, Role::Noc), ask(KEY, None)).await;
        assert_eq!((noc.kind(), noc.code()), (Kind::Forbidden, "forbidden"));
        let bad = issue(caller(1, Role::Support), ask("ssh-rsa AAAA", None)).await;
        assert_eq!(bad.code(), "bad_public_key");
        let long = issue(caller(1, Role::Support), ask(KEY, Some("9h"))).await;
        assert_eq!((long.kind(), long.code()), (Kind::Invalid, "bad_validity"));
        let no_mfa = issue(caller(1, Role::Support), ask(KEY, Some("30m"))).await;
        assert!(matches!(no_mfa, SshCertError::MfaRequired), "{no_mfa}");
        let fingerprint = keys::accepted(KEY)
            .unwrap()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        let revoked = state
            .db
            .revoke_ssh_key(Actor::cli(), fingerprint, KEY.into(), "stolen".into())
            .await
            .unwrap();
        assert!(revoked);
        let refused = issue(caller(1, Role::Admin), ask(KEY, None)).await;
        assert!(matches!(refused, SshCertError::KeyRevoked), "{refused}");
        assert!(state.db.ssh_certificates(None).await.unwrap().is_empty());
        let nothing = revoke(&state, &caller(1, Role::Admin), 42)
            .await
            .unwrap_err();
        assert_eq!(nothing.to_string(), "no SSH certificate 42 of yours");
    }
}
