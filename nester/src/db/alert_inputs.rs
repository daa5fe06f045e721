//! What alert evaluation reads: the probes' standing, the change feed past a cursor, recent
//! WAN samples (staged ones too, see `staging.rs`), missing reports; and the cursors.

use rusqlite::{OptionalExtension, params};

use super::{Db, DbError};

/// A probe as the alert rules see it.
#[derive(Debug, Clone)]
pub struct ProbeStanding {
    pub probe_id: String,
    pub site: String,
    /// The last report's time, or when the probe enrolled if it never reported.
    pub last_ms: i64,
    pub interval_ms: Option<i64>,
    pub cert_expires_ms: Option<i64>,
    pub unsent_reports: i64,
    /// Reports missing in its sequence.
    pub missing: i64,
}

/// One entry of the change feed, with its host.
#[derive(Debug, Clone)]
pub struct FeedChange {
    pub change_id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub protocol: Option<String>,
    pub port: Option<i64>,
    pub probe_id: String,
    pub site: String,
    pub address: String,
    pub hostname: Option<String>,
    /// Whether the host was first seen in this change's report.
    pub new_host: bool,
    /// Whether this change's report is the probe's first (its baseline: nothing in it is
    /// news).
    pub baseline: bool,
}

/// A probe's latest WAN samples towards one target, newest first: (sent, received, median).
#[derive(Debug, Clone)]
pub struct WanSeries {
    pub probe_id: String,
    pub site: String,
    pub target: String,
    pub samples: Vec<(i64, i64, Option<f64>)>,
}

impl Db {
    /// The probes not revoked.
    pub async fn probe_standings(&self) -> Result<Vec<ProbeStanding>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT p.probe_id, p.site, coalesce(p.last_report_ms, p.first_seen_ms),
                   p.interval_ms, p.cert_expires_ms, p.unsent_reports,
                   coalesce((SELECT sum(last - first + 1) FROM sequence_gaps g
                             WHERE g.probe_id = p.probe_id), 0)
                 FROM probes p WHERE p.revoked_ms IS NULL",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(ProbeStanding {
                    probe_id: r.get(0)?,
                    site: r.get(1)?,
                    last_ms: r.get(2)?,
                    interval_ms: r.get(3)?,
                    cert_expires_ms: r.get(4)?,
                    unsent_reports: r.get(5)?,
                    missing: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The newest change's id (0 for none).
    pub async fn last_change_id(&self) -> Result<i64, DbError> {
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT coalesce(max(change_id), 0) FROM changes", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<FeedChange>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.change_id, c.at_ms, c.kind, c.protocol, c.port, h.probe_id, p.site,
                   h.address, h.hostname, h.first_seen_ms = c.at_ms,
                   c.at_ms <= (SELECT min(first_seen_ms) FROM hosts o WHERE o.probe_id = h.probe_id)
                 FROM changes c JOIN hosts h ON h.host_id = c.host_id
                 JOIN probes p ON p.probe_id = h.probe_id
                 WHERE c.change_id > ?1 ORDER BY c.change_id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok(FeedChange {
                    change_id: r.get(0)?,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    protocol: r.get(3)?,
                    port: r.get(4)?,
                    probe_id: r.get(5)?,
                    site: r.get(6)?,
                    address: r.get(7)?,
                    hostname: r.get(8)?,
                    new_host: r.get(9)?,
                    baseline: r.get(10)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Each (probe, target)'s latest `per_target` WAN samples since `since_ms`.
    pub async fn recent_wan(
        &self,
        since_ms: i64,
        per_target: u32,
    ) -> Result<Vec<WanSeries>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT probe_id, site, target, sent, received, median_ms FROM (
                   SELECT w.probe_id, p.site, w.target, w.sent, w.received, w.median_ms,
                     row_number() OVER (PARTITION BY w.probe_id, w.target ORDER BY w.at_ms DESC)
                       AS n
                   FROM (SELECT probe_id, target, at_ms, sent, received, median_ms
                         FROM wan_samples WHERE at_ms >= ?1
                         UNION ALL
                         SELECT probe_id, target, at_ms, sent, received, median_ms
                         FROM wan_samples_staged WHERE at_ms >= ?1) w
                   JOIN probes p ON p.probe_id = w.probe_id
                   WHERE p.revoked_ms IS NULL)
                 WHERE n <= ?2 ORDER BY probe_id, target, n",
            )?;
            let mut series: Vec<WanSeries> = Vec::new();
            let mut rows = stmt.query(params![since_ms, per_target])?;
            while let Some(r) = rows.next()? {
                let (probe_id, target): (String, String) = (r.get(0)?, r.get(2)?);
                let sample = (r.get(3)?, r.get(4)?, r.get(5)?);
                match series.last_mut() {
                    Some(s) if s.probe_id == probe_id && s.target == target => {
                        s.samples.push(sample)
                    }
                    _ => series.push(WanSeries {
                        probe_id,
                        site: r.get(1)?,
                        target,
                        samples: vec![sample],
                    }),
                }
            }
            Ok(series)
        })
        .await
    }

    pub async fn alert_cursor(&self, name: String) -> Result<Option<i64>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM alert_cursors WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    pub async fn set_alert_cursor(&self, name: String, value: i64) -> Result<(), DbError> {
        self.write_batched(move |conn| {
            conn.prepare_cached(
                "INSERT INTO alert_cursors (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = ?2",
            )?
            .execute(params![name, value])?;
            Ok(())
        })
        .await
    }
}
