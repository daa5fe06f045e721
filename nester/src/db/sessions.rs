//! Web sessions: one row per signed-in browser, found by the SHA-256 of its cookie token.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::Role;
use super::audit::{Actor, Change};
use super::users::role;
use super::{Db, DbError, millis};

/// How far a session has come through signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; a TOTP (or recovery) code is awaited.
    Mfa,
    /// An admin without TOTP: nothing but setting it up.
    MfaSetup,
    /// Signed in.
    Full,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::MfaSetup => "mfa_setup",
            Self::Full => "full",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "mfa" => Self::Mfa,
            "mfa_setup" => Self::MfaSetup,
            _ => Self::Full,
        }
    }
}

pub struct NewSession {
    pub token_hash: [u8; 32],
    pub user_id: i64,
    pub stage: Stage,
    pub csrf_token: String,
    pub ip: String,
    pub user_agent: String,
    pub now_ms: i64,
}

/// A live session with its user (enabled users only).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub stage: Stage,
    pub csrf_token: String,
    pub pending_totp: Option<Vec<u8>>,
    pub created_ms: i64,
    pub seen_ms: i64,
}

/// One of a user's sessions, as the user sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub seen_at: OffsetDateTime,
    pub ip: String,
    pub user_agent: String,
}

fn insert(conn: &rusqlite::Connection, s: &NewSession) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, stage, csrf_token, created_ms, seen_ms, ip, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        params![
            s.token_hash,
            s.user_id,
            s.stage.as_str(),
            s.csrf_token,
            s.now_ms,
            s.ip,
            s.user_agent
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

impl Db {
    pub async fn create_session(&self, session: NewSession) -> Result<i64, DbError> {
        self.write(move |conn| Ok(insert(conn, &session)?)).await
    }

    /// Ends session `old` and starts `new` in one transaction (a new token at each step of
    /// signing in).
    pub async fn replace_session(&self, old: i64, new: NewSession) -> Result<i64, DbError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM sessions WHERE session_id = ?1", [old])?;
            let id = insert(&tx, &new)?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    pub async fn session(&self, token_hash: [u8; 32]) -> Result<Option<SessionRow>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT s.session_id, s.user_id, u.username, u.role, s.stage, s.csrf_token,
                            s.pending_totp, s.created_ms, s.seen_ms
                     FROM sessions s JOIN users u USING (user_id)
                     WHERE s.token_hash = ?1 AND u.disabled_ms IS NULL",
                    [token_hash],
                    |r| {
                        Ok(SessionRow {
                            session_id: r.get(0)?,
                            user_id: r.get(1)?,
                            username: r.get(2)?,
                            role: role(r, 3)?,
                            stage: Stage::parse(&r.get::<_, String>(4)?),
                            csrf_token: r.get(5)?,
                            pending_totp: r.get(6)?,
                            created_ms: r.get(7)?,
                            seen_ms: r.get(8)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    pub async fn touch_session(&self, session_id: i64, now_ms: i64) -> Result<(), DbError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE sessions SET seen_ms = ?2 WHERE session_id = ?1",
                params![session_id, now_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Ends one session of `user_id`; false if it has no such session. `action` is what
    /// the audit log calls it (`session.sign_out`, `session.end`); `None` records nothing
    /// (a session found expired).
    pub async fn end_session(
        &self,
        actor: Actor,
        action: Option<&'static str>,
        user_id: i64,
        session_id: i64,
    ) -> Result<bool, DbError> {
        self.audited(actor, move |tx| {
            let ended = tx.execute(
                "DELETE FROM sessions WHERE session_id = ?1 AND user_id = ?2",
                params![session_id, user_id],
            )? == 1;
            let change = action
                .filter(|_| ended)
                .map(|a| Change::new(a, format!("session:{session_id}")));
            Ok((ended, change))
        })
        .await
    }

    pub async fn set_pending_totp(&self, session_id: i64, secret: Vec<u8>) -> Result<(), DbError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE sessions SET pending_totp = ?2 WHERE session_id = ?1",
                params![session_id, secret],
            )?;
            Ok(())
        })
        .await
    }

    /// A user's sessions, most recently used first.
    pub async fn user_sessions(&self, user_id: i64) -> Result<Vec<SessionInfo>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT session_id, created_ms, seen_ms, ip, user_agent FROM sessions
                 WHERE user_id = ?1 AND stage = 'full' ORDER BY seen_ms DESC",
            )?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok(SessionInfo {
                        session_id: r.get(0)?,
                        created_at: millis(r, 1)?,
                        seen_at: millis(r, 2)?,
                        ip: r.get(3)?,
                        user_agent: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }
}
