//! `nester token`: enrollment tokens, which a harvester spends once to get its certificate.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::enroll::EnrollmentToken;
use time::Duration;

use crate::auth::secret::random;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;
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
            let token = create_token(db, &ca, ingest.clone(), &site, lifetime, uses).await?;
            // The token alone on stdout, for scripts; what to do with it for people.
            println!("{token}");
            eprintln!(
                "for site `{site}`: {uses} enrollment(s) within {ttl}; harvesters \
                 will dial {ingest} (if they cannot reach it, set `public_address` \
                 under [ingest] and make a new token)\n\
                 on the site, with the token in FILE: \
                 `harvester enroll --token-file FILE`"
            );
        }
        Command::List => print!("{}", list_tokens(db).await?),
        Command::Revoke { token_id } => revoke_token(db, &token_id).await?,
    }
    Ok(())
}

/// Creates an enrollment token for `site`, usable `uses` times within `ttl`, and returns the
/// string to hand to the harvester. Only the secret's SHA-256 is stored.
pub async fn create_token(
    db: &Db,
    ca: &CaCert,
    ingest: String,
    site: &str,
    ttl: Duration,
    uses: u32,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        !site.trim().is_empty() && site.len() <= shared::report::MAX_LABEL_LEN,
        "--site must be 1 to 128 characters"
    );
    anyhow::ensure!(
        ttl >= Duration::MINUTE && ttl <= Duration::days(30),
        "--ttl must be between 1 minute and 30 days"
    );
    anyhow::ensure!(uses >= 1, "--uses must be at least 1");
    let token = EnrollmentToken {
        ingest,
        id: random::<8>()?.iter().map(|b| format!("{b:02x}")).collect(),
        secret: URL_SAFE_NO_PAD.encode(random::<32>()?),
        ca_sha256: ca.fingerprint(),
    };
    db.create_token(
        token.id.clone(),
        &token.secret,
        site.to_string(),
        db.clock().now() + ttl,
        uses,
    )
    .await?;
    Ok(token.encode())
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
            t.state(now),
            format!("{}/{}", t.uses, t.max_uses),
            t.expires_at.replace_nanosecond(0).unwrap_or(t.expires_at)
        ));
    }
    Ok(out)
}

pub async fn revoke_token(db: &Db, token_id: &str) -> anyhow::Result<()> {
    if !db.revoke_token(token_id.to_string()).await? {
        bail!("no usable token `{token_id}` (see `nester token list`)");
    }
    Ok(())
}
