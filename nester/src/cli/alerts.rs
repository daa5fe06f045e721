//! `nester alerts`: the open alerts, and a test message to a notification channel.

use anyhow::{Context, bail};

use crate::config::Config;
use crate::db::Db;
use crate::db::alerts::AlertQuery;
use crate::notify::Notifier;
use crate::notify::send::Sender;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Alerts not resolved, newest first.
    List,
    /// Send a test message to a channel of `[notify.channels]` now, and say how it went.
    Test {
        /// The channel's name.
        channel: String,
    },
}

pub async fn run(command: Command, config: &Config, db: &Db) -> anyhow::Result<()> {
    match command {
        Command::List => {
            let alerts = db
                .alerts(AlertQuery {
                    limit: 500,
                    ..Default::default()
                })
                .await?;
            let open: Vec<_> = alerts
                .iter()
                .filter(|a| a.state != crate::db::alerts::AlertState::Resolved)
                .collect();
            if open.is_empty() {
                println!("no open alert");
            }
            for a in open {
                println!(
                    "{:>6}  {:<8}  {:<12}  {:<28}  {}",
                    a.id,
                    a.severity.as_str(),
                    a.state.as_str(),
                    a.rule,
                    a.summary
                );
            }
        }
        Command::Test { channel } => {
            let Some(settings) = config.notify.channels.get(&channel) else {
                let known: Vec<&String> = config.notify.channels.keys().collect();
                bail!("no channel `{channel}` in [notify.channels] (there are: {known:?})");
            };
            let sender = Sender::new(settings).with_context(|| format!("channel `{channel}`"))?;
            let now = db.clock().now().unix_timestamp();
            Notifier::test(&channel, &sender, now)
                .await
                .map_err(|e| anyhow::anyhow!("channel `{channel}`: {e}"))?;
            println!("test message delivered to `{channel}`");
        }
    }
    Ok(())
}
