//! Reports and the probes that sent them: the reads, and the entry to the write path
//! (`insert.rs`).
//!
//! `reports` has no probe-keyed index at all: once the table is large, each such index cost
//! a page of its own per probe in every group commit. A probe's reports are found through
//! `report_sequences` (probe, sequence; staged, see `staging.rs`), and each probe's highest
//! sequence and newest report are kept on its row (`probes.max_sequence`, `last_report_id`).

mod insert;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::signed::{self, SignedReport, Stored};
use super::wan::WanPoint;
use super::{Db, DbError, millis, optional_millis, to_ms, uuid};

/// What storing a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// The same signed bytes were stored before: nothing changed.
    Duplicate,
    /// Another report with this id but different bytes is stored: refused.
    ConflictingId,
    /// This probe already has a report with this sequence number: refused.
    ConflictingSequence,
    /// The report names another site than the one the probe was enrolled for: refused.
    SiteMismatch {
        enrolled: String,
    },
    /// The probe was revoked (maybe while its connection stayed open): refused.
    ProbeRevoked,
}

/// Missing sequence numbers of a probe, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub first: u64,
    pub last: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportSummary {
    pub report_id: Uuid,
    pub probe_id: Uuid,
    pub sequence: u64,
    pub site: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub hosts_up: u32,
    pub open_ports: u32,
}

/// `online`: the last report is at most two intervals old; `stale`: at most six; `offline`:
/// older, none yet, or the probe is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeStatus {
    Online,
    Stale,
    Offline,
}

impl ProbeStatus {
    /// Assumed when a probe has not said how often it reports.
    pub const DEFAULT_INTERVAL: time::Duration = time::Duration::minutes(5);

    pub fn of(
        last_report: Option<OffsetDateTime>,
        interval: Option<time::Duration>,
        revoked: bool,
        now: OffsetDateTime,
    ) -> Self {
        let interval = interval
            .filter(|i| i.is_positive())
            .unwrap_or(Self::DEFAULT_INTERVAL);
        match last_report {
            Some(at) if !revoked => {
                let age = now - at;
                if age <= interval * 2 {
                    Self::Online
                } else if age <= interval * 6 {
                    Self::Stale
                } else {
                    Self::Offline
                }
            }
            _ => Self::Offline,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Stale => "stale",
            Self::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProbeSummary {
    pub probe_id: Uuid,
    pub site: String,
    pub status: ProbeStatus,
    /// How often the probe says it reports.
    pub interval_s: Option<u64>,
    pub harvester_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
    /// Sequence numbers never received (lost reports), from the gaps.
    pub missing_reports: u64,
    /// Reports the harvester says it could not produce or keep.
    pub unsent_reports: u64,
    pub last_report: Option<ReportSummary>,
    /// The latest WAN measurement of each target.
    pub wan: Vec<WanPoint>,
}

/// Which of a probe's reports to list: newest first, generated in `[from, to)`.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub limit: u32,
    /// Continue below this sequence number (the cursor).
    pub before_sequence: Option<u64>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// One page of a list. Pass `next_cursor` back as `cursor` for the next page; it is absent on
/// the last page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

const SUMMARY_COLUMNS: &str = "r.report_id, r.probe_id, r.sequence, r.site, r.generated_ms, r.received_ms, r.hosts_up, r.open_ports";

impl Db {
    /// Stores a verified report, its hosts and ports, in one transaction. `expected` is the
    /// expectation taken when the report arrived ([`Db::expect_write`]); it ends as the report
    /// is queued.
    pub async fn insert_report(
        &self,
        signed: SignedReport,
        expected: super::ExpectedWrite,
    ) -> Result<Inserted, DbError> {
        // Compressed here, on the caller's thread, so the single writer only copies bytes.
        let stored = Stored::of(&signed);
        let received_ms = self.clock.now_ms();
        let (inserted, _freed_here) = self
            .write_expected(
                move |conn, memo| {
                    let inserted = insert::insert(conn, memo, &signed, &stored, received_ms)?;
                    // Back with the answer: freeing the parsed report (a few hundred
                    // allocations) is the caller's work, not the single writer's.
                    Ok((inserted, (signed, stored)))
                },
                Some(expected),
            )
            .await?;
        Ok(inserted)
    }

    /// Every probe (or one), by site, with its status as of `now`.
    pub async fn probes(
        &self,
        only: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Vec<ProbeSummary>, DbError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT p.probe_id, p.site, p.harvester_version, p.first_seen_ms, p.cert_expires_ms,
                        p.revoked_ms IS NOT NULL, p.unsent_reports,
                        (SELECT coalesce(sum(g.last - g.first + 1), 0) FROM sequence_gaps g WHERE g.probe_id = p.probe_id),
                        p.interval_ms, p.last_report_ms,
                        {SUMMARY_COLUMNS}
                 FROM probes p LEFT JOIN reports r ON r.report_id = p.last_report_id
                 WHERE ?1 IS NULL OR p.probe_id = ?1
                 ORDER BY p.site, p.probe_id"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([only.map(|p| p.to_string())], |row| {
                let last_report = match row.get::<_, Option<String>>(10)? {
                    Some(_) => Some(summary(row, 10)?),
                    None => None,
                };
                let interval_ms: Option<i64> = row.get(8)?;
                let revoked = row.get(5)?;
                Ok(ProbeSummary {
                    probe_id: uuid(row, 0)?,
                    site: row.get(1)?,
                    status: ProbeStatus::of(
                        optional_millis(row, 9)?,
                        interval_ms.map(time::Duration::milliseconds),
                        revoked,
                        now,
                    ),
                    interval_s: interval_ms.map(|ms| (ms / 1000) as u64),
                    harvester_version: row.get(2)?,
                    first_seen_at: millis(row, 3)?,
                    certificate_expires_at: optional_millis(row, 4)?,
                    revoked,
                    unsent_reports: row.get::<_, i64>(6)? as u64,
                    missing_reports: row.get::<_, i64>(7)? as u64,
                    last_report,
                    wan: Vec::new(),
                })
            })?;
            let mut probes: Vec<ProbeSummary> = rows.collect::<Result<_, _>>()?;
            for probe in &mut probes {
                probe.wan = super::wan::latest(conn, &probe.probe_id.to_string())?;
            }
            Ok(probes)
        })
        .await
    }

    /// A page of a probe's reports, newest first; `None` when the probe is unknown.
    pub async fn probe_reports(
        &self,
        probe_id: Uuid,
        query: ReportQuery,
    ) -> Result<Option<Page<ReportSummary>>, DbError> {
        self.read(move |conn| {
            if !super::probe_exists(conn, probe_id)? {
                return Ok(None);
            }
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM (
                   SELECT * FROM (SELECT sequence, id FROM report_sequences
                                  WHERE probe_id = ?1 AND sequence < ?2
                                    AND generated_ms >= ?3 AND generated_ms < ?4
                                  ORDER BY sequence DESC LIMIT ?5)
                   UNION ALL
                   SELECT * FROM (SELECT sequence, id FROM report_sequences_staged
                                  WHERE probe_id = ?1 AND sequence < ?2
                                    AND generated_ms >= ?3 AND generated_ms < ?4
                                  ORDER BY sequence DESC LIMIT ?5)
                 ) s JOIN reports r ON r.id = s.id
                 ORDER BY s.sequence DESC LIMIT ?5"
            );
            let before = query
                .before_sequence
                .map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut items = stmt
                .query_map(
                    params![
                        probe_id.to_string(),
                        before,
                        query.from.map_or(i64::MIN, to_ms),
                        query.to.map_or(i64::MAX, to_ms),
                        i64::from(query.limit) + 1
                    ],
                    |row| summary(row, 0),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor =
                super::next_cursor(&mut items, query.limit, |r| r.sequence.to_string());
            Ok(Some(Page { items, next_cursor }))
        })
        .await
    }

    /// A report's summary and the site it came from.
    pub async fn report_summary(&self, report_id: Uuid) -> Result<Option<ReportSummary>, DbError> {
        self.read(move |conn| {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM reports r WHERE r.report_id = ?");
            Ok(conn
                .prepare_cached(&sql)?
                .query_row([report_id.to_string()], |row| summary(row, 0))
                .optional()?)
        })
        .await
    }

    /// A probe's missing sequence ranges, oldest first; `None` when the probe is unknown.
    pub async fn gaps(&self, probe_id: Uuid) -> Result<Option<Vec<Gap>>, DbError> {
        self.read(move |conn| {
            let id = probe_id.to_string();
            if !super::probe_exists(conn, probe_id)? {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT first, last FROM sequence_gaps WHERE probe_id = ? ORDER BY first",
            )?;
            let gaps = stmt
                .query_map([&id], |r| {
                    Ok(Gap {
                        first: r.get::<_, i64>(0)? as u64,
                        last: r.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some(gaps))
        })
        .await
    }

    /// The signed bytes of a report, exactly as received.
    pub async fn report_jws(&self, report_id: Uuid) -> Result<Option<Vec<u8>>, DbError> {
        self.read(move |conn| stored(conn, report_id)?.map(signed::Row::jws).transpose())
            .await
    }

    /// The payload of a report: the JSON its probe signed.
    pub async fn report_payload(&self, report_id: Uuid) -> Result<Option<Vec<u8>>, DbError> {
        self.read(move |conn| {
            stored(conn, report_id)?
                .map(signed::Row::payload)
                .transpose()
        })
        .await
    }
}

fn stored(conn: &Connection, report_id: Uuid) -> Result<Option<signed::Row>, DbError> {
    let sql = format!(
        "SELECT {} FROM reports r {} WHERE r.report_id = ?",
        signed::COLUMNS,
        signed::JOIN
    );
    conn.prepare_cached(&sql)?
        .query_row([report_id.to_string()], |r| Ok(signed::Row::read(r, 0)))
        .optional()?
        .transpose()
}

fn summary(row: &Row<'_>, at: usize) -> rusqlite::Result<ReportSummary> {
    Ok(ReportSummary {
        report_id: uuid(row, at)?,
        probe_id: uuid(row, at + 1)?,
        sequence: row.get::<_, i64>(at + 2)? as u64,
        site: row.get(at + 3)?,
        generated_at: millis(row, at + 4)?,
        received_at: millis(row, at + 5)?,
        hosts_up: row.get(at + 6)?,
        open_ports: row.get(at + 7)?,
    })
}
