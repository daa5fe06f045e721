//! Retention: signed reports are kept for a while, host and port history for ever (it is
//! small: intervals, written only on change), WAN samples rolled up into hours and then days.
//! Work is cut into short transactions so ingest keeps flowing while it runs, and freed pages
//! go back to the file system (`auto_vacuum = INCREMENTAL`).

use rusqlite::{Connection, params};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::wan::{Resolution, Sample, bucketed};
use super::{Db, DbError, to_ms};

/// How long each kind of data is kept at full detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Signed reports older than this are deleted (each probe's latest is always kept).
    pub reports: Duration,
    /// WAN samples older than this are rolled up into hours.
    pub wan_raw: Duration,
    /// Hourly rollups older than this are rolled up into days (kept for ever).
    pub wan_hourly: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub reports_deleted: u64,
    pub samples_rolled_up: u64,
    pub hours_rolled_up: u64,
    pub pages_freed: u64,
}

/// Rows deleted per transaction, so one pass never holds the writer for long.
const CHUNK: i64 = 5_000;

impl Db {
    /// Applies `policy` as of `now`.
    pub async fn retain(&self, policy: Policy, now: OffsetDateTime) -> Result<Pruned, DbError> {
        let mut done = Pruned::default();
        let probes: Vec<String> = self
            .read(|c| {
                let mut stmt = c.prepare("SELECT probe_id FROM probes")?;
                Ok(stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await?;
        let report_cutoff = to_ms(now - policy.reports);
        let raw_cutoff = floor(to_ms(now - policy.wan_raw), Resolution::HOUR_MS);
        let hourly_cutoff = floor(to_ms(now - policy.wan_hourly), Resolution::DAY_MS);
        for probe in probes {
            loop {
                let p = probe.clone();
                let n = self
                    .write(move |c| in_transaction(c, |c| prune_reports(c, &p, report_cutoff)))
                    .await?;
                done.reports_deleted += n;
                if n < CHUNK as u64 {
                    break;
                }
            }
            let p = probe.clone();
            done.samples_rolled_up += self
                .write(move |c| {
                    in_transaction(c, |c| roll_up(c, &SAMPLES_TO_HOURS, &p, raw_cutoff))
                })
                .await?;
            let p = probe.clone();
            done.hours_rolled_up += self
                .write(move |c| {
                    in_transaction(c, |c| roll_up(c, &HOURS_TO_DAYS, &p, hourly_cutoff))
                })
                .await?;
        }
        done.pages_freed = self
            .write(|c| {
                let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
                // Each step of this pragma frees one page: step it to the end.
                let mut vacuum = c.prepare("PRAGMA incremental_vacuum")?;
                let mut steps = vacuum.query([])?;
                while steps.next()?.is_some() {}
                drop(steps);
                drop(vacuum);
                // The file itself shrinks once the WAL is checkpointed.
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(free as u64)
            })
            .await?;
        Ok(done)
    }
}

fn floor(ms: i64, unit: i64) -> i64 {
    ms.div_euclid(unit) * unit
}

/// Runs one step in a transaction of its own, on folded keys: retention reads only the
/// large tables (see `staging.rs`).
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let tx = conn.transaction()?;
    super::staging::fold(&tx)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Deletes up to [`CHUNK`] of the probe's reports generated before `cutoff`, never its
/// latest, and remembers the highest sequence deleted.
fn prune_reports(conn: &Connection, probe: &str, cutoff: i64) -> Result<u64, DbError> {
    let doomed: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT sequence, id FROM report_sequences
             WHERE probe_id = ?1 AND generated_ms < ?2
               AND id IS NOT (SELECT r.id FROM probes p JOIN reports r ON r.report_id = p.last_report_id
                              WHERE p.probe_id = ?1)
             ORDER BY sequence LIMIT ?3",
        )?
        .query_map(params![probe, cutoff, CHUNK], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(last, _)) = doomed.last() else {
        return Ok(0);
    };
    conn.prepare_cached(
        "UPDATE probes SET pruned_through = max(pruned_through, ?2) WHERE probe_id = ?1",
    )?
    .execute(params![probe, last])?;
    let mut forget_key =
        conn.prepare_cached("DELETE FROM report_sequences WHERE probe_id = ?1 AND sequence = ?2")?;
    let mut forget_report = conn.prepare_cached("DELETE FROM reports WHERE id = ?")?;
    for (sequence, id) in &doomed {
        forget_key.execute(params![probe, sequence])?;
        forget_report.execute([id])?;
    }
    // A certificate's header goes with the last report it signed.
    super::signed::forget_unused_headers(conn, probe)?;
    Ok(doomed.len() as u64)
}

fn samples_before(
    conn: &Connection,
    sql: &str,
    probe: &str,
    cutoff: i64,
) -> Result<Vec<Sample>, DbError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(params![probe, cutoff], Sample::from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Adds merged buckets to `wan_rollups`, merging with a bucket already there (samples that
/// arrived after their hour was rolled up): medians are then averaged, weighted by samples.
fn upsert_rollups(
    conn: &Connection,
    probe: &str,
    span_ms: i64,
    buckets: &[Sample],
) -> Result<(), DbError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO wan_rollups (probe_id, target, span_s, start_ms, samples, sent, received, min_ms, median_ms, max_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (probe_id, span_s, start_ms, target) DO UPDATE SET
           median_ms = CASE WHEN median_ms IS NULL THEN excluded.median_ms
                            WHEN excluded.median_ms IS NULL THEN median_ms
                            ELSE (median_ms * samples + excluded.median_ms * excluded.samples)
                                 / (samples + excluded.samples) END,
           samples = samples + excluded.samples,
           sent = sent + excluded.sent,
           received = received + excluded.received,
           min_ms = min(coalesce(min_ms, excluded.min_ms), coalesce(excluded.min_ms, min_ms)),
           max_ms = max(coalesce(max_ms, excluded.max_ms), coalesce(excluded.max_ms, max_ms))",
    )?;
    for b in buckets {
        stmt.execute(params![
            probe,
            b.target,
            span_ms / 1000,
            b.at_ms,
            b.samples,
            b.sent,
            b.received,
            b.min_ms,
            b.median_ms,
            b.max_ms
        ])?;
    }
    Ok(())
}

/// One step of rolling up: rows older than a cutoff (a whole bucket) are merged into
/// buckets of `into_ms` and deleted.
struct RollUp {
    select: &'static str,
    delete: &'static str,
    into_ms: i64,
}

/// Raw samples become hourly rollups.
const SAMPLES_TO_HOURS: RollUp = RollUp {
    select: "SELECT target, at_ms, 1, sent, received, min_ms, median_ms, max_ms FROM wan_samples
             WHERE probe_id = ?1 AND at_ms < ?2 ORDER BY target, at_ms",
    delete: "DELETE FROM wan_samples WHERE probe_id = ?1 AND at_ms < ?2",
    into_ms: Resolution::HOUR_MS,
};

/// Hourly rollups become daily ones.
const HOURS_TO_DAYS: RollUp = RollUp {
    select: "SELECT target, start_ms, samples, sent, received, min_ms, median_ms, max_ms FROM wan_rollups
             WHERE probe_id = ?1 AND span_s = 3600 AND start_ms < ?2 ORDER BY target, start_ms",
    delete: "DELETE FROM wan_rollups WHERE probe_id = ?1 AND span_s = 3600 AND start_ms < ?2",
    into_ms: Resolution::DAY_MS,
};

/// Applies `step` to the probe's rows before `cutoff`; returns how many were rolled up.
fn roll_up(conn: &Connection, step: &RollUp, probe: &str, cutoff: i64) -> Result<u64, DbError> {
    let rows = samples_before(conn, step.select, probe, cutoff)?;
    upsert_rollups(conn, probe, step.into_ms, &bucketed(&rows, step.into_ms))?;
    conn.execute(step.delete, params![probe, cutoff])?;
    Ok(rows.len() as u64)
}

/// Rows and bytes of one table or index.
#[derive(Debug, Clone, Serialize)]
pub struct TableStats {
    pub name: String,
    /// `None` for an index.
    pub rows: Option<u64>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub file_bytes: u64,
    pub free_bytes: u64,
    pub tables: Vec<TableStats>,
}

impl Db {
    /// The database file's size (pages in use and free), cheap enough for every scrape.
    pub async fn file_bytes(&self) -> Result<u64, DbError> {
        self.read(|conn| {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            Ok(u64::try_from(page * pages).unwrap_or(0))
        })
        .await
    }

    /// Row counts and on-disk sizes of every table and index.
    pub async fn stats(&self) -> Result<Stats, DbError> {
        self.read(|conn| {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let mut stmt = conn.prepare(
                "SELECT d.name, m.type, sum(d.pgsize) FROM dbstat d
                 LEFT JOIN sqlite_schema m ON m.name = d.name
                 GROUP BY d.name ORDER BY sum(d.pgsize) DESC, d.name",
            )?;
            let sizes: Vec<(String, Option<String>, i64)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut tables = Vec::new();
            for (name, kind, bytes) in sizes {
                let rows = if kind.as_deref() == Some("table") {
                    let n: i64 =
                        conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |r| {
                            r.get(0)
                        })?;
                    Some(n as u64)
                } else {
                    None
                };
                tables.push(TableStats {
                    name,
                    rows,
                    bytes: bytes as u64,
                });
            }
            Ok(Stats {
                file_bytes: (page * pages) as u64,
                free_bytes: (page * free) as u64,
                tables,
            })
        })
        .await
    }
}
