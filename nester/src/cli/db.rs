//! `nester db`: what the database holds, and retention on demand.

use crate::config::Config;
use crate::db::Db;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Rows and bytes of every table and index, and the file's size.
    Stats,
    /// Apply the retention policy now (`nester serve` does it every `retention.every`).
    Retain,
}

pub async fn run(command: Command, config: &Config, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::Stats => print!("{}", db_stats(db).await?),
        Command::Retain => {
            let done = db
                .retain(config.retention.policy()?, db.clock().now())
                .await?;
            println!(
                "{} reports deleted, {} WAN samples rolled up into hours, {} hours into days, {} pages freed",
                done.reports_deleted,
                done.samples_rolled_up,
                done.hours_rolled_up,
                done.pages_freed
            );
        }
    }
    Ok(())
}

/// `nester db stats`: every table and index by size, then the file.
pub async fn db_stats(db: &Db) -> anyhow::Result<String> {
    let stats = db.stats().await?;
    let mut out = format!("{:<28}  {:>12}  {:>12}\n", "TABLE / INDEX", "ROWS", "SIZE");
    for t in &stats.tables {
        let rows = t.rows.map_or("(index)".to_string(), |r| r.to_string());
        out.push_str(&format!(
            "{:<28}  {rows:>12}  {:>12}\n",
            t.name,
            human_bytes(t.bytes)
        ));
    }
    out.push_str(&format!(
        "{:<28}  {:>12}  {:>12}\n{:<28}  {:>12}  {:>12}\n",
        "free pages",
        "",
        human_bytes(stats.free_bytes),
        "database file",
        "",
        human_bytes(stats.file_bytes)
    ));
    Ok(out)
}

/// 1536 → "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    let mut value = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{n} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at GiB")
}
