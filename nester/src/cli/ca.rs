//! `nester ca`: the nester's certificate authority. `rotate` replaces it with no harvester
//! noticing (see `pki/rotation.rs`), `retire` ends a rotation's overlap early, `status` shows
//! where things stand. A running nester takes the change up within seconds.

use anyhow::bail;
use time::{Duration, OffsetDateTime};

use crate::clock::rfc3339_ms;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, Change};
use crate::pki::{Authority, rotation};

#[derive(clap::Subcommand)]
pub enum Command {
    /// The CAs: the issuing one, the one being retired, the retired ones.
    Status,
    /// Make a new CA that issues from now on; the current one stays trusted for the overlap.
    Rotate {
        /// How long the current CA stays trusted, e.g. `30d` (default: the probe
        /// certificates' lifetime, so every harvester that can still connect learns the new
        /// CA and renews before the old one goes).
        #[arg(long)]
        overlap: Option<humantime::Duration>,
    },
    /// End the overlap now: the previous CA is no longer trusted. Harvesters that have not
    /// fetched the new CA since the rotation must then be enrolled again.
    Retire,
}

pub async fn run(
    command: Command,
    config: &Config,
    db: &Db,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let dir = DataDir::new(&config.data_dir);
    match command {
        Command::Status => {
            let authority = Authority::load(&dir)?;
            print!("{}", status(&authority));
            let behind = db
                .probes_not_issued_by(authority.issuing.cert.fingerprint())
                .await?;
            if authority.rotation.is_some() {
                println!(
                    "{} probe(s) not yet renewed from the issuing CA{}",
                    behind.len(),
                    if behind.is_empty() { "" } else { ":" }
                );
                for (probe, site) in behind {
                    println!("  {probe}  site {site}");
                }
            }
        }
        Command::Rotate { overlap } => {
            let overlap = match overlap {
                Some(d) => Duration::try_from(*d)?,
                None => Duration::days(config.ingest.probe_certificate_days.into()),
            };
            let rotation = rotation::rotate(&dir, now, overlap)?;
            let change = Change::new("ca.rotate", format!("ca:{}", rotation.issuing_sha256))
                .with("previous", &rotation.previous_sha256)
                .with("retire_ms", rotation.retire_ms);
            db.audit(Actor::cli(), change).await?;
            println!(
                "new CA {}\nthe previous CA {} stays trusted until {}\n\
                 A running nester serves with the new CA within seconds; harvesters fetch it at \
                 their next cycle and renew their certificate from it. Enrollment tokens made \
                 from now on pin the new CA.",
                rotation.issuing_sha256,
                rotation.previous_sha256,
                rfc3339_ms(rotation.retire_ms)
            );
        }
        Command::Retire => {
            let Some(ended) = rotation::retire_if_due(&dir, i64::MAX)? else {
                bail!("no CA rotation is in progress (see `nester ca status`)");
            };
            let change = Change::new("ca.retire", format!("ca:{}", ended.previous_sha256))
                .with("issuing", &ended.issuing_sha256);
            db.audit(Actor::cli(), change).await?;
            println!("the previous CA {} is retired", ended.previous_sha256);
        }
    }
    Ok(())
}

fn status(authority: &Authority) -> String {
    let mut text = format!("issuing   {}\n", authority.issuing.cert.fingerprint());
    if let (Some(previous), Some(rotation)) = (authority.previous(), &authority.rotation) {
        text.push_str(&format!(
            "previous  {}  trusted until {} (rotation started {})\n",
            previous.fingerprint(),
            rfc3339_ms(rotation.retire_ms),
            rfc3339_ms(rotation.started_ms)
        ));
    }
    for retired in authority.retired() {
        text.push_str(&format!(
            "retired   {}  (only to verify old reports)\n",
            retired.fingerprint()
        ));
    }
    text
}
