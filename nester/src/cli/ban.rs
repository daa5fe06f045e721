//! `nester ban`: the bans in force, and banning or lifting by hand. A running nester picks
//! the change up within seconds. Allow-listed networks (`[threats] allow`) cannot be banned.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use ipnet::IpNet;

use crate::config::Config;
use crate::db::Db;
use crate::db::audit::Actor;
use crate::threat::Threats;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Bans in force, newest first.
    List,
    /// Ban an address (IPv6: its network, /64 by default) or a network.
    Add {
        /// `192.0.2.7`, `2001:db8::1` or `2001:db8::/48`.
        target: String,
        /// How long, e.g. `1h`, `7d`.
        #[arg(long, default_value = "1d")]
        duration: humantime::Duration,
        /// Why, for the list and the audit log.
        #[arg(long, default_value = "banned by hand")]
        reason: String,
    },
    /// Lift a ban.
    Remove { target: String },
}

pub async fn run(command: Command, config: &Config, db: &Db) -> anyhow::Result<()> {
    let threats = Threats::new(config.threats.clone(), db.clone());
    match command {
        Command::List => print!("{}", list(db).await?),
        Command::Add {
            target,
            duration,
            reason,
        } => {
            let prefix = parse(&threats, &target)?;
            threats
                .ban(Actor::cli(), prefix, "manual", reason, Some(*duration))
                .await?;
            println!("{prefix} banned for {duration}");
        }
        Command::Remove { target } => {
            let prefix = parse(&threats, &target)?;
            if !threats.unban(Actor::cli(), prefix).await? {
                bail!("{prefix} is not banned (see `nester ban list`)");
            }
            println!("{prefix} may connect again");
        }
    }
    Ok(())
}

/// An address becomes the prefix it would be banned by; a network stays as given.
fn parse(threats: &Arc<Threats>, target: &str) -> anyhow::Result<IpNet> {
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok(threats.prefix(ip));
    }
    target
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .with_context(|| format!("`{target}` is not an IP address or a network (CIDR)"))
}

pub async fn list(db: &Db) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<28}  {:<20}  {:<8}  {:<20}  {}\n",
        "PREFIX", "RULE", "OFFENCES", "UNTIL", "REASON"
    );
    for b in db.active_bans().await? {
        let until = b
            .expires_at
            .map_or_else(|| "lifted by hand".into(), crate::clock::rfc3339);
        out.push_str(&format!(
            "{:<28}  {:<20}  {:<8}  {:<20}  {}\n",
            b.prefix, b.rule, b.offences, until, b.reason
        ));
    }
    Ok(out)
}
