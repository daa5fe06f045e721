//! Alerts as stored: one row per occurrence of a condition. Raising a condition that is
//! already open (firing or acknowledged) updates that row, so a flood of the same event is one
//! alert with a count, never a flood of alerts.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

pub use super::acknowledgements::Acknowledgement;
use super::outbox::event;
use super::{Db, DbError, millis, optional_millis, parsed};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Acknowledged,
    Resolved,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),* }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)*
                    _ => Err(format!("unknown {}: {s}", stringify!($t))),
                }
            }
        }
    };
}
text_enum!(Severity { Info = "info", Warning = "warning", Critical = "critical" });
text_enum!(AlertState { Firing = "firing", Acknowledged = "acknowledged", Resolved = "resolved" });

/// A condition to raise: `rule` and `subject` make its key.
#[derive(Debug, Clone)]
pub struct Raise {
    pub rule: &'static str,
    /// What it is about: `probe:ID`, `prefix:192.0.2.7/32`, `user:NAME`.
    pub subject: String,
    /// The site and probe it concerns, when it concerns one.
    pub site: Option<String>,
    pub probe_id: Option<String>,
    pub severity: Severity,
    pub summary: String,
    pub details: Value,
    /// Occurrences this raise stands for (a burst counted before writing).
    pub count: u32,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: i64,
    pub rule: String,
    pub severity: Severity,
    pub subject: String,
    pub site: Option<String>,
    pub probe_id: Option<String>,
    pub summary: String,
    #[schema(value_type = Object)]
    pub details: Value,
    pub state: AlertState,
    /// Who acknowledged it, why, and until when (it fires again after).
    pub acknowledged: Option<Acknowledgement>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Occurrences since it was first seen.
    pub count: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

/// Which alerts to list: newest first, `limit` of them, before id `before`.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub state: Option<AlertState>,
    pub severity: Option<Severity>,
    pub site: Option<String>,
    pub rule: Option<String>,
    pub before: Option<i64>,
    pub limit: u32,
}

impl Db {
    /// Raises `r`: a new firing alert, or the open one of the same key updated. Returns the
    /// alert's id and its count, which equals `r.count` for a new alert.
    pub async fn raise_alert(&self, r: Raise) -> Result<(i64, u32), DbError> {
        let now = self.clock.now_ms();
        self.write_batched(move |conn| {
            let key = format!("{}/{}", r.rule, r.subject);
            let (id, count): (i64, u32) = conn
                .prepare_cached(
                    "INSERT INTO alerts (key, rule, severity, subject, summary, details, state,
                       first_ms, last_ms, count, site, probe_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'firing', ?7, ?7, ?8, ?9, ?10)
                     ON CONFLICT (key) WHERE state != 'resolved' DO UPDATE SET
                       last_ms = excluded.last_ms, count = count + excluded.count,
                       severity = CASE WHEN instr('info warning critical', excluded.severity)
                         > instr('info warning critical', severity)
                         THEN excluded.severity ELSE severity END,
                       summary = excluded.summary, details = excluded.details
                     RETURNING id, count",
                )?
                .query_row(
                    params![
                        key,
                        r.rule,
                        r.severity.as_str(),
                        r.subject,
                        r.summary,
                        r.details.to_string(),
                        now,
                        r.count,
                        r.site,
                        r.probe_id
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
            // A new alert (an update adds to a count already there) is news to notify.
            if count == r.count {
                event(conn, id, "firing", now)?;
            }
            Ok((id, count))
        })
        .await
    }

    /// Resolves the open alerts of rules starting with `rule_prefix` that nothing raised
    /// again for `quiet_ms`: events (an attack) end by stopping. Returns how many.
    pub async fn resolve_quiet_alerts(
        &self,
        rule_prefix: &'static str,
        quiet_ms: i64,
    ) -> Result<usize, DbError> {
        let now = self.clock.now_ms();
        self.write_batched(move |conn| {
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "UPDATE alerts SET state = 'resolved', resolved_ms = ?1
                     WHERE state != 'resolved' AND last_ms <= ?2
                       AND substr(rule, 1, length(?3)) = ?3
                     RETURNING id",
                )?
                .query_map(params![now, now - quiet_ms, rule_prefix], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for &id in &ids {
                event(conn, id, "resolved", now)?;
            }
            Ok(ids.len())
        })
        .await
    }

    /// Resolves the open alert of `rule` about `subject` (its condition cleared); `false`
    /// when none was open.
    pub async fn resolve_alert(
        &self,
        rule: &'static str,
        subject: String,
    ) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        self.write_batched(move |conn| {
            let id: Option<i64> = conn
                .prepare_cached(
                    "UPDATE alerts SET state = 'resolved', resolved_ms = ?1
                     WHERE key = ?2 AND state != 'resolved' RETURNING id",
                )?
                .query_row(params![now, format!("{rule}/{subject}")], |r| r.get(0))
                .optional()?;
            if let Some(id) = id {
                event(conn, id, "resolved", now)?;
            }
            Ok(id.is_some())
        })
        .await
    }

    /// The subjects of the open alerts of `rule`.
    pub async fn open_alert_subjects(&self, rule: &'static str) -> Result<Vec<String>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT subject FROM alerts WHERE rule = ?1 AND state != 'resolved'",
            )?;
            let rows = stmt.query_map([rule], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// How many alerts fire now (not acknowledged): the navigation bar's count. A quick read
    /// on the caller's thread.
    pub fn firing_alerts(&self) -> Result<u32, DbError> {
        self.quick_read(|conn| {
            Ok(conn
                .prepare_cached("SELECT count(*) FROM alerts WHERE state = 'firing'")?
                .query_row([], |r| r.get(0))?)
        })
    }

    /// Open alerts by site and probe: (site, probe, firing, acknowledged), for the
    /// overview's badges.
    pub async fn open_alert_counts(
        &self,
    ) -> Result<Vec<(Option<String>, Option<String>, u32, u32)>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT site, probe_id, sum(state = 'firing'), sum(state = 'acknowledged')
                 FROM alerts WHERE state != 'resolved' GROUP BY site, probe_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Alerts matching `q`, newest first.
    pub async fn alerts(&self, q: AlertQuery) -> Result<Vec<Alert>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, rule, severity, subject, summary, details, state, first_ms, last_ms,
                   count, resolved_ms, site, probe_id, ack_by, ack_comment, ack_ms, ack_until_ms
                 FROM alerts
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR severity = ?2)
                   AND (?3 IS NULL OR rule = ?3) AND (?4 IS NULL OR id < ?4)
                   AND (?6 IS NULL OR site = ?6)
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    q.state.map(AlertState::as_str),
                    q.severity.map(Severity::as_str),
                    q.rule,
                    q.before,
                    q.limit,
                    q.site
                ],
                |r| {
                    let details: String = r.get(5)?;
                    Ok(Alert {
                        id: r.get(0)?,
                        rule: r.get(1)?,
                        severity: parsed(r, 2)?,
                        subject: r.get(3)?,
                        summary: r.get(4)?,
                        details: serde_json::from_str(&details).unwrap_or(Value::Null),
                        state: parsed(r, 6)?,
                        first_seen: millis(r, 7)?,
                        last_seen: millis(r, 8)?,
                        count: r.get(9)?,
                        resolved_at: optional_millis(r, 10)?,
                        site: r.get(11)?,
                        probe_id: r.get(12)?,
                        acknowledged: match r.get::<_, Option<String>>(13)? {
                            Some(by) => Some(Acknowledgement {
                                by,
                                comment: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                                at: millis(r, 15)?,
                                until: millis(r, 16)?,
                            }),
                            None => None,
                        },
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn raise(rule: &'static str, subject: &str, severity: Severity) -> Raise {
        Raise {
            rule,
            subject: subject.into(),
            severity,
            summary: format!("{rule} on {subject}"),
            details: serde_json::json!({"n": 1}),
            count: 1,
            site: Some("kc".into()),
            probe_id: None,
        }
    }

    #[tokio::test]
    async fn the_same_condition_updates_its_open_alert_and_a_resolved_one_starts_anew() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let db = Db::open_with_clock(&dir.path().join("n.db"), clock.clone()).unwrap();
        let r = raise("security.revoked_probe", "probe:a", Severity::Warning);
        let (id, count) = db.raise_alert(r.clone()).await.unwrap();
        assert_eq!(count, 1);
        clock.advance(time::Duration::minutes(1));
        let mut burst = raise("security.revoked_probe", "probe:a", Severity::Critical);
        burst.count = 9;
        assert_eq!(db.raise_alert(burst).await.unwrap(), (id, 10));
        // Another subject is another alert.
        clock.advance(time::Duration::minutes(30));
        let (other, _) = db
            .raise_alert(raise("security.revoked_probe", "probe:b", Severity::Info))
            .await
            .unwrap();
        assert_ne!(other, id);

        let all = db
            .alerts(AlertQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let a = all.iter().find(|a| a.id == id).unwrap();
        assert_eq!(
            (a.count, a.severity, a.state),
            (10, Severity::Critical, AlertState::Firing)
        );
        let between = a.last_seen - a.first_seen;
        assert!(between >= time::Duration::minutes(1) && between < time::Duration::minutes(2));

        // Quiet for an hour: resolved (not the other, quiet for half an hour); only rules of
        // the prefix.
        clock.advance(time::Duration::minutes(31));
        assert_eq!(
            db.resolve_quiet_alerts("other.", 3_600_000).await.unwrap(),
            0
        );
        assert_eq!(
            db.resolve_quiet_alerts("security.", 3_600_000)
                .await
                .unwrap(),
            1
        );
        let firing = db
            .alerts(AlertQuery {
                state: Some(AlertState::Firing),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(firing.iter().map(|a| a.id).collect::<Vec<_>>(), [other]);
        // Raised again after resolution: a new alert; the old stays in history.
        let (again, count) = db.raise_alert(r).await.unwrap();
        assert!(again != id && count == 1);
        let resolved = db
            .alerts(AlertQuery {
                state: Some(AlertState::Resolved),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(resolved.len(), 1);
        assert!(resolved[0].resolved_at.is_some());
    }
}
