//! API tokens for scripts: `shk_` and 256 random bits, handed out once; only the SHA-256 is
//! kept. The guard (`auth/mod.rs`) looks them up; this makes them.

use time::Duration;

use super::secret;
use crate::clock::to_ms;
use crate::db::audit::Actor;
use crate::db::{Db, NewApiToken, Scope};

/// Creates an API token for `user_id`, valid for `ttl` from now, and returns it; `actor`
/// made it.
pub async fn create(
    db: &Db,
    actor: Actor,
    user_id: i64,
    name: &str,
    scope: Scope,
    ttl: Duration,
) -> anyhow::Result<String> {
    let token = secret::api_token()?;
    let now = db.clock().now();
    db.create_api_token(
        actor,
        NewApiToken {
            token_hash: secret::sha256(&token),
            user_id,
            name: name.to_string(),
            scope,
            now_ms: to_ms(now),
            expires_ms: to_ms(now + ttl),
        },
    )
    .await?;
    Ok(token)
}
