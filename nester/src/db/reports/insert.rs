//! Storing a report: in one savepoint of the writer's group commit, the report row, its
//! sequence (staged), the gaps, its probe's history and WAN samples, and the probe's row.

use rusqlite::{Connection, OptionalExtension, params};
use shared::report::{HostState, Report};

use super::Inserted;
use crate::db::signed::{SignedReport, Stored};
use crate::db::{DbError, history, staging, to_ms, wan};

/// Stores one report. Every refusal is decided before the first write.
/// `stored` is the report's signed bytes in the form they are kept in.
pub(super) fn insert(
    conn: &Connection,
    memo: &mut history::Memo,
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
    if let Some(refused) = refusal(conn, signed, known.as_ref(), &probe, sequence, fresh)? {
        return Ok(refused);
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
    history::apply(conn, memo, report, generated, history_ms)?;
    let newest = known
        .as_ref()
        .and_then(|k| k.last_report_ms)
        .is_some_and(|last| generated > last);
    wan::insert(conn, report, generated, newest)?;
    follow(conn, &probe, report, &id, generated, sequence)?;
    Ok(Inserted::Stored)
}

/// Why a report is not stored, decided before its first write: its probe revoked, already
/// stored (the same bytes, or retention pruned it), another report's id or sequence, another
/// site. A fresh report (see `insert`) can only be refused for its probe or its site.
fn refusal(
    conn: &Connection,
    signed: &SignedReport,
    known: Option<&ProbeRow>,
    probe: &str,
    sequence: i64,
    fresh: bool,
) -> Result<Option<Inserted>, DbError> {
    let report = &signed.report;
    if known.is_some_and(|k| k.revoked) {
        return Ok(Some(Inserted::ProbeRevoked));
    }
    if !fresh {
        if let Some(existing) = super::stored(conn, report.report_id)? {
            return Ok(Some(if existing.jws()? == signed.jws {
                Inserted::Duplicate
            } else {
                Inserted::ConflictingId
            }));
        }
        let pruned_through = known.map_or(0, |k| k.pruned_through);
        if staging::sequence_taken(conn, probe, sequence)? {
            return Ok(Some(Inserted::ConflictingSequence));
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
            return Ok(Some(Inserted::Duplicate));
        }
    }
    if let Some(row) = known.filter(|row| row.site != report.site) {
        return Ok(Some(Inserted::SiteMismatch {
            enrolled: row.site.clone(),
        }));
    }
    Ok(None)
}

/// Updates the probe's row after one of its reports is stored.
fn follow(
    conn: &Connection,
    probe: &str,
    report: &Report,
    id: &str,
    generated: i64,
    sequence: i64,
) -> Result<(), DbError> {
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
    Ok(())
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
    /// Revoked, from any process: its reports are refused, whatever connection they came on.
    revoked: bool,
}

impl ProbeRow {
    fn read(conn: &Connection, probe: &str) -> Result<Option<Self>, DbError> {
        Ok(conn
            .prepare_cached(
                "SELECT site, pruned_through, history_ms, max_sequence, last_report_ms,
                        revoked_ms IS NOT NULL
                 FROM probes WHERE probe_id = ?",
            )?
            .query_row([probe], |r| {
                Ok(Self {
                    site: r.get(0)?,
                    pruned_through: r.get(1)?,
                    history_ms: r.get(2)?,
                    max_sequence: r.get(3)?,
                    last_report_ms: r.get(4)?,
                    revoked: r.get(5)?,
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
