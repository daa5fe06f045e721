//! Alert notifications, delivered exactly once per channel through a durable outbox in
//! SQLite. `group.rs` turns alert events into one message per site and channel (silences,
//! the flapping limit and routing applied), stored with the events marked done in one
//! transaction; each channel then works its own queue (`send.rs`), marking a message
//! delivered once the receiver said yes and retrying failures with a capped backoff, so one
//! dead channel delays no other and nothing is lost across a restart. Every message carries a
//! key that stays the same on retries. A channel failing for long raises an alert of its own.

pub mod group;
pub mod message;
pub mod send;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::NotifyConfig;
use crate::db::Db;
use crate::db::alerts::{Raise, Severity};
use crate::job::Job;

use message::Notification;
use send::Sender;

/// How often events are grouped and queues looked at.
const TICK: Duration = Duration::from_secs(1);
/// The first retry; each next one waits twice as long, up to `retry_max`.
const FIRST_RETRY: Duration = Duration::from_secs(5);

pub struct Notifier {
    db: Db,
    config: NotifyConfig,
    /// The dashboard's public address, for links to the alerts page.
    base_url: Option<String>,
}

impl Notifier {
    pub fn new(db: Db, config: NotifyConfig, base_url: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            db,
            config,
            base_url,
        })
    }

    /// Groups the events that are ready into the outbox. Returns the messages queued.
    pub async fn group(&self) -> anyhow::Result<usize> {
        let events = self.db.waiting_events().await?;
        if events.is_empty() {
            return Ok(0);
        }
        let silences = self.db.active_silences().await?;
        let now = self.db.clock().now_ms();
        let plan = group::plan(
            &self.config,
            events,
            &silences,
            self.base_url.as_deref(),
            now,
        );
        if plan.events.is_empty() {
            return Ok(0);
        }
        let queued = plan.messages.len();
        self.db
            .enqueue(plan.messages, plan.events, plan.fired)
            .await?;
        Ok(queued)
    }

    /// Delivers what `channel` owes that is due; returns (delivered, failed).
    pub async fn deliver(&self, name: &str, sender: &Sender) -> anyhow::Result<(usize, usize)> {
        let (mut delivered, mut failed) = (0, 0);
        for due in self.db.due_notifications(name.to_string(), 20).await? {
            let message: Notification = match serde_json::from_str(&due.body) {
                Ok(m) => m,
                Err(e) => {
                    // Never retried: it would fail the same way for ever.
                    tracing::error!(channel = name, key = %due.key, error = %e, "unreadable notification dropped");
                    self.db.notification_delivered(due.id).await?;
                    continue;
                }
            };
            let now = self.db.clock().now();
            match sender.send(&message, now.unix_timestamp()).await {
                Ok(()) => {
                    self.db.notification_delivered(due.id).await?;
                    tracing::info!(channel = name, key = %due.key, "notification delivered");
                    delivered += 1;
                }
                Err(error) => {
                    let wait = FIRST_RETRY
                        .saturating_mul(2u32.saturating_pow(due.attempts.min(20)))
                        .min(self.config.retry_max);
                    let next = crate::clock::to_ms(now)
                        + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                    tracing::warn!(channel = name, key = %due.key, attempts = due.attempts + 1, %error, retry_in = ?wait, "notification not delivered");
                    self.db.notification_failed(due.id, next, error).await?;
                    failed += 1;
                }
            }
        }
        self.check_channel(name).await?;
        Ok((delivered, failed))
    }

    /// Raises (or resolves) the alert of a channel that has failed for `channel_alert_after`.
    async fn check_channel(&self, name: &str) -> anyhow::Result<()> {
        let subject = format!("channel:{name}");
        let now = self.db.clock().now_ms();
        let after = i64::try_from(self.config.channel_alert_after.as_millis()).unwrap_or(i64::MAX);
        let open = self
            .db
            .open_alert_subjects(group::CHANNEL_FAILING)
            .await?
            .contains(&subject);
        match self.db.channel_failing(name.to_string()).await? {
            Some((since, error)) if now - since >= after && !open => {
                self.db
                    .raise_alert(Raise {
                        rule: group::CHANNEL_FAILING,
                        subject,
                        site: None,
                        probe_id: None,
                        severity: Severity::Warning,
                        summary: format!(
                            "notification channel {name} has failed to deliver for {}: {error}",
                            crate::clock::human(now - since)
                        ),
                        details: serde_json::json!({"channel": name, "error": error}),
                        count: 1,
                    })
                    .await?;
            }
            None if open => {
                self.db
                    .resolve_alert(group::CHANNEL_FAILING, subject)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The notification jobs: grouping, and one delivery job per channel.
    pub fn jobs(self: Arc<Self>, senders: Vec<(String, Sender)>) -> Vec<Job> {
        let this = self.clone();
        let grouping = Job::every("notify-grouping", TICK, move || {
            let this = this.clone();
            async move {
                let n = this.group().await.context("cannot group notifications")?;
                if n > 0 {
                    tracing::info!(messages = n, "notifications queued");
                }
                Ok(())
            }
        });
        let channels = senders.into_iter().map(|(name, sender)| {
            let (this, sender) = (self.clone(), Arc::new(sender));
            Job::every(format!("notify:{name}"), TICK, move || {
                let (this, sender, name) = (this.clone(), sender.clone(), name.clone());
                async move {
                    this.deliver(&name, &sender)
                        .await
                        .context("cannot work the outbox")?;
                    Ok(())
                }
            })
        });
        std::iter::once(grouping).chain(channels).collect()
    }

    /// Sends a test message to `channel` now, past the outbox (`nester alerts test`).
    pub async fn test(name: &str, sender: &Sender, now_s: i64) -> Result<(), String> {
        let message = Notification {
            id: format!("{name}/test/{now_s}"),
            site: None,
            firing: 0,
            resolved: 0,
            alerts: Vec::new(),
            test: true,
        };
        sender.send(&message, now_s).await
    }
}

/// The senders of every configured channel; an error names the channel.
pub fn senders(config: &NotifyConfig) -> anyhow::Result<Vec<(String, Sender)>> {
    config
        .channels
        .iter()
        .map(|(name, channel)| {
            Sender::new(channel)
                .map(|s| (name.clone(), s))
                .map_err(|e| e.context(format!("notification channel `{name}`")))
        })
        .collect()
}
