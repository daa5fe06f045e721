//! `nester serve` with `[backup]`: a backup every `every`, pushed, pruned and verified
//! ([`push::run`]). The first comes `every` after the last one recorded (at once when there is
//! none, or it is overdue). A failure is retried with a backoff (from a minute, or half the
//! interval when shorter, doubling to an hour) and raised as the alert `backup.failing`,
//! critical once the last good backup is older than two intervals; the next good, verified
//! backup resolves it. After a good backup, the backup key is replaced once it is
//! `key_rotation` old (when `authorized_keys` lets the nester do it).

use std::time::Duration;

use futures_util::future::BoxFuture;

use serde_json::json;

use super::push;
use crate::config::BackupConfig;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::alerts::{Raise, Severity};
use crate::job::{Job, Pace, Work};

pub const FAILING: &str = "backup.failing";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The serve job: its ticks say when the next is due.
pub fn job(dir: DataDir, config: BackupConfig, db: Db) -> Job {
    let every = config.every;
    let work = Schedule {
        subject: format!("backup:{}", config.server),
        first_retry: config.every.div_f64(2.0).min(Duration::from_secs(60)),
        retry: None,
        dir,
        config,
        db,
    };
    Job::new("backup", every, work).at_start()
}

struct Schedule {
    dir: DataDir,
    config: BackupConfig,
    db: Db,
    subject: String,
    first_retry: Duration,
    /// The wait before the next try while backups fail.
    retry: Option<Duration>,
}

impl Work for Schedule {
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
        Box::pin(self.tick())
    }
}

impl Schedule {
    /// A backup when one is due (or being retried), then the wait until the next.
    async fn tick(&mut self) -> anyhow::Result<Pace> {
        let (dir, config, db) = (&self.dir, &self.config, &self.db);
        if self.retry.is_none() {
            let last = db.backups().await?.first().map(|r| r.pushed_ms);
            let due = last.map_or(0, |at| at.saturating_add(millis(config.every)));
            let left = due - db.clock().now_ms();
            if left > 0 {
                return Ok(Pace::After(Duration::from_millis(left.unsigned_abs())));
            }
        }
        let outcome = push::run(dir, config, db, db.clock().now()).await;
        let failure = match outcome {
            Ok(pushed) => match pushed.verified {
                Some(Err(e)) => Some(format!("backup {} does not verify: {e}", pushed.name)),
                _ => rotate_key_if_due(dir, config, db).await.err(),
            },
            Err(e) => Some(format!("{e:#}")),
        };
        let (next, recorded) = match failure {
            None => {
                self.retry = None;
                let resolved = db.resolve_alert(FAILING, self.subject.clone()).await;
                (
                    config.every,
                    resolved.map(|_| ()).map_err(anyhow::Error::from),
                )
            }
            Some(error) => {
                tracing::error!(error = %error, "backup failed; retrying");
                let delay = self
                    .retry
                    .map_or(self.first_retry, |d| (d * 2).min(Duration::from_secs(3600)));
                self.retry = Some(delay);
                (delay, raise(db, config, &self.subject, &error).await)
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record the backup's outcome");
        }
        Ok(Pace::After(next))
    }
}

/// Replaces the backup key once it is `key_rotation` old, when the nester may edit the
/// account's `authorized_keys`.
async fn rotate_key_if_due(dir: &DataDir, config: &BackupConfig, db: &Db) -> Result<(), String> {
    let age = std::fs::metadata(dir.backup_key())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| at.elapsed().ok());
    if config.authorized_keys.is_none() || age.is_none_or(|age| age < config.key_rotation) {
        return Ok(());
    }
    let actor = crate::db::audit::Actor::server();
    super::rotate_key::rotate(dir, config, db, actor)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot rotate the backup key: {e:#}"))
}

async fn raise(db: &Db, config: &BackupConfig, subject: &str, error: &str) -> anyhow::Result<()> {
    let now = db.clock().now_ms();
    let last_good = db
        .backups()
        .await?
        .into_iter()
        .find(|b| b.verify_error.is_none())
        .map(|b| b.pushed_ms);
    let stale = last_good.is_none_or(|at| now - at > 2 * millis(config.every));
    let since = last_good.map_or("never".to_string(), crate::clock::rfc3339_ms);
    db.raise_alert(Raise {
        rule: FAILING,
        subject: subject.to_string(),
        site: None,
        probe_id: None,
        severity: if stale {
            Severity::Critical
        } else {
            Severity::Warning
        },
        summary: format!(
            "backups to {} fail (last good backup: {since}): {error}",
            config.server
        ),
        details: json!({"server": config.server, "error": error, "last_good_ms": last_good}),
        count: 1,
    })
    .await?;
    Ok(())
}
