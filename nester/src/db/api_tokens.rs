//! API tokens for scripts: per user, scoped, expiring, revocable; stored as SHA-256 only.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::users::role;
use super::{Db, DbError, millis};
use crate::users::Role;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// GET and HEAD only (the default).
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "read-write",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "read-write" => Ok(Self::ReadWrite),
            _ => Err(format!("unknown scope `{s}`: use read or read-write")),
        }
    }
}

fn scope(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Scope> {
    super::parsed(row, i)
}

pub struct NewApiToken {
    pub token_hash: [u8; 32],
    pub user_id: i64,
    pub name: String,
    pub scope: Scope,
    pub now_ms: i64,
    pub expires_ms: i64,
}

/// The user behind a valid token.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub token_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub token_id: i64,
    pub username: String,
    pub name: String,
    pub scope: Scope,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl Db {
    pub async fn create_api_token(&self, token: NewApiToken) -> Result<i64, DbError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO api_tokens (token_hash, user_id, name, scope, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.token_hash,
                    token.user_id,
                    token.name,
                    token.scope.as_str(),
                    token.now_ms,
                    token.expires_ms
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// The owner of an unrevoked, unexpired token of an enabled user; notes its use.
    pub async fn use_api_token(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<TokenOwner>, DbError> {
        let owner = self
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT t.token_id, t.user_id, u.username, u.role, t.scope, t.last_used_ms
                         FROM api_tokens t JOIN users u USING (user_id)
                         WHERE t.token_hash = ?1 AND t.revoked_ms IS NULL AND t.expires_ms > ?2
                           AND u.disabled_ms IS NULL",
                        params![token_hash, now_ms],
                        |r| {
                            Ok((
                                TokenOwner {
                                    token_id: r.get(0)?,
                                    user_id: r.get(1)?,
                                    username: r.get(2)?,
                                    role: role(r, 3)?,
                                    scope: scope(r, 4)?,
                                },
                                r.get::<_, Option<i64>>(5)?,
                            ))
                        },
                    )
                    .optional()?)
            })
            .await?;
        let Some((owner, last_used)) = owner else {
            return Ok(None);
        };
        // A write per minute at most, not per request.
        if last_used.is_none_or(|t| now_ms - t > 60_000) {
            let id = owner.token_id;
            self.write(move |conn| {
                conn.execute(
                    "UPDATE api_tokens SET last_used_ms = ?2 WHERE token_id = ?1",
                    params![id, now_ms],
                )?;
                Ok(())
            })
            .await?;
        }
        Ok(Some(owner))
    }

    /// Tokens of one user (or of everyone), newest first.
    pub async fn api_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiTokenInfo>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT t.token_id, u.username, t.name, t.scope, t.created_ms, t.expires_ms,
                        t.revoked_ms IS NOT NULL, t.last_used_ms
                 FROM api_tokens t JOIN users u USING (user_id)
                 WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.token_id DESC",
            )?;
            let rows = stmt
                .query_map([user_id], |r| {
                    Ok(ApiTokenInfo {
                        token_id: r.get(0)?,
                        username: r.get(1)?,
                        name: r.get(2)?,
                        scope: scope(r, 3)?,
                        created_at: millis(r, 4)?,
                        expires_at: millis(r, 5)?,
                        revoked: r.get(6)?,
                        last_used_at: match r.get::<_, Option<i64>>(7)? {
                            Some(_) => Some(millis(r, 7)?),
                            None => None,
                        },
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Revokes a token (only one of `owner`'s, when given); false if there is no such token.
    pub async fn revoke_api_token(
        &self,
        token_id: i64,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE api_tokens SET revoked_ms = coalesce(revoked_ms, ?3)
                 WHERE token_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
                params![token_id, owner, now_ms],
            )? == 1)
        })
        .await
    }
}
