//! The history as the API and the pages read it: a probe's hosts, host search, one host's
//! timeline, and the change feed.

use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Change, ChangeFilter, HostDetail, HostSummary, Interval, OpenPort, PortTimeline};
use crate::db::{Db, DbError, Page, millis, optional_millis, uuid};

const HOST_COLUMNS: &str = "h.host_id, h.probe_id, p.site, h.address, h.hostname, h.os, h.up,
    h.first_seen_ms, CASE WHEN h.up THEN p.history_ms ELSE h.last_seen_ms END";

fn host_row(row: &Row<'_>) -> rusqlite::Result<HostSummary> {
    let os: String = row.get(5)?;
    Ok(HostSummary {
        host_id: row.get(0)?,
        probe_id: uuid(row, 1)?,
        site: row.get(2)?,
        address: row.get(3)?,
        hostname: row.get(4)?,
        os: serde_json::from_str(&os).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        up: row.get(6)?,
        first_seen_at: millis(row, 7)?,
        last_seen_at: millis(row, 8)?,
        open_ports: Vec::new(),
    })
}

/// Fills in the open ports of `hosts`.
fn with_open_ports(conn: &Connection, hosts: &mut [HostSummary]) -> Result<(), DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT protocol, port, banner, opened_ms FROM port_intervals INDEXED BY open_ports
         WHERE host_id = ? AND closed_ms IS NULL ORDER BY protocol, port",
    )?;
    for host in hosts {
        host.open_ports = stmt
            .query_map([host.host_id], |r| {
                Ok(OpenPort {
                    protocol: r.get(0)?,
                    port: r.get(1)?,
                    banner: r.get(2)?,
                    open_since: millis(r, 3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Db {
    /// The hosts a probe has seen (up ones first, then by address); `None` for an unknown probe.
    pub async fn probe_hosts(&self, probe_id: Uuid) -> Result<Option<Vec<HostSummary>>, DbError> {
        self.read(move |conn| {
            if !crate::db::probe_exists(conn, probe_id)? {
                return Ok(None);
            }
            let sql = format!(
                "SELECT {HOST_COLUMNS} FROM hosts h JOIN probes p ON p.probe_id = h.probe_id
                 WHERE h.probe_id = ?"
            );
            let mut hosts: Vec<HostSummary> = conn
                .prepare_cached(&sql)?
                .query_map([probe_id.to_string()], host_row)?
                .collect::<Result<_, _>>()?;
            hosts.sort_by(|a, b| b.up.cmp(&a.up).then_with(|| address_order(a, b)));
            with_open_ports(conn, &mut hosts)?;
            Ok(Some(hosts))
        })
        .await
    }

    /// Hosts whose name or address contains `query` (any case), across every site; paged by
    /// host id.
    pub async fn search_hosts(
        &self,
        query: String,
        limit: u32,
        after: Option<i64>,
    ) -> Result<Page<HostSummary>, DbError> {
        self.read(move |conn| {
            let pattern = format!("%{}%", like_escaped(&query));
            let sql = format!(
                "SELECT {HOST_COLUMNS} FROM hosts h JOIN probes p ON p.probe_id = h.probe_id
                 WHERE (h.hostname LIKE ?1 ESCAPE '\\' OR h.address LIKE ?1 ESCAPE '\\')
                   AND h.host_id > ?2
                 ORDER BY h.host_id LIMIT ?3"
            );
            let mut hosts: Vec<HostSummary> = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![pattern, after.unwrap_or(0), i64::from(limit) + 1],
                    host_row,
                )?
                .collect::<Result<_, _>>()?;
            let next_cursor = crate::db::next_cursor(&mut hosts, limit, |h| h.host_id.to_string());
            with_open_ports(conn, &mut hosts)?;
            Ok(Page {
                items: hosts,
                next_cursor,
            })
        })
        .await
    }

    /// One host and its whole history.
    pub async fn host(&self, host_id: i64) -> Result<Option<HostDetail>, DbError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {HOST_COLUMNS} FROM hosts h JOIN probes p ON p.probe_id = h.probe_id
                 WHERE h.host_id = ?"
            );
            let Some(mut host) = conn
                .prepare_cached(&sql)?
                .query_row([host_id], host_row)
                .optional()?
            else {
                return Ok(None);
            };
            with_open_ports(conn, std::slice::from_mut(&mut host))?;
            let now = host.last_seen_at;
            let interval = |r: &Row<'_>, at: usize| -> rusqlite::Result<Interval> {
                let until = optional_millis(r, at + 1)?;
                Ok(Interval {
                    from: millis(r, at)?,
                    until,
                    last_seen_at: optional_millis(r, at + 2)?.unwrap_or(now),
                })
            };
            let up = conn
                .prepare_cached(
                    "SELECT up_ms, down_ms, last_seen_ms FROM host_intervals
                     WHERE host_id = ? ORDER BY up_ms",
                )?
                .query_map([host_id], |r| interval(r, 0))?
                .collect::<Result<_, _>>()?;
            let mut ports: Vec<PortTimeline> = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT protocol, port, banner, opened_ms, closed_ms, last_seen_ms
                 FROM port_intervals WHERE host_id = ? ORDER BY protocol, port, opened_ms",
            )?;
            let mut rows = stmt.query([host_id])?;
            while let Some(r) = rows.next()? {
                let (protocol, port): (String, u16) = (r.get(0)?, r.get(1)?);
                let banner: Option<String> = r.get(2)?;
                let span = interval(r, 3)?;
                match ports.last_mut() {
                    Some(t) if t.protocol == protocol && t.port == port => {
                        t.open = span.until.is_none();
                        t.last_seen_open = span.last_seen_at;
                        t.banner = banner.or(t.banner.take());
                        t.intervals.push(span);
                    }
                    _ => ports.push(PortTimeline {
                        protocol,
                        port,
                        open: span.until.is_none(),
                        banner,
                        first_seen_open: span.from,
                        last_seen_open: span.last_seen_at,
                        intervals: vec![span],
                    }),
                }
            }
            Ok(Some(HostDetail { host, up, ports }))
        })
        .await
    }

    /// The change feed, filtered and paged by change id.
    pub async fn changes(&self, filter: ChangeFilter) -> Result<Page<Change>, DbError> {
        self.read(move |conn| {
            let (order, cmp) = if filter.newest_first {
                ("DESC", "<")
            } else {
                ("ASC", ">")
            };
            let sql = format!(
                "SELECT c.change_id, c.at_ms, c.kind, p.site, h.probe_id, c.host_id, h.address,
                        h.hostname, c.protocol, c.port, c.report_id
                 FROM changes c JOIN hosts h ON h.host_id = c.host_id
                      JOIN probes p ON p.probe_id = h.probe_id
                 WHERE c.at_ms >= ?1 AND (?2 IS NULL OR p.site = ?2)
                   AND (?3 IS NULL OR h.probe_id = ?3) AND (?4 IS NULL OR c.change_id {cmp} ?4)
                 ORDER BY c.change_id {order} LIMIT ?5"
            );
            let mut items: Vec<Change> = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        filter.since.map_or(i64::MIN, crate::db::to_ms),
                        filter.site,
                        filter.probe_id.map(|p| p.to_string()),
                        filter.after,
                        i64::from(filter.limit) + 1
                    ],
                    |r| {
                        Ok(Change {
                            change_id: r.get(0)?,
                            at: millis(r, 1)?,
                            kind: crate::db::parsed(r, 2)?,
                            site: r.get(3)?,
                            probe_id: uuid(r, 4)?,
                            host_id: r.get(5)?,
                            address: r.get(6)?,
                            hostname: r.get(7)?,
                            protocol: r.get(8)?,
                            port: r.get(9)?,
                            report_id: uuid(r, 10)?,
                        })
                    },
                )?
                .collect::<Result<_, _>>()?;
            let next_cursor =
                crate::db::next_cursor(&mut items, filter.limit, |c| c.change_id.to_string());
            Ok(Page { items, next_cursor })
        })
        .await
    }
}

/// Numeric address order (so 10.0.0.9 comes before 10.0.0.10).
fn address_order(a: &HostSummary, b: &HostSummary) -> std::cmp::Ordering {
    match (
        a.address.parse::<std::net::IpAddr>(),
        b.address.parse::<std::net::IpAddr>(),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.address.cmp(&b.address),
    }
}
