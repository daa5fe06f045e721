//! A sign-in attempt, or anything that guesses like one (a password change, a fresh code for
//! an SSH certificate): throttled per account and per IP before anything is checked,
//! recorded with name, IP and user agent, and failures fed to the account-attack detection.
//! And the check of a fresh TOTP code: a current one, not used before (each step once).

use axum::http::request::Parts;

use crate::auth::throttle::{self, Verdict};
use crate::auth::totp;
use crate::db::{DbError, LoginEvent, LoginOutcome};
use crate::net::Peer;
use crate::state::AppState;

/// Who is asking, for the record.
pub struct Attempt {
    /// Trimmed and in lower case, as accounts are named.
    pub username: String,
    pub ip: String,
    pub user_agent: String,
}

impl Attempt {
    pub fn new(username: &str, parts: &Parts) -> Self {
        let (ip, user_agent) = crate::auth::client(&parts.headers, parts.extensions.get::<Peer>());
        Self {
            username: username.trim().to_lowercase(),
            ip,
            user_agent,
        }
    }

    pub async fn record(&self, state: &AppState, outcome: LoginOutcome) -> Result<(), DbError> {
        tracing::info!(
            username = %self.username, client_ip = %self.ip, user_agent = %self.user_agent,
            outcome = ?outcome, "sign-in attempt"
        );
        state
            .db
            .record_login(LoginEvent {
                at_ms: state.clock.now_ms(),
                username: self.username.clone(),
                ip: self.ip.clone(),
                user_agent: self.user_agent.clone(),
                outcome,
            })
            .await?;
        if matches!(outcome, LoginOutcome::BadPassword | LoginOutcome::BadCode)
            && let Err(e) =
                crate::threat::accounts::after_failed_sign_in(&state.db, &self.username).await
        {
            tracing::error!(error = %e, "cannot check the account for an attack");
        }
        Ok(())
    }

    /// `Some(seconds)` when this attempt must wait (and is recorded as throttled).
    pub async fn throttled(&self, state: &AppState) -> Result<Option<u64>, DbError> {
        let now = state.clock.now_ms();
        let failures = state
            .db
            .login_failures(
                self.username.clone(),
                self.ip.clone(),
                now - throttle::WINDOW_MS,
            )
            .await?;
        match throttle::verdict(&failures, now) {
            Verdict::Go => Ok(None),
            Verdict::Wait(secs) => {
                self.record(state, LoginOutcome::Throttled).await?;
                Ok(Some(secs))
            }
        }
    }
}

/// Whether `code` has the shape of a TOTP code (six digits, spaces around allowed).
pub fn looks_like_totp(code: &str) -> bool {
    let digits = code.trim();
    digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `code` is a current TOTP code of `user_id` whose step was not used before (it is
/// used now: a code opens one sign-in or one certificate).
pub async fn fresh_totp(state: &AppState, user_id: i64, code: &str) -> Result<bool, DbError> {
    if !looks_like_totp(code) {
        return Ok(false);
    }
    let Some((secret, _)) = state.db.totp(user_id).await? else {
        return Ok(false);
    };
    let now = u64::try_from(state.clock.now().unix_timestamp()).unwrap_or(0);
    Ok(match totp::matching_step(&secret, code.trim(), now) {
        Some(step) => state.db.accept_totp_step(user_id, step).await?,
        None => false,
    })
}
