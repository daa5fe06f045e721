//! Users: creation, listing, and the changes an administrator makes.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Db, DbError, millis, now_ms};
use crate::users::Role;

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
    pub disabled: bool,
}

/// What became of a change. Refusals are answers, not errors: the caller words them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Done,
    NoSuchUser,
    AlreadyExists,
    /// It would leave no enabled admin.
    LastAdmin,
}

fn role(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(i)?;
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// Enabled admins other than `username`.
fn other_admins(conn: &rusqlite::Connection, username: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM users
         WHERE role = 'admin' AND disabled_ms IS NULL AND username <> ?1",
        [username],
        |r| r.get(0),
    )
}

impl Db {
    pub async fn add_user(
        &self,
        username: String,
        role: Role,
        password_hash: String,
    ) -> Result<UserChange, DbError> {
        self.write(move |conn| {
            let now = now_ms();
            let added = conn.execute(
                "INSERT INTO users (username, role, password_hash, created_ms, password_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (username) DO NOTHING",
                params![username, role.as_str(), password_hash, now],
            )?;
            Ok(if added == 1 {
                UserChange::Done
            } else {
                UserChange::AlreadyExists
            })
        })
        .await
    }

    pub async fn list_users(&self) -> Result<Vec<UserInfo>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT username, role, created_ms, password_ms, disabled_ms IS NOT NULL
                 FROM users ORDER BY username",
            )?;
            let users = stmt
                .query_map([], |r| {
                    Ok(UserInfo {
                        username: r.get(0)?,
                        role: role(r, 1)?,
                        created_at: millis(r, 2)?,
                        password_changed_at: millis(r, 3)?,
                        disabled: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(users)
        })
        .await
    }

    /// The stored hash of an enabled user, for login.
    pub async fn password_hash(&self, username: String) -> Result<Option<String>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT password_hash FROM users WHERE username = ?1 AND disabled_ms IS NULL",
                    [username],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Disables (or enables again) a user; the last enabled admin cannot be disabled.
    pub async fn set_disabled(
        &self,
        username: String,
        disabled: bool,
    ) -> Result<UserChange, DbError> {
        self.change_user(username, move |tx, user, is_admin| {
            if disabled && is_admin && other_admins(tx, user)? == 0 {
                return Ok(UserChange::LastAdmin);
            }
            tx.execute(
                "UPDATE users SET disabled_ms = CASE WHEN ?2 THEN coalesce(disabled_ms, ?3) END
                 WHERE username = ?1",
                params![user, disabled, now_ms()],
            )?;
            Ok(UserChange::Done)
        })
        .await
    }

    pub async fn set_password(
        &self,
        username: String,
        password_hash: String,
    ) -> Result<UserChange, DbError> {
        self.change_user(username, move |tx, user, _| {
            tx.execute(
                "UPDATE users SET password_hash = ?2, password_ms = ?3 WHERE username = ?1",
                params![user, password_hash, now_ms()],
            )?;
            Ok(UserChange::Done)
        })
        .await
    }

    /// Changes a role; the last enabled admin cannot stop being one.
    pub async fn set_role(&self, username: String, role: Role) -> Result<UserChange, DbError> {
        self.change_user(username, move |tx, user, is_admin| {
            if is_admin && role != Role::Admin && other_admins(tx, user)? == 0 {
                return Ok(UserChange::LastAdmin);
            }
            tx.execute(
                "UPDATE users SET role = ?2 WHERE username = ?1",
                params![user, role.as_str()],
            )?;
            Ok(UserChange::Done)
        })
        .await
    }

    /// Runs `change` in a transaction on an existing user (`NoSuchUser` otherwise), with
    /// the user's stored name and whether it is an enabled admin.
    async fn change_user(
        &self,
        username: String,
        change: impl FnOnce(&rusqlite::Transaction<'_>, &str, bool) -> Result<UserChange, DbError>
        + Send
        + 'static,
    ) -> Result<UserChange, DbError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let found: Option<(String, bool)> = tx
                .query_row(
                    "SELECT username, role = 'admin' AND disabled_ms IS NULL
                     FROM users WHERE username = ?1",
                    [&username],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((user, is_admin)) = found else {
                return Ok(UserChange::NoSuchUser);
            };
            let outcome = change(&tx, &user, is_admin)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }
}
