//! Users: creation, listing, and the changes an administrator makes.

use std::fmt;
use std::str::FromStr;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis};

/// What a user may do; checked on the server for every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// The dashboard; acknowledging alerts.
    Noc,
    /// Read, host search, pulling reports, their own API tokens.
    Support,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Noc => "noc",
            Self::Support => "support",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Self::Admin),
            "noc" => Ok(Self::Noc),
            "support" => Ok(Self::Support),
            _ => Err(format!("unknown role `{s}`: use admin, noc or support")),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
    pub disabled: bool,
    /// Has TOTP set up.
    pub mfa: bool,
}

/// An enabled user as signing in sees it.
#[derive(Debug, Clone)]
pub struct LoginUser {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub has_totp: bool,
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

pub(super) fn role(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Role> {
    super::parsed(row, i)
}

/// Signs `username` out everywhere.
fn end_sessions(conn: &rusqlite::Connection, username: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?1)",
        [username],
    )
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
        actor: Actor,
        username: String,
        role: Role,
        password_hash: String,
    ) -> Result<UserChange, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            let added = tx.execute(
                "INSERT INTO users (username, role, password_hash, created_ms, password_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (username) DO NOTHING",
                params![username, role.as_str(), password_hash, now],
            )?;
            Ok(if added == 1 {
                let change =
                    Change::new("user.add", format!("user:{username}")).with("role", role.as_str());
                (UserChange::Done, Some(change))
            } else {
                (UserChange::AlreadyExists, None)
            })
        })
        .await
    }

    pub async fn list_users(&self) -> Result<Vec<UserInfo>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT username, role, created_ms, password_ms, disabled_ms IS NOT NULL,
                        totp_secret IS NOT NULL
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
                        mfa: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(users)
        })
        .await
    }

    /// An enabled user, with what signing in checks.
    pub async fn login_user(&self, username: String) -> Result<Option<LoginUser>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT user_id, username, role, password_hash, totp_secret IS NOT NULL
                     FROM users WHERE username = ?1 AND disabled_ms IS NULL",
                    [username],
                    |r| {
                        Ok(LoginUser {
                            user_id: r.get(0)?,
                            username: r.get(1)?,
                            role: role(r, 2)?,
                            password_hash: r.get(3)?,
                            has_totp: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// The confirmed TOTP secret of a user and the last time step accepted.
    pub async fn totp(&self, user_id: i64) -> Result<Option<(Vec<u8>, Option<i64>)>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT totp_secret, totp_last_step FROM users
                     WHERE user_id = ?1 AND totp_secret IS NOT NULL",
                    [user_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
        .await
    }

    /// Records `step` as used; false if it (or a later one) was already accepted: a replay.
    pub async fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool, DbError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE users SET totp_last_step = ?2
                 WHERE user_id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![user_id, step],
            )? == 1)
        })
        .await
    }

    /// Turns TOTP on with a confirmed secret (whose code for `step` was just accepted) and
    /// replaces the recovery codes.
    pub async fn enable_totp(
        &self,
        actor: Actor,
        user_id: i64,
        secret: Vec<u8>,
        step: i64,
        recovery_hashes: Vec<[u8; 32]>,
    ) -> Result<(), DbError> {
        self.audited(actor, move |tx| {
            tx.execute(
                "UPDATE users SET totp_secret = ?2, totp_last_step = ?3 WHERE user_id = ?1",
                params![user_id, secret, step],
            )?;
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
            for hash in recovery_hashes {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id, hash],
                )?;
            }
            let name: String = tx.query_row(
                "SELECT username FROM users WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )?;
            Ok(((), Some(Change::new("mfa.enable", format!("user:{name}")))))
        })
        .await
    }

    /// Uses up one recovery code; false if it is unknown or already used.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: [u8; 32],
        now_ms: i64,
    ) -> Result<bool, DbError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE recovery_codes SET used_ms = ?3
                 WHERE user_id = ?1 AND code_hash = ?2 AND used_ms IS NULL",
                params![user_id, code_hash, now_ms],
            )? == 1)
        })
        .await
    }

    /// Recovery codes not used yet.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<u32, DbError> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_ms IS NULL",
                [user_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// The id of a user, enabled or not.
    pub async fn user_id(&self, username: String) -> Result<Option<i64>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT user_id FROM users WHERE username = ?1",
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
        actor: Actor,
        username: String,
        disabled: bool,
    ) -> Result<UserChange, DbError> {
        let now = self.clock.now_ms();
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.change_user(
            actor,
            username,
            Change::new(action, ""),
            move |tx, user, is_admin| {
                if disabled && is_admin && other_admins(tx, user)? == 0 {
                    return Ok(UserChange::LastAdmin);
                }
                tx.execute(
                    "UPDATE users SET disabled_ms = CASE WHEN ?2 THEN coalesce(disabled_ms, ?3) END
                 WHERE username = ?1",
                    params![user, disabled, now],
                )?;
                if disabled {
                    end_sessions(tx, user)?;
                }
                Ok(UserChange::Done)
            },
        )
        .await
    }

    pub async fn set_password(
        &self,
        actor: Actor,
        username: String,
        password_hash: String,
    ) -> Result<UserChange, DbError> {
        let now = self.clock.now_ms();
        let change = Change::new("user.password", "");
        self.change_user(actor, username, change, move |tx, user, _| {
            tx.execute(
                "UPDATE users SET password_hash = ?2, password_ms = ?3 WHERE username = ?1",
                params![user, password_hash, now],
            )?;
            end_sessions(tx, user)?;
            Ok(UserChange::Done)
        })
        .await
    }

    /// Turns TOTP off, drops the recovery codes and ends the user's sessions.
    pub async fn reset_totp(&self, actor: Actor, username: String) -> Result<UserChange, DbError> {
        let change = Change::new("mfa.reset", "");
        self.change_user(actor, username, change, move |tx, user, _| {
            tx.execute(
                "DELETE FROM recovery_codes
                 WHERE user_id = (SELECT user_id FROM users WHERE username = ?1)",
                [user],
            )?;
            tx.execute(
                "UPDATE users SET totp_secret = NULL, totp_last_step = NULL WHERE username = ?1",
                [user],
            )?;
            end_sessions(tx, user)?;
            Ok(UserChange::Done)
        })
        .await
    }

    /// Changes a role; the last enabled admin cannot stop being one.
    pub async fn set_role(
        &self,
        actor: Actor,
        username: String,
        role: Role,
    ) -> Result<UserChange, DbError> {
        let change = Change::new("user.role", "").with("role", role.as_str());
        self.change_user(actor, username, change, move |tx, user, is_admin| {
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
    /// the user's stored name and whether it is an enabled admin; records `audit` (its
    /// target set to the user) when it is done.
    async fn change_user(
        &self,
        actor: Actor,
        username: String,
        audit: Change,
        change: impl FnOnce(&rusqlite::Transaction<'_>, &str, bool) -> Result<UserChange, DbError>
        + Send
        + 'static,
    ) -> Result<UserChange, DbError> {
        self.audited(actor, move |tx| {
            let found: Option<(String, bool)> = tx
                .query_row(
                    "SELECT username, role = 'admin' AND disabled_ms IS NULL
                     FROM users WHERE username = ?1",
                    [&username],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((user, is_admin)) = found else {
                return Ok((UserChange::NoSuchUser, None));
            };
            let outcome = change(tx, &user, is_admin)?;
            let record = (outcome == UserChange::Done).then(|| Change {
                target: format!("user:{user}"),
                ..audit
            });
            Ok((outcome, record))
        })
        .await
    }
}
