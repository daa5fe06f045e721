//! `nester token`: enrollment tokens, which a harvester spends once to get its certificate.

use anyhow::Context;
use time::Duration;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::Actor;
use crate::ops::enrollment::{self, HARVESTER_COMMAND};
use crate::pki::CaCert;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a token and print it; hand it to the harvester (`harvester enroll --token-file`).
    Create {
        /// Site the enrolled probe belongs to.
        #[arg(long)]
        site: String,
        /// How long the token stays usable, e.g. `30m`, `2h`, `1d`.
        #[arg(long, default_value = "30m")]
        ttl: humantime::Duration,
        /// How many probes may enroll with it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// List tokens and their state.
    List,
    /// Revoke a token by id.
    Revoke { token_id: String },
}

pub async fn run(command: Command, config: &Config, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::Create { site, ttl, uses } => {
            let lifetime = Duration::try_from(*ttl).context("--ttl is too long")?;
            let ca = CaCert::load(&DataDir::new(&config.data_dir))?;
            let ingest = config.public_ingest_address();
            let token =
                enrollment::create(db, Actor::cli(), &ca, ingest.clone(), &site, lifetime, uses)
                    .await?
                    .encode();
            // The token alone on stdout, for scripts; what to do with it for people.
            println!("{token}");
            eprintln!(
                "for site `{site}`: {uses} enrollment(s) within {ttl}; harvesters \
                 will dial {ingest} (if they cannot reach it, set `public_address` \
                 under [ingest] and make a new token)\n\
                 on the site, run `{HARVESTER_COMMAND}` and paste the token"
            );
        }
        Command::List => print!("{}", list_tokens(db).await?),
        Command::Revoke { token_id } => revoke_token(db, &token_id).await?,
    }
    Ok(())
}

/// `nester token list`, one line per token.
pub async fn list_tokens(db: &Db) -> anyhow::Result<String> {
    let now = db.clock().now();
    let mut out = format!(
        "{:<16}  {:<20}  {:<8}  {:<5}  {}\n",
        "TOKEN", "SITE", "STATE", "USES", "EXPIRES"
    );
    for t in db.tokens().await? {
        out.push_str(&format!(
            "{:<16}  {:<20}  {:<8}  {:<5}  {}\n",
            t.token_id,
            t.site,
            t.state(now).as_str(),
            format!("{}/{}", t.uses, t.max_uses),
            t.expires_at.replace_nanosecond(0).unwrap_or(t.expires_at)
        ));
    }
    Ok(out)
}

pub async fn revoke_token(db: &Db, token_id: &str) -> anyhow::Result<()> {
    enrollment::revoke(db, Actor::cli(), token_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e} (see `nester token list`)"))
}
