//! Acknowledging an alert: who, why, until when. An acknowledged alert stops firing (and
//! notifying) until its time is up, when it fires again; both are audited.

use rusqlite::params;
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::outbox::event;
use super::{Db, DbError};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Acknowledgement {
    pub by: String,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

impl Db {
    /// Acknowledges open alert `id` until `until_ms`, with `comment`; `false` when there is
    /// no such open alert. Audited.
    pub async fn acknowledge_alert(
        &self,
        actor: Actor,
        id: i64,
        comment: String,
        until_ms: i64,
    ) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let by = actor.name.clone();
        self.audited(actor, move |tx| {
            let done = tx.execute(
                "UPDATE alerts SET state = 'acknowledged', ack_by = ?2, ack_comment = ?3,
                   ack_ms = ?4, ack_until_ms = ?5
                 WHERE id = ?1 AND state != 'resolved'",
                params![id, by, comment, now, until_ms],
            )? == 1;
            let change = done.then(|| {
                Change::new("alert.acknowledge", format!("alert:{id}"))
                    .with("comment", &comment)
                    .with("until_ms", until_ms)
            });
            Ok((done, change))
        })
        .await
    }

    /// Acknowledgements whose time is up: those alerts fire again (audited, one entry each).
    /// Returns how many.
    pub async fn expire_acknowledgements(&self) -> Result<usize, DbError> {
        let now = self.clock.now_ms();
        let expired: Vec<i64> = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM alerts WHERE state = 'acknowledged' AND ack_until_ms <= ?1",
                )?;
                let rows = stmt.query_map([now], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await?;
        for &id in &expired {
            self.audited(Actor::server(), move |tx| {
                let done = tx.execute(
                    "UPDATE alerts SET state = 'firing', ack_by = NULL, ack_comment = NULL,
                       ack_ms = NULL, ack_until_ms = NULL
                     WHERE id = ?1 AND state = 'acknowledged' AND ack_until_ms <= ?2",
                    params![id, now],
                )? == 1;
                if done {
                    event(tx, id, "firing", now)?;
                }
                let change = done
                    .then(|| Change::new("alert.acknowledgement_expired", format!("alert:{id}")));
                Ok(((), change))
            })
            .await?;
        }
        Ok(expired.len())
    }
}
