//! API tokens for scripts: `shk_` and 256 random bits, handed out once; only the SHA-256 is
//! kept. The guard (`auth/mod.rs`) looks them up; made and revoked here for `nester
//! api-token` and the account page alike.

use time::Duration;

use super::{Internal, Kind, Refused};
use crate::auth::secret;
use crate::clock::to_ms;
use crate::db::audit::Actor;
use crate::db::{Db, NewApiToken, Scope};

/// The longest a token lives (a year as humantime counts it, and a day).
pub const MAX_TTL: Duration = Duration::days(367);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token needs a name of 1 to 64 characters")]
    BadName,
    #[error("a token is valid for a minute to a year")]
    BadLifetime,
    #[error("no API token {0}")]
    NotFound(i64),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Refused for TokenError {
    fn kind(&self) -> Kind {
        match self {
            Self::BadName | Self::BadLifetime => Kind::Invalid,
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::BadName | Self::BadLifetime => "bad_form",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

/// Creates an API token for `user_id`, valid for `ttl` from now, and returns it; `actor`
/// made it.
pub async fn create(
    db: &Db,
    actor: Actor,
    user_id: i64,
    name: &str,
    scope: Scope,
    ttl: Duration,
) -> Result<String, TokenError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(TokenError::BadName);
    }
    if ttl < Duration::MINUTE || ttl > MAX_TTL {
        return Err(TokenError::BadLifetime);
    }
    let token = secret::api_token().map_err(Internal::from)?;
    let now = db.clock().now();
    let new = NewApiToken {
        token_hash: secret::sha256(&token),
        user_id,
        name: name.to_string(),
        scope,
        now_ms: to_ms(now),
        expires_ms: to_ms(now + ttl),
    };
    db.create_api_token(actor, new)
        .await
        .map_err(Internal::from)?;
    Ok(token)
}

/// Revokes token `token_id`; only one of `owner`'s when given (a user on their account page).
pub async fn revoke(
    db: &Db,
    actor: Actor,
    token_id: i64,
    owner: Option<i64>,
) -> Result<(), TokenError> {
    let now = db.clock().now_ms();
    let revoked = db
        .revoke_api_token(actor, token_id, owner, now)
        .await
        .map_err(Internal::from)?;
    if !revoked {
        return Err(TokenError::NotFound(token_id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_bounded_and_revoked_by_their_owner_only() {
        let (_dir, db) = super::super::testing::db();
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_string();
        db.add_user(Actor::cli(), "ana".into(), crate::db::Role::Support, hash)
            .await
            .unwrap();
        let ana = db.user_id("ana".into()).await.unwrap().unwrap();
        let day = Duration::days(1);
        let long = "x".repeat(65);
        let refused = create(&db, Actor::cli(), ana, &long, Scope::Read, day).await;
        assert_eq!(refused.unwrap_err().kind(), Kind::Invalid);
        let forever = create(&db, Actor::cli(), ana, "sync", Scope::Read, day * 400).await;
        assert!(matches!(forever, Err(TokenError::BadLifetime)));
        let token = create(&db, Actor::cli(), ana, " sync ", Scope::Read, day)
            .await
            .unwrap();
        assert!(token.starts_with("shk_"));
        let listed = db.api_tokens(Some(ana)).await.unwrap();
        assert_eq!(listed[0].name, "sync");
        let id = listed[0].token_id;
        let someone_else = revoke(&db, Actor::cli(), id, Some(ana + 1))
            .await
            .unwrap_err();
        assert_eq!(someone_else.to_string(), format!("no API token {id}"));
        assert!(!db.api_tokens(Some(ana)).await.unwrap()[0].revoked);
        revoke(&db, Actor::cli(), id, Some(ana)).await.unwrap();
        assert!(db.api_tokens(Some(ana)).await.unwrap()[0].revoked);
        let unknown = revoke(&db, Actor::cli(), id + 1, None).await.unwrap_err();
        assert_eq!(unknown.kind(), Kind::NotFound);
    }
}
