//! `nester audit`: check the audit log's chain against its signed checkpoints, and read it.

use anyhow::bail;

use crate::audit::CheckpointKey;
use crate::clock::rfc3339;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, AuditQuery, Change};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Walk the whole chain and hold it against every signed checkpoint; exits non-zero and
    /// names the first entry that is not as written.
    Verify,
    /// The newest entries, newest first (reading the log is itself recorded).
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only this actor, e.g. `user:ana`, `cli:root`, `probe:ID`.
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. `user.role`, `sign_in.failure`.
        #[arg(long)]
        action: Option<String>,
    },
}

pub async fn run(command: Command, dir: &DataDir, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::Verify => {
            let key = CheckpointKey::load(dir)?;
            match crate::audit::check(dir, db).await? {
                Ok(ok) => {
                    match ok.checkpoint {
                        Some((seq, time)) => println!(
                            "audit log intact: {} entries, held against the checkpoints, the last at seq {seq} ({time})",
                            ok.entries,
                        ),
                        None => println!(
                            "audit log intact: {} entries; no checkpoint yet, so a cut tail cannot be told yet",
                            ok.entries
                        ),
                    }
                    println!("checkpoint key: {}", key.public());
                }
                Err(broken) => bail!("{broken}"),
            }
        }
        Command::List {
            limit,
            actor,
            action,
        } => {
            let entries = db
                .audit_entries(AuditQuery {
                    actor,
                    action,
                    limit: limit.clamp(1, 1000),
                    ..AuditQuery::default()
                })
                .await?;
            db.audit(
                Actor::cli(),
                Change::new("audit.read", "audit_log").with("entries", entries.len()),
            )
            .await?;
            for e in entries {
                println!(
                    "{:>6}  {}  {:<28}  {:<24}  {:<28}  {:<15}  {}",
                    e.seq,
                    rfc3339(e.at),
                    e.actor,
                    e.action,
                    e.target,
                    e.source_ip.unwrap_or_default(),
                    e.details
                );
            }
        }
    }
    Ok(())
}
