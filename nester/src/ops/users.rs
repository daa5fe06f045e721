//! Users of the dashboard and the API: added, disabled and enabled, given a role or a new
//! password, their two-factor authentication reset (`nester user` and the Users page alike).
//! Passwords are checked against the policy and stored as Argon2id; every change is audited;
//! the last enabled admin is never disabled or demoted.

use super::{Internal, Kind, Refused};
use crate::auth::credentials;
use crate::db::audit::Actor;
use crate::db::{Db, Role, UserChange};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name or password the policy refuses, in its words.
    #[error("{0}")]
    Policy(String),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    #[error("user `{0}` already exists")]
    AlreadyExists(String),
    #[error(
        "`{0}` is the last enabled admin; make another admin first, or nobody could administer this nester"
    )]
    LastAdmin(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Refused for UserError {
    fn kind(&self) -> Kind {
        match self {
            Self::Policy(_) | Self::AlreadyExists(_) | Self::LastAdmin(_) => Kind::Invalid,
            Self::NoSuchUser(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Policy(_) | Self::AlreadyExists(_) | Self::LastAdmin(_) => "bad_form",
            Self::NoSuchUser(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<crate::db::DbError> for UserError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Internal(e.into())
    }
}

fn outcome(change: UserChange, username: &str) -> Result<(), UserError> {
    let name = username.to_string();
    match change {
        UserChange::Done => Ok(()),
        UserChange::NoSuchUser => Err(UserError::NoSuchUser(name)),
        UserChange::AlreadyExists => Err(UserError::AlreadyExists(name)),
        UserChange::LastAdmin => Err(UserError::LastAdmin(name)),
    }
}

async fn hash(password: &str) -> Result<String, UserError> {
    credentials::check_password(password).map_err(|e| UserError::Policy(e.to_string()))?;
    Ok(credentials::hash_password(password.to_string())
        .await
        .map_err(Internal::from)?)
}

/// Adds `username` with `role` and `password`.
pub async fn add(
    db: &Db,
    actor: Actor,
    username: &str,
    role: Role,
    password: &str,
) -> Result<(), UserError> {
    credentials::check_username(username).map_err(|e| UserError::Policy(e.to_string()))?;
    let hash = hash(password).await?;
    let who = actor.name.clone();
    outcome(
        db.add_user(actor, username.to_string(), role, hash).await?,
        username,
    )?;
    tracing::info!(by = %who, %username, %role, "user added");
    Ok(())
}

/// Disables (no more sign-ins, sessions ended) or enables `username`.
pub async fn set_disabled(
    db: &Db,
    actor: Actor,
    username: &str,
    disabled: bool,
) -> Result<(), UserError> {
    let change = db
        .set_disabled(actor, username.to_string(), disabled)
        .await?;
    outcome(change, username)
}

pub async fn set_role(db: &Db, actor: Actor, username: &str, role: Role) -> Result<(), UserError> {
    outcome(
        db.set_role(actor, username.to_string(), role).await?,
        username,
    )
}

/// Gives `username` a new password; their sessions end.
pub async fn set_password(
    db: &Db,
    actor: Actor,
    username: &str,
    password: &str,
) -> Result<(), UserError> {
    let hash = hash(password).await?;
    outcome(
        db.set_password(actor, username.to_string(), hash).await?,
        username,
    )
}

/// Turns off `username`'s two-factor authentication (lost authenticator and recovery
/// codes); their sessions end. An admin sets it up again at the next sign-in.
pub async fn reset_mfa(db: &Db, actor: Actor, username: &str) -> Result<(), UserError> {
    outcome(db.reset_totp(actor, username.to_string()).await?, username)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_are_refused_by_policy_and_the_last_admin_stays_one() {
        let (_dir, db) = super::super::testing::db();
        let cli = Actor::cli;
        let good = "a long enough password";
        let short = add(&db, cli(), "ana", Role::Admin, "short")
            .await
            .unwrap_err();
        assert!(matches!(short, UserError::Policy(_)), "{short}");
        let name = add(&db, cli(), "Ana Maria", Role::Admin, good)
            .await
            .unwrap_err();
        assert_eq!(name.kind(), Kind::Invalid);
        add(&db, cli(), "ana", Role::Admin, good).await.unwrap();
        let twice = add(&db, cli(), "ana", Role::Noc, good).await.unwrap_err();
        assert_eq!(twice.to_string(), "user `ana` already exists");
        let last = set_role(&db, cli(), "ana", Role::Noc).await.unwrap_err();
        assert!(matches!(last, UserError::LastAdmin(_)), "{last}");
        assert!(matches!(
            set_disabled(&db, cli(), "ana", true).await,
            Err(UserError::LastAdmin(_))
        ));
        let nobody = reset_mfa(&db, cli(), "nobody").await.unwrap_err();
        assert_eq!(
            (nobody.kind(), nobody.to_string()),
            (Kind::NotFound, "no user `nobody`".into())
        );
        add(&db, cli(), "ben", Role::Admin, good).await.unwrap();
        set_disabled(&db, cli(), "ana", true).await.unwrap();
        set_password(&db, cli(), "ana", "another long password")
            .await
            .unwrap();
    }
}
