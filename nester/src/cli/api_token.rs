//! `nester api-token`: tokens for scripts (`Authorization: Bearer shk_...`).

use anyhow::Context;
use time::Duration;

use crate::clock::rfc3339;
use crate::db::audit::Actor;
use crate::db::{Db, Scope};
use crate::ops::api_tokens;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a token for a user and print it (shown once).
    Create {
        #[arg(long)]
        user: String,
        /// What it is for, e.g. `inventory-sync`.
        #[arg(long, default_value = "cli")]
        name: String,
        /// `read` (GET only) or `read-write`.
        #[arg(long, default_value = "read")]
        scope: Scope,
        /// How long it stays valid, e.g. `30d`, `1y`.
        #[arg(long, default_value = "90d")]
        ttl: humantime::Duration,
    },
    /// List tokens (of one user with --user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { token_id: i64 },
}

pub async fn run(command: Command, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::Create {
            user,
            name,
            scope,
            ttl,
        } => {
            let ttl = Duration::try_from(*ttl).context("--ttl is too long")?;
            let user_id = existing_user(db, &user).await?;
            let token = api_tokens::create(db, Actor::cli(), user_id, &name, scope, ttl).await?;
            println!("{token}");
        }
        Command::List { user } => print!("{}", list_api_tokens(db, user.as_deref()).await?),
        Command::Revoke { token_id } => {
            api_tokens::revoke(db, Actor::cli(), token_id, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e} (see `nester api-token list`)"))?;
            println!("API token {token_id} revoked");
        }
    }
    Ok(())
}

async fn existing_user(db: &Db, username: &str) -> anyhow::Result<i64> {
    db.user_id(username.to_string())
        .await?
        .with_context(|| format!("no user `{username}` (see `nester user list`)"))
}

pub async fn list_api_tokens(db: &Db, username: Option<&str>) -> anyhow::Result<String> {
    let user_id = match username {
        Some(u) => Some(existing_user(db, u).await?),
        None => None,
    };
    let mut out = format!(
        "{:<6} {:<20} {:<20} {:<10} {:<8} {:<22} LAST USED\n",
        "ID", "USER", "NAME", "SCOPE", "STATE", "EXPIRES"
    );
    let now = db.clock().now();
    for t in db.api_tokens(user_id).await? {
        let state = match (t.revoked, t.expires_at <= now) {
            (true, _) => "revoked",
            (false, true) => "expired",
            (false, false) => "active",
        };
        out.push_str(&format!(
            "{:<6} {:<20} {:<20} {:<10} {:<8} {:<22} {}\n",
            t.token_id,
            t.username,
            t.name,
            t.scope.as_str(),
            state,
            rfc3339(t.expires_at),
            t.last_used_at.map_or_else(|| "never".to_string(), rfc3339)
        ));
    }
    Ok(out)
}
