//! Bans as stored: one row per prefix, kept after the ban ends so a repeat offender's next
//! ban is longer. Every ban and unban is audited.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ban {
    /// `192.0.2.7/32` or `2001:db8:1:2::/64`.
    pub prefix: String,
    /// The rule that banned it (`sign_in_failures`, `tls_failures`, `not_found_flood`,
    /// `unauthorized_flood`), or `manual`.
    pub rule: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Absent: until removed by hand.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// How many times this prefix has been banned.
    pub offences: u32,
}

impl Db {
    /// Bans `prefix` until `expires_ms` (`None`: until lifted), counting the offence; returns
    /// the offences so far, this one included.
    pub async fn ban(
        &self,
        actor: Actor,
        prefix: String,
        rule: &'static str,
        reason: String,
        expires_ms: Option<i64>,
    ) -> Result<u32, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            tx.execute(
                "INSERT INTO bans (prefix, rule, reason, created_ms, expires_ms, offences)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (prefix) DO UPDATE SET rule = ?2, reason = ?3, created_ms = ?4,
                   expires_ms = ?5, offences = offences + 1, lifted_ms = NULL",
                params![prefix, rule, reason, now, expires_ms],
            )?;
            let offences: u32 = tx.query_row(
                "SELECT offences FROM bans WHERE prefix = ?1",
                [&prefix],
                |r| r.get(0),
            )?;
            let change = Change::new("ban.add", format!("prefix:{prefix}"))
                .with("rule", rule)
                .with("reason", &reason)
                .with("expires_ms", expires_ms)
                .with("offences", offences);
            Ok((offences, Some(change)))
        })
        .await
    }

    /// Lifts the ban on `prefix`; `false` when it was not banned.
    pub async fn unban(&self, actor: Actor, prefix: String) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            let lifted = tx.execute(
                "UPDATE bans SET lifted_ms = ?2 WHERE prefix = ?1 AND lifted_ms IS NULL
                   AND (expires_ms IS NULL OR expires_ms > ?2)",
                params![prefix, now],
            )? == 1;
            let change = lifted.then(|| Change::new("ban.remove", format!("prefix:{prefix}")));
            Ok((lifted, change))
        })
        .await
    }

    /// The bans in force now.
    pub async fn active_bans(&self) -> Result<Vec<Ban>, DbError> {
        let now = self.clock.now_ms();
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT prefix, rule, reason, created_ms, expires_ms, offences FROM bans
                 WHERE lifted_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?1)
                 ORDER BY created_ms DESC",
            )?;
            let rows = stmt.query_map([now], |r| {
                let expires: Option<i64> = r.get(4)?;
                Ok(Ban {
                    prefix: r.get(0)?,
                    rule: r.get(1)?,
                    reason: r.get(2)?,
                    created_at: millis(r, 3)?,
                    expires_at: expires.and_then(|ms| {
                        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                    }),
                    offences: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// How often `prefix` was banned before (0 for never).
    pub async fn offences(&self, prefix: String) -> Result<u32, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT offences FROM bans WHERE prefix = ?1",
                    [prefix],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
        .await
    }
}
