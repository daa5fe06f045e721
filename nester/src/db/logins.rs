//! The record of every sign-in attempt: the audit trail, and what throttling counts.

use rusqlite::params;

use super::audit::{Actor, Change};
use super::{Db, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Signed in (password, and the code when the user has TOTP).
    Success,
    /// Right password; a TOTP code is still awaited. Does not reset the failure count.
    PasswordOk,
    BadPassword,
    /// Wrong, replayed or used-up TOTP or recovery code.
    BadCode,
    /// Refused before any check: too many failures.
    Throttled,
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadPassword => "bad_password",
            Self::BadCode => "bad_code",
            Self::Throttled => "throttled",
            Self::PasswordOk => "password_ok",
        }
    }
}

pub struct LoginEvent {
    pub at_ms: i64,
    pub username: String,
    pub ip: String,
    pub user_agent: String,
    pub outcome: LoginOutcome,
}

/// Failed attempts since `since_ms`: for the account (only those after its last success)
/// and for the client IP, each with the time of the latest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub account: u32,
    pub account_last_ms: Option<i64>,
    /// The oldest counted failure of the account, for when a lock ends.
    pub account_first_ms: Option<i64>,
    pub ip: u32,
    pub ip_last_ms: Option<i64>,
}

impl Db {
    /// Records a sign-in attempt, in `login_events` (what throttling counts) and in the
    /// audit log.
    pub async fn record_login(&self, event: LoginEvent) -> Result<(), DbError> {
        let actor = Actor {
            name: format!("user:{}", event.username),
            ip: event.ip.parse().ok(),
        };
        self.audited(actor, move |conn| {
            conn.execute(
                "INSERT INTO login_events (at_ms, username, ip, user_agent, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    event.at_ms,
                    event.username,
                    event.ip,
                    event.user_agent,
                    event.outcome.as_str()
                ],
            )?;
            let action = match event.outcome {
                LoginOutcome::Success => "sign_in.success",
                LoginOutcome::PasswordOk => "sign_in.password_ok",
                _ => "sign_in.failure",
            };
            let change = Change::new(action, format!("user:{}", event.username))
                .with("outcome", event.outcome.as_str())
                .with("user_agent", &event.user_agent);
            Ok(((), Some(change)))
        })
        .await
    }

    /// Failed sign-ins of `username` since `since_ms`, and from how many addresses.
    pub async fn account_failures(
        &self,
        username: String,
        since_ms: i64,
    ) -> Result<(u32, u32), DbError> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*), count(DISTINCT ip) FROM login_events
                 WHERE username = ?1 AND outcome IN ('bad_password', 'bad_code') AND at_ms >= ?2",
                params![username, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
    }

    pub async fn login_failures(
        &self,
        username: String,
        ip: String,
        since_ms: i64,
    ) -> Result<Failures, DbError> {
        self.read(move |conn| {
            let (account, account_first_ms, account_last_ms) = conn.query_row(
                "SELECT count(*), min(at_ms), max(at_ms) FROM login_events
                 WHERE username = ?1 AND outcome IN ('bad_password', 'bad_code')
                   AND at_ms >= max(?2, coalesce((SELECT max(at_ms) FROM login_events
                       WHERE username = ?1 AND outcome = 'success'), 0))",
                params![username, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let (ip, ip_last_ms) = conn.query_row(
                "SELECT count(*), max(at_ms) FROM login_events
                 WHERE ip = ?1 AND outcome IN ('bad_password', 'bad_code') AND at_ms >= ?2",
                params![ip, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(Failures {
                account,
                account_last_ms,
                account_first_ms,
                ip,
                ip_last_ms,
            })
        })
        .await
    }
}
