//! The notification outbox. Alert events wait in `alert_events` until grouped; a group
//! becomes one row per channel in `notifications`, in one transaction with marking its events
//! grouped, so each message is made exactly once. Delivery then works the rows of each
//! channel: marked delivered after the receiver said yes, or retried later.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Db, DbError};

/// An event waiting to be notified, with its alert.
#[derive(Debug, Clone)]
pub struct WaitingEvent {
    pub event_id: i64,
    /// `firing` or `resolved`.
    pub kind: String,
    pub at_ms: i64,
    pub alert_id: i64,
    pub key: String,
    pub rule: String,
    pub severity: String,
    pub site: Option<String>,
    pub probe_id: Option<String>,
    pub subject: String,
    pub summary: String,
    pub first_ms: i64,
    /// When this alert's firing was notified, if it was.
    pub notified_ms: Option<i64>,
    /// When a firing of this key was last notified (any alert of it).
    pub key_notified_ms: Option<i64>,
}

/// A message to put in the outbox for one channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub channel: String,
    pub key: String,
    pub site: Option<String>,
    pub body: String,
}

/// A message due for delivery.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub key: String,
    pub body: String,
    pub attempts: u32,
    pub created_ms: i64,
}

/// Notes that alert `id` started firing (again) or resolved, for notification.
pub(super) fn event(conn: &Connection, id: i64, kind: &str, at_ms: i64) -> Result<(), DbError> {
    conn.prepare_cached("INSERT INTO alert_events (alert_id, kind, at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![id, kind, at_ms])?;
    Ok(())
}

impl Db {
    /// Events not yet grouped, oldest first.
    pub async fn waiting_events(&self) -> Result<Vec<WaitingEvent>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT e.id, e.kind, e.at_ms, a.id, a.key, a.rule, a.severity, a.site,
                   a.probe_id, a.subject, a.summary, a.first_ms, a.notified_ms, k.at_ms
                 FROM alert_events e JOIN alerts a ON a.id = e.alert_id
                 LEFT JOIN alert_keys_notified k ON k.key = a.key
                 WHERE e.grouped_ms IS NULL ORDER BY e.id LIMIT 10000",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(WaitingEvent {
                    event_id: r.get(0)?,
                    kind: r.get(1)?,
                    at_ms: r.get(2)?,
                    alert_id: r.get(3)?,
                    key: r.get(4)?,
                    rule: r.get(5)?,
                    severity: r.get(6)?,
                    site: r.get(7)?,
                    probe_id: r.get(8)?,
                    subject: r.get(9)?,
                    summary: r.get(10)?,
                    first_ms: r.get(11)?,
                    notified_ms: r.get(12)?,
                    key_notified_ms: r.get(13)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// In one transaction: queues `messages`, marks `events` grouped, and notes the alerts
    /// whose firing they notify (`fired`: alert id and key).
    pub async fn enqueue(
        &self,
        messages: Vec<Outgoing>,
        events: Vec<i64>,
        fired: Vec<(i64, String)>,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            for m in &messages {
                tx.prepare_cached(
                    "INSERT INTO notifications (channel, key, site, body, created_ms, next_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (key) DO NOTHING",
                )?
                .execute(params![m.channel, m.key, m.site, m.body, now])?;
            }
            for id in &events {
                tx.prepare_cached("UPDATE alert_events SET grouped_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, now])?;
            }
            for (id, key) in &fired {
                tx.prepare_cached("UPDATE alerts SET notified_ms = ?2 WHERE id = ?1")?
                    .execute(params![id, now])?;
                tx.prepare_cached(
                    "INSERT INTO alert_keys_notified (key, at_ms) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET at_ms = ?2",
                )?
                .execute(params![key, now])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` messages of `channel` due now, oldest first.
    pub async fn due_notifications(
        &self,
        channel: String,
        limit: u32,
    ) -> Result<Vec<Due>, DbError> {
        let now = self.clock.now_ms();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, key, body, attempts, created_ms FROM notifications
                 WHERE channel = ?1 AND delivered_ms IS NULL AND next_ms <= ?2
                 ORDER BY id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![channel, now, limit], |r| {
                Ok(Due {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    body: r.get(2)?,
                    attempts: r.get(3)?,
                    created_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn notification_delivered(&self, id: i64) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        self.write_batched(move |conn| {
            conn.prepare_cached(
                "UPDATE notifications SET delivered_ms = ?2, attempts = attempts + 1,
                   last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            Ok(())
        })
        .await
    }

    pub async fn notification_failed(
        &self,
        id: i64,
        next_ms: i64,
        error: String,
    ) -> Result<(), DbError> {
        self.write_batched(move |conn| {
            conn.prepare_cached(
                "UPDATE notifications SET attempts = attempts + 1, next_ms = ?2, last_error = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, next_ms, error])?;
            Ok(())
        })
        .await
    }

    /// Since when `channel` has failed to deliver: the oldest message it still owes after at
    /// least one failed attempt, and its last error.
    pub async fn channel_failing(&self, channel: String) -> Result<Option<(i64, String)>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT created_ms, coalesce(last_error, '') FROM notifications
                     WHERE channel = ?1 AND delivered_ms IS NULL AND attempts > 0
                     ORDER BY id LIMIT 1",
                )?
                .query_row([channel], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await
    }
}
