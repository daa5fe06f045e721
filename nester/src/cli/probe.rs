//! `nester probe`: the enrolled probes, and revoking one.

use uuid::Uuid;

use crate::db::Db;
use crate::db::audit::Actor;

#[derive(clap::Subcommand)]
pub enum Command {
    /// List enrolled probes.
    List,
    /// Revoke a probe: its next request is refused, on any connection.
    Revoke { probe_id: Uuid },
}

pub async fn run(command: Command, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::List => print!("{}", list_probes(db).await?),
        Command::Revoke { probe_id } => {
            revoke_probe(db, probe_id).await?;
            println!("probe {probe_id} revoked; its next request will be refused");
        }
    }
    Ok(())
}

pub async fn revoke_probe(db: &Db, probe_id: Uuid) -> anyhow::Result<()> {
    crate::ops::probes::revoke(db, Actor::cli(), probe_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e} (see `nester probe list`)"))
}

/// `nester probe list`, one line per probe.
pub async fn list_probes(db: &Db) -> anyhow::Result<String> {
    let mut out = format!(
        "{:<36}  {:<20}  {:<8}  {:<8}  {}\n",
        "PROBE", "SITE", "STATE", "MISSING", "LAST REPORT"
    );
    for p in db.probes(None, db.clock().now()).await? {
        let state = if p.revoked {
            "revoked"
        } else {
            p.status.as_str()
        };
        let last = p.last_report.map_or("never".to_string(), |r| {
            r.generated_at
                .replace_nanosecond(0)
                .unwrap_or(r.generated_at)
                .to_string()
        });
        out.push_str(&format!(
            "{:<36}  {:<20}  {:<8}  {:<8}  {last}\n",
            p.probe_id, p.site, state, p.missing_reports
        ));
    }
    Ok(out)
}
