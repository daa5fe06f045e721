//! Reports and the probes that sent them.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use shared::report::HostState;
use time::OffsetDateTime;
use uuid::Uuid;

use super::signed::{self, SignedReport, Stored};
use super::staging;
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
                    let inserted = insert(conn, memo, &signed, &stored, received_ms)?;
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

/// Stores one report. Every refusal is decided before the first write.
/// `stored` is the report's signed bytes in the form they are kept in.
fn insert(
    conn: &Connection,
    memo: &mut super::history::Memo,
    signed: &SignedReport,
    stored: &Stored,
    received_ms: i64,
) -> Result<Inserted, DbError> {
    let report = &signed.report;
    let id = report.report_id.to_string();
    let probe = report.probe_id.to_string();
    let sequence = i64::try_from(report.sequence).unwrap_or(i64::MAX);
    let known = ProbeRow::read(conn, &probe)?;
    let header = stored.header(conn, &probe)?;
    // The usual case: a sequence above every one the probe stored or pruned, signed by a
    // certificate seen before. Such a report cannot be a duplicate (the same bytes carry the
    // same sequence) nor take a sequence, so the lookups in the large trees are spared; a
    // report id taken by another report is found by the row's own insert, its first write.
    let fresh = !header.writes(sequence)
        && known
            .as_ref()
            .and_then(|k| Some(sequence > k.max_sequence?.max(k.pruned_through)))
            .unwrap_or(false);
    if !fresh {
        if let Some(existing) = self::stored(conn, report.report_id)? {
            return Ok(if existing.jws()? == signed.jws {
                Inserted::Duplicate
            } else {
                Inserted::ConflictingId
            });
        }
        let pruned_through = known.as_ref().map_or(0, |k| k.pruned_through);
        if staging::sequence_taken(conn, &probe, sequence)? {
            return Ok(Inserted::ConflictingSequence);
        }
        // Stored once and since deleted by retention (unless it falls in a gap: never stored).
        let pruned = sequence <= pruned_through
            && conn
                .prepare_cached(
                    "SELECT 1 FROM sequence_gaps WHERE probe_id = ?1 AND first <= ?2 AND last >= ?2",
                )?
                .query_row(params![probe, sequence], |_| Ok(()))
                .optional()?
                .is_none();
        if pruned {
            return Ok(Inserted::Duplicate);
        }
    }
    if let Some(row) = known.as_ref().filter(|row| row.site != report.site) {
        return Ok(Inserted::SiteMismatch {
            enrolled: row.site.clone(),
        });
    }
    let previous_max = known.as_ref().and_then(|k| k.max_sequence);
    let history_ms = known.as_ref().and_then(|k| k.history_ms);

    let generated = to_ms(report.generated_at);
    // A fresh report's probe has stored one before: its site and probe rows exist.
    if !fresh {
        conn.prepare_cached(
            "INSERT INTO sites (name, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![report.site, generated])?;
        conn.prepare_cached(
            "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (probe_id) DO NOTHING",
        )?
        .execute(params![
            probe,
            report.site,
            report.harvester_version,
            received_ms
        ])?;
    }
    let hosts_up = report
        .hosts
        .iter()
        .filter(|h| h.state == HostState::Up)
        .count();
    let header_id = header.id(conn, &probe, sequence)?;
    let row = conn
        .prepare_cached(
            "INSERT INTO reports (report_id, probe_id, sequence, site, generated_ms, received_ms,
                                  signer_kid, hosts_up, open_ports, jws, jws_encoding,
                                  jws_header_id, jws_signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            id,
            probe,
            sequence,
            report.site,
            generated,
            received_ms,
            signed.kid,
            hosts_up as i64,
            report.open_ports() as i64,
            stored.body,
            stored.encoding.as_str(),
            header_id,
            stored.signature,
        ]);
    match row {
        // `report_id` is the table's one unique key; a statement that fails writes nothing.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if fresh && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Ok(Inserted::ConflictingId);
        }
        row => row?,
    };
    staging::add_sequence(conn, &probe, sequence, generated, conn.last_insert_rowid())?;
    update_gaps(conn, &probe, sequence, previous_max)?;
    super::history::apply(conn, memo, report, generated, history_ms)?;
    let newest = known
        .as_ref()
        .and_then(|k| k.last_report_ms)
        .is_some_and(|last| generated > last);
    super::wan::insert(conn, report, generated, newest)?;
    // The probe row follows its newest report (by generation time), whatever the arrival
    // order, and keeps the highest sequence. (Every SET expression sees the row as it was.)
    let interval_ms = i64::try_from(report.interval_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE probes SET max_sequence = max(coalesce(max_sequence, ?6), ?6),
             harvester_version = iif(coalesce(last_report_ms, ?4) <= ?4, ?2, harvester_version),
             last_report_id = iif(coalesce(last_report_ms, ?4) <= ?4, ?3, last_report_id),
             last_report_ms = max(coalesce(last_report_ms, ?4), ?4),
             interval_ms = iif(coalesce(last_report_ms, ?4) <= ?4, ?5, interval_ms)
         WHERE probe_id = ?1",
    )?
    .execute(params![
        probe,
        report.harvester_version,
        id,
        generated,
        interval_ms,
        sequence
    ])?;
    // A running total: keep the highest seen, whatever the arrival order.
    if report.unsent_reports > 0 {
        conn.prepare_cached(
            "UPDATE probes SET unsent_reports = max(unsent_reports, ?2) WHERE probe_id = ?1",
        )?
        .execute(params![
            probe,
            i64::try_from(report.unsent_reports).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(Inserted::Stored)
}

/// What insert needs of the probe's row.
struct ProbeRow {
    /// The site it enrolled for.
    site: String,
    /// How far retention pruned its reports.
    pruned_through: i64,
    /// The newest report its history has applied.
    history_ms: Option<i64>,
    /// Its highest stored sequence.
    max_sequence: Option<i64>,
    /// The generation time of its newest stored report.
    last_report_ms: Option<i64>,
}

impl ProbeRow {
    fn read(conn: &Connection, probe: &str) -> Result<Option<Self>, DbError> {
        Ok(conn
            .prepare_cached(
                "SELECT site, pruned_through, history_ms, max_sequence, last_report_ms FROM probes
                 WHERE probe_id = ?",
            )?
            .query_row([probe], |r| {
                Ok(Self {
                    site: r.get(0)?,
                    pruned_through: r.get(1)?,
                    history_ms: r.get(2)?,
                    max_sequence: r.get(3)?,
                    last_report_ms: r.get(4)?,
                })
            })
            .optional()?)
    }
}

/// Keeps `sequence_gaps` exact: a jump past the highest sequence opens a gap, a late report
/// fills (splits or shrinks) the gap it falls into. Sequences start at 1.
fn update_gaps(
    conn: &Connection,
    probe: &str,
    sequence: i64,
    previous_max: Option<i64>,
) -> Result<(), DbError> {
    let max = previous_max.unwrap_or(0);
    if sequence > max + 1 {
        conn.prepare_cached(
            "INSERT INTO sequence_gaps (probe_id, first, last) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![probe, max + 1, sequence - 1])?;
    } else if sequence < max {
        let gap: Option<(i64, i64)> = conn.prepare_cached("SELECT first, last FROM sequence_gaps WHERE probe_id = ?1 AND first <= ?2 AND last >= ?2")?.query_row(params![probe, sequence],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((first, last)) = gap {
            conn.prepare_cached("DELETE FROM sequence_gaps WHERE probe_id = ?1 AND first = ?2")?
                .execute(params![probe, first])?;
            for (a, b) in [(first, sequence - 1), (sequence + 1, last)] {
                if a <= b {
                    conn.prepare_cached(
                        "INSERT INTO sequence_gaps (probe_id, first, last) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![probe, a, b])?;
                }
            }
        }
    }
    Ok(())
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
