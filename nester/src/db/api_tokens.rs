//! API tokens for scripts: per user, scoped, expiring, revocable; stored as SHA-256 only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::Role;
use super::audit::{Actor, Change};
use super::users::role;
use super::{Db, DbError, millis};

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

/// How often a token's `last_used` is written, at most.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// Token owners found while the database has not changed since: every API request presents
/// its token, and most of them need nothing else from the database (answers kept by
/// [`crate::web::cache`]). Any commit (a token revoked, a user disabled or demoted) makes
/// every memo old, so what is given is what the database would say.
#[derive(Clone, Default)]
pub(super) struct TokenOwners(Arc<Mutex<HashMap<[u8; 32], Remembered>>>);

/// Memos kept at most; all go when full. Only tokens that were valid are remembered.
const MAX_TOKEN_OWNERS: usize = 1_024;

struct Remembered {
    version: u64,
    owner: TokenOwner,
    last_used_ms: Option<i64>,
    expires_ms: i64,
}

impl TokenOwners {
    fn get(&self, token_hash: &[u8; 32], version: u64, now_ms: i64) -> Option<TokenOwner> {
        let memos = self.0.lock().ok()?;
        let memo = memos.get(token_hash)?;
        let used_lately = memo
            .last_used_ms
            .is_some_and(|t| (0..=LAST_USED_EVERY_MS).contains(&(now_ms - t)));
        (memo.version == version && now_ms < memo.expires_ms && used_lately)
            .then(|| memo.owner.clone())
    }

    fn put(&self, token_hash: [u8; 32], memo: Remembered) {
        if let Ok(mut memos) = self.0.lock() {
            if memos.len() >= MAX_TOKEN_OWNERS {
                memos.clear();
            }
            memos.insert(token_hash, memo);
        }
    }
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
    pub async fn create_api_token(&self, actor: Actor, token: NewApiToken) -> Result<i64, DbError> {
        self.audited(actor, move |conn| {
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
            let id = conn.last_insert_rowid();
            let owner: String = conn.query_row(
                "SELECT username FROM users WHERE user_id = ?1",
                [token.user_id],
                |r| r.get(0),
            )?;
            let change = Change::new("api_token.create", format!("api_token:{id}"))
                .with("owner", owner)
                .with("name", &token.name)
                .with("scope", token.scope.as_str());
            Ok((id, Some(change)))
        })
        .await
    }

    /// The owner of an unrevoked, unexpired token of an enabled user; notes its use.
    pub async fn use_api_token(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
    ) -> Result<Option<TokenOwner>, DbError> {
        // Read before the lookup: a commit during it makes the memo look old, not new.
        let version = self.version()?;
        if let Some(owner) = self.token_owners.get(&token_hash, version, now_ms) {
            return Ok(Some(owner));
        }
        let owner = self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT t.token_id, t.user_id, u.username, u.role, t.scope, t.last_used_ms,
                                t.expires_ms
                         FROM api_tokens t JOIN users u USING (user_id)
                         WHERE t.token_hash = ?1 AND t.revoked_ms IS NULL AND t.expires_ms > ?2
                           AND u.disabled_ms IS NULL",
                    )?
                    .query_row(params![token_hash, now_ms], |r| {
                        Ok(Remembered {
                            version,
                            owner: TokenOwner {
                                token_id: r.get(0)?,
                                user_id: r.get(1)?,
                                username: r.get(2)?,
                                role: role(r, 3)?,
                                scope: scope(r, 4)?,
                            },
                            last_used_ms: r.get(5)?,
                            expires_ms: r.get(6)?,
                        })
                    })
                    .optional()?)
            })
            .await?;
        let Some(found) = owner else {
            return Ok(None);
        };
        let (owner, last_used) = (found.owner.clone(), found.last_used_ms);
        self.token_owners.put(token_hash, found);
        // A write per minute at most, not per request.
        if last_used.is_none_or(|t| now_ms - t > LAST_USED_EVERY_MS) {
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
        actor: Actor,
        token_id: i64,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        self.audited(actor, move |conn| {
            let revoked = conn.execute(
                "UPDATE api_tokens SET revoked_ms = coalesce(revoked_ms, ?3)
                 WHERE token_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
                params![token_id, owner, now_ms],
            )? == 1;
            let change =
                revoked.then(|| Change::new("api_token.revoke", format!("api_token:{token_id}")));
            Ok((revoked, change))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token found once is found again without the database while nothing is committed;
    /// a revocation or a disabled user from another process is seen at once, and so is
    /// expiry.
    #[tokio::test]
    async fn a_remembered_owner_is_forgotten_by_any_commit_and_at_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path).unwrap();
        db.add_user(
            crate::db::audit::Actor::cli(),
            "ana".into(),
            Role::Support,
            "hash".into(),
        )
        .await
        .unwrap();
        let user_id = db.user_id("ana".into()).await.unwrap().unwrap();
        let now = 1_000_000;
        let new = |hash: u8| NewApiToken {
            token_hash: [hash; 32],
            user_id,
            name: format!("t{hash}"),
            scope: Scope::Read,
            now_ms: now,
            expires_ms: now + 3_600_000,
        };
        let first = db
            .create_api_token(crate::db::audit::Actor::cli(), new(1))
            .await
            .unwrap();
        db.create_api_token(crate::db::audit::Actor::cli(), new(2))
            .await
            .unwrap();
        let owner = |hash: u8, at: i64| {
            let db = db.clone();
            async move { db.use_api_token([hash; 32], at).await.unwrap() }
        };
        assert_eq!(owner(1, now).await.unwrap().token_id, first);
        let version = db.version().unwrap();
        assert_eq!(owner(1, now + 1).await.unwrap().username, "ana");
        assert_eq!(db.version().unwrap(), version, "no write per request");
        assert!(
            db.token_owners.get(&[1; 32], version, now + 1).is_some(),
            "remembered"
        );

        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute(
                "UPDATE api_tokens SET revoked_ms = 1 WHERE token_id = ?",
                [first],
            )
            .unwrap();
        assert!(owner(1, now + 2).await.is_none(), "revoked elsewhere");

        assert!(owner(2, now).await.is_some());
        assert!(owner(2, now + 3_600_000).await.is_none(), "expired");
        assert!(owner(2, now + 3).await.is_some());
        other
            .execute(
                "UPDATE users SET disabled_ms = 1 WHERE user_id = ?",
                [user_id],
            )
            .unwrap();
        assert!(owner(2, now + 4).await.is_none(), "user disabled elsewhere");
        assert!(owner(3, now).await.is_none(), "never issued");
    }
}
