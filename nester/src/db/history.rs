//! What each probe has seen over time: hosts and their open ports as intervals, and the
//! change feed. Updated at ingest by comparing a report with the open intervals (kept in the
//! writer's [`Memo`]), so a query never rescans old reports and a steady network costs no
//! read and no write of the history tables per report.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use shared::report::{HostState, OsGuess, PortState, Protocol, Report};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Db, DbError, Page, millis, optional_millis, uuid};

/// A host as one probe sees it, with the ports open now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostSummary {
    pub host_id: i64,
    pub probe_id: Uuid,
    pub site: String,
    pub address: String,
    pub hostname: Option<String>,
    /// The latest OS guess: `{family, confidence, evidence[]}` (report schema `OsGuess`).
    #[schema(value_type = Object)]
    pub os: OsGuess,
    /// Up in the probe's latest report.
    pub up: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_at: OffsetDateTime,
    /// The last report that saw it up.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    pub open_ports: Vec<OpenPort>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenPort {
    pub protocol: String,
    pub port: u16,
    pub banner: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub open_since: OffsetDateTime,
}

/// A time something was up or open: from `from` to `until` (absent while it still is);
/// `last_seen_at` is the last report that saw it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Interval {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
}

/// One port's history: first seen open, last seen open, and every time it closed and reopened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PortTimeline {
    pub protocol: String,
    pub port: u16,
    pub open: bool,
    pub banner: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen_open: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_open: OffsetDateTime,
    /// Oldest first.
    pub intervals: Vec<Interval>,
}

/// A host with its whole history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostDetail {
    pub host: HostSummary,
    /// When the host was up, oldest first.
    pub up: Vec<Interval>,
    /// Every port ever seen open, by protocol and number.
    pub ports: Vec<PortTimeline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    HostUp,
    HostDown,
    PortOpened,
    PortClosed,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::HostUp => "host_up",
            Self::HostDown => "host_down",
            Self::PortOpened => "port_opened",
            Self::PortClosed => "port_closed",
        }
    }
}

impl std::str::FromStr for ChangeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "host_up" => Self::HostUp,
            "host_down" => Self::HostDown,
            "port_opened" => Self::PortOpened,
            "port_closed" => Self::PortClosed,
            other => return Err(format!("unknown change kind `{other}`")),
        })
    }
}

/// One entry of the change feed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub change_id: i64,
    /// Generation time of the report that showed the change.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: ChangeKind,
    pub site: String,
    pub probe_id: Uuid,
    pub host_id: i64,
    pub address: String,
    pub hostname: Option<String>,
    pub protocol: Option<String>,
    pub port: Option<u16>,
    pub report_id: Uuid,
}

/// Which changes to list.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub since: Option<OffsetDateTime>,
    pub site: Option<String>,
    pub probe_id: Option<Uuid>,
    /// Continue after this change id.
    pub after: Option<i64>,
    /// Newest first (the overview) instead of oldest first (a feed to follow).
    pub newest_first: bool,
    pub limit: u32,
}

/// A port by protocol and number.
type PortKey = (Protocol, u16);

/// What the open intervals say about one host.
#[derive(Debug, PartialEq)]
struct Known {
    host_id: i64,
    hostname: Option<String>,
    /// `None` when the stored guess cannot be read.
    os: Option<OsGuess>,
    up: bool,
    /// Open ports → (opened_ms, banner).
    open: HashMap<PortKey, (i64, Option<String>)>,
}

/// Most probes the writer's [`Memo`] holds (about 10 KB each for 20 hosts).
const MEMO_PROBES: usize = 10_000;

/// The writer's memo of each probe's hosts and open ports, as the last report it applied
/// left them: a report is compared with it instead of with two queries over the history
/// tables, which grow with the database. Every change to `hosts` or `port_intervals`, from
/// any connection, moves `history_version` on (triggers, migration 11); the memo holds the
/// value it matches, and is forgotten when the table says otherwise, or when a job or a
/// commit is rolled back.
#[derive(Default)]
pub(super) struct Memo {
    probes: HashMap<String, HashMap<IpAddr, Known>>,
    /// The `history_version` the memo matches.
    version: Option<i64>,
}

impl Memo {
    pub(super) fn forget(&mut self) {
        self.probes.clear();
        self.version = None;
    }

    /// Forgets everything if the history tables changed behind the memo, or if that cannot
    /// be told: before each group commit's first job (inside its transaction), and after
    /// each exclusive write.
    pub(super) fn check(&mut self, conn: &Connection) {
        match history_version(conn) {
            Ok(version) if self.version == Some(version) => {}
            Ok(version) => {
                self.probes.clear();
                self.version = Some(version);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the history version");
                self.forget();
            }
        }
    }

    fn remember(&mut self, probe: String, hosts: HashMap<IpAddr, Known>) {
        if self.probes.len() >= MEMO_PROBES {
            // Any one: the probes report in turn, so none is much likelier to come next.
            if let Some(other) = self.probes.keys().next().cloned() {
                self.probes.remove(&other);
            }
        }
        self.probes.insert(probe, hosts);
    }
}

/// Brings the probe's history up to `report` (generated at `at`); `previous` is the newest
/// report applied before (`probes.history_ms`). Reports older than that are stored but leave
/// history alone: it only moves forward.
///
/// The probe's memo is updated in place, and a steady network allocates nothing here: this
/// runs on the single writer thread, once per report.
pub(super) fn apply(
    conn: &Connection,
    memo: &mut Memo,
    report: &Report,
    at: i64,
    previous: Option<i64>,
) -> Result<(), DbError> {
    let probe = report.probe_id.to_string();
    if previous.is_some_and(|p| p >= at) {
        return Ok(());
    }
    let step = Step {
        conn,
        at,
        // The report before this one: what "last seen" means for anything that ends now.
        last_seen: previous.unwrap_or(at),
        report_id: report.report_id.to_string(),
    };
    // Taken out: if this fails half-way, the probe is read again next time.
    let mut hosts = match memo.probes.remove(&probe) {
        Some(hosts) => hosts,
        None => known(conn, &probe)?,
    };
    for host in report.hosts.iter().filter(|h| h.state == HostState::Up) {
        let entry = match hosts.entry(host.address) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let host_id = conn
                    .prepare_cached(
                        "INSERT INTO hosts (probe_id, address, hostname, os, first_seen_ms, up)
                         VALUES (?1, ?2, ?3, ?4, ?5, 0) RETURNING host_id",
                    )?
                    .query_row(
                        params![
                            probe,
                            host.address.to_string(),
                            host.hostname,
                            os_json(&host.os)?,
                            at
                        ],
                        |r| r.get(0),
                    )?;
                entry.insert(Known {
                    host_id,
                    hostname: host.hostname.clone(),
                    os: Some(host.os.clone()),
                    up: false,
                    open: HashMap::new(),
                })
            }
        };
        let id = entry.host_id;
        if !entry.up {
            conn.prepare_cached("UPDATE hosts SET up = 1, last_seen_ms = NULL WHERE host_id = ?")?
                .execute([id])?;
            conn.prepare_cached("INSERT INTO host_intervals (host_id, up_ms) VALUES (?1, ?2)")?
                .execute(params![id, at])?;
            step.record(id, ChangeKind::HostUp, None)?;
            entry.up = true;
        }
        let name_changed = host.hostname.is_some() && host.hostname != entry.hostname;
        if name_changed || entry.os.as_ref() != Some(&host.os) {
            conn.prepare_cached(
                "UPDATE hosts SET hostname = coalesce(?2, hostname), os = ?3 WHERE host_id = ?1",
            )?
            .execute(params![id, host.hostname, os_json(&host.os)?])?;
            if name_changed {
                entry.hostname.clone_from(&host.hostname);
            }
            entry.os = Some(host.os.clone());
        }
        for port in host.ports.iter().filter(|p| p.state == PortState::Open) {
            let protocol = port.protocol.as_str();
            match entry.open.get_mut(&(port.protocol, port.port)) {
                Some((opened, banner)) => {
                    if port.banner.is_some() && port.banner != *banner {
                        conn.prepare_cached(
                            "UPDATE port_intervals SET banner = ?5
                             WHERE host_id = ?1 AND protocol = ?2 AND port = ?3 AND opened_ms = ?4",
                        )?
                        .execute(params![
                            id,
                            protocol,
                            port.port,
                            *opened,
                            port.banner
                        ])?;
                        banner.clone_from(&port.banner);
                    }
                }
                None => {
                    conn.prepare_cached(
                        "INSERT INTO port_intervals (host_id, protocol, port, opened_ms, banner)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        id,
                        protocol,
                        port.port,
                        at,
                        port.banner
                    ])?;
                    step.record(id, ChangeKind::PortOpened, Some((protocol, port.port)))?;
                    entry
                        .open
                        .insert((port.protocol, port.port), (at, port.banner.clone()));
                }
            }
        }
        // Open before, not in this report: closed. (Ports are sorted: validated.)
        let closed: Vec<_> = entry
            .open
            .iter()
            .filter(|((protocol, number), _)| {
                host.ports
                    .binary_search_by_key(number, |p| p.port)
                    .map_or(true, |i| {
                        let port = &host.ports[i];
                        port.state != PortState::Open || port.protocol != *protocol
                    })
            })
            .map(|(key, (opened, _))| (*key, *opened))
            .collect();
        step.close_ports(id, &closed)?;
        for (key, _) in closed {
            entry.open.remove(&key);
        }
    }
    // Hosts the report did not see up: down, and their ports with them. (Hosts are sorted
    // by address: validated.)
    let seen_up = |address: &IpAddr| {
        report
            .hosts
            .binary_search_by_key(address, |h| h.address)
            .is_ok_and(|i| report.hosts[i].state == HostState::Up)
    };
    for (_, entry) in hosts
        .iter_mut()
        .filter(|(address, entry)| entry.up && !seen_up(address))
    {
        let open: Vec<_> = entry
            .open
            .drain()
            .map(|(key, (opened, _))| (key, opened))
            .collect();
        step.close_ports(entry.host_id, &open)?;
        conn.prepare_cached("UPDATE hosts SET up = 0, last_seen_ms = ?2 WHERE host_id = ?1")?
            .execute(params![entry.host_id, step.last_seen])?;
        conn.prepare_cached(
            "UPDATE host_intervals SET down_ms = ?2, last_seen_ms = ?3
             WHERE host_id = ?1 AND down_ms IS NULL",
        )?
        .execute(params![entry.host_id, at, step.last_seen])?;
        step.record(entry.host_id, ChangeKind::HostDown, None)?;
        entry.up = false;
    }
    conn.prepare_cached("UPDATE probes SET history_ms = ?2 WHERE probe_id = ?1")?
        .execute(params![probe, at])?;
    // Every report stored by a debug build (the test suites) checks the memo.
    if cfg!(debug_assertions) {
        let truth = self::known(conn, &probe)?;
        assert_eq!(
            hosts, truth,
            "the memo of probe {probe} strays from the tables"
        );
    }
    // What this report changed moved the version on, and nothing else can inside the
    // writer's transaction: the memo matches the tables as they are now.
    memo.version = Some(history_version(conn)?);
    memo.remember(probe, hosts);
    Ok(())
}

/// An OS guess as the `hosts.os` column keeps it.
fn os_json(os: &OsGuess) -> Result<String, DbError> {
    serde_json::to_string(os).map_err(|e| DbError::Corrupt(e.to_string()))
}

fn history_version(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn
        .prepare_cached("SELECT n FROM history_version")?
        .query_row([], |r| r.get(0))?)
}

/// Applying one report.
struct Step<'c> {
    conn: &'c Connection,
    at: i64,
    last_seen: i64,
    report_id: String,
}

impl Step<'_> {
    fn record(
        &self,
        host_id: i64,
        kind: ChangeKind,
        port: Option<(&str, u16)>,
    ) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO changes (at_ms, host_id, kind, protocol, port, report_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                self.at,
                host_id,
                kind.as_str(),
                port.map(|p| p.0),
                port.map(|p| p.1),
                self.report_id
            ])?;
        Ok(())
    }

    /// Ends the intervals of `ports` (protocol and number, opened at) on host `host_id`: the
    /// report did not see them open.
    fn close_ports(&self, host_id: i64, ports: &[(PortKey, i64)]) -> Result<(), DbError> {
        for &((protocol, port), opened) in ports {
            let protocol = protocol.as_str();
            self.conn
                .prepare_cached(
                    "UPDATE port_intervals SET closed_ms = ?5, last_seen_ms = ?6
                     WHERE host_id = ?1 AND protocol = ?2 AND port = ?3 AND opened_ms = ?4",
                )?
                .execute(params![
                    host_id,
                    protocol,
                    port,
                    opened,
                    self.at,
                    self.last_seen
                ])?;
            self.record(host_id, ChangeKind::PortClosed, Some((protocol, port)))?;
        }
        Ok(())
    }
}

/// Every host the probe knows, with its open ports, by address. A row this build cannot
/// read (an address not written as ingest writes it, a protocol it does not know) is left
/// out, with a warning, and left alone: it must not stop the probe's ingest.
fn known(conn: &Connection, probe: &str) -> Result<HashMap<IpAddr, Known>, DbError> {
    let mut hosts: HashMap<IpAddr, Known> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT host_id, address, hostname, os, up FROM hosts WHERE probe_id = ?",
    )?;
    let mut by_id = HashMap::new();
    let mut rows = stmt.query([probe])?;
    while let Some(r) = rows.next()? {
        let host_id: i64 = r.get(0)?;
        let text: String = r.get(1)?;
        // As ingest writes it, or two rows could name one address.
        let Some(address) = text
            .parse::<IpAddr>()
            .ok()
            .filter(|a| a.to_string() == text)
        else {
            tracing::warn!(probe_id = probe, host_id, address = %text, "host row with an unreadable address left out of history");
            continue;
        };
        let os: String = r.get(3)?;
        by_id.insert(host_id, address);
        hosts.insert(
            address,
            Known {
                host_id,
                hostname: r.get(2)?,
                // Unreadable: never equal to a report's guess, so the next one rewrites it.
                os: serde_json::from_str(&os).ok(),
                up: r.get(4)?,
                open: HashMap::new(),
            },
        );
    }
    let mut stmt = conn.prepare_cached(
        "SELECT p.host_id, p.protocol, p.port, p.opened_ms, p.banner
         FROM hosts h JOIN port_intervals p INDEXED BY open_ports
              ON p.host_id = h.host_id AND p.closed_ms IS NULL
         WHERE h.probe_id = ?",
    )?;
    let mut rows = stmt.query([probe])?;
    while let Some(r) = rows.next()? {
        let host_id: i64 = r.get(0)?;
        let protocol: String = r.get(1)?;
        let Some(protocol) = Protocol::from_name(&protocol) else {
            tracing::warn!(probe_id = probe, host_id, %protocol, "open port with an unknown protocol left out of history");
            continue;
        };
        if let Some(known) = by_id.get(&host_id).and_then(|a| hosts.get_mut(a)) {
            known
                .open
                .insert((protocol, r.get(2)?), (r.get(3)?, r.get(4)?));
        }
    }
    Ok(hosts)
}

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
            if !super::probe_exists(conn, probe_id)? {
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
            let next_cursor = super::next_cursor(&mut hosts, limit, |h| h.host_id.to_string());
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
                        filter.since.map_or(i64::MIN, super::to_ms),
                        filter.site,
                        filter.probe_id.map(|p| p.to_string()),
                        filter.after,
                        i64::from(filter.limit) + 1
                    ],
                    |r| {
                        Ok(Change {
                            change_id: r.get(0)?,
                            at: millis(r, 1)?,
                            kind: super::parsed(r, 2)?,
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
                super::next_cursor(&mut items, filter.limit, |c| c.change_id.to_string());
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use shared::report::{Host, OsFamily, Port, ScanParameters};

    use super::*;

    const ADDRESSES: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"];
    const PORTS: [u16; 3] = [22, 80, 443];
    const PROBE: &str = "00000000-0000-0000-0000-000000000001";

    /// One host in one report: up, a name (of two, or none), an OS family (of three), and
    /// per port: absent, or (open, a banner of two or none).
    type HostSpec = (bool, Option<u8>, u8, [Option<(bool, Option<u8>)>; 3]);
    /// One report: each address absent or present, and whether the writer's memo is
    /// forgotten first (as when the tables change behind it).
    type ReportSpec = ([Option<HostSpec>; 4], bool);

    fn report_spec() -> impl Strategy<Value = ReportSpec> {
        let port = proptest::option::of((any::<bool>(), proptest::option::of(0u8..2)));
        let host = proptest::option::of((
            any::<bool>(),
            proptest::option::of(0u8..2),
            0u8..3,
            proptest::array::uniform3(port),
        ));
        (proptest::array::uniform4(host), any::<bool>())
    }

    fn os(family: u8) -> OsGuess {
        OsGuess {
            family: [OsFamily::Linux, OsFamily::Windows, OsFamily::Bsd][usize::from(family)],
            confidence: 50,
            evidence: vec![format!("evidence {family}")],
        }
    }

    fn report(hosts: &[Option<HostSpec>; 4], sequence: u64) -> Report {
        let now = OffsetDateTime::UNIX_EPOCH;
        let hosts = ADDRESSES
            .iter()
            .zip(hosts)
            .filter_map(|(address, spec)| {
                let (up, name, family, ports) = spec.as_ref()?;
                Some(Host {
                    address: address.parse().unwrap(),
                    hostname: name.map(|n| format!("name-{n}")),
                    state: if *up { HostState::Up } else { HostState::Down },
                    discovery: None,
                    os: os(*family),
                    ports: PORTS
                        .iter()
                        .zip(ports)
                        .filter_map(|(&port, spec)| {
                            let (open, banner) = spec.as_ref()?;
                            Some(Port {
                                port,
                                protocol: Protocol::Tcp,
                                state: if *open {
                                    PortState::Open
                                } else {
                                    PortState::Closed
                                },
                                banner: banner.map(|b| format!("banner-{b}")),
                            })
                        })
                        .collect(),
                })
            })
            .collect();
        Report {
            schema_version: shared::SCHEMA_VERSION,
            report_id: Uuid::from_u128(u128::from(sequence)),
            probe_id: PROBE.parse().unwrap(),
            site: "s".into(),
            harvester_version: "1".into(),
            sequence,
            unsent_reports: 0,
            generated_at: now,
            interval_s: 60,
            scan: ScanParameters {
                targets: vec![],
                ports: String::new(),
                started_at: now,
                finished_at: now,
                concurrency: 1,
                min_timeout_ms: 1,
                max_timeout_ms: 1,
                retries: 0,
                rate: 0,
                discovery: true,
            },
            hosts_up: 0,
            hosts,
            wan: vec![],
        }
    }

    /// What the history tables must say, worked out from the reports alone.
    #[derive(Debug, Default, PartialEq)]
    struct Expected {
        /// address → (hostname, os, up)
        hosts: BTreeMap<String, (Option<String>, OsGuess, bool)>,
        /// (address, port) → banner, for the ports open now
        open: BTreeMap<(String, u16), Option<String>>,
        /// How many times each host came up, and each port opened.
        host_intervals: BTreeMap<String, i64>,
        port_intervals: BTreeMap<(String, u16), i64>,
        /// host_up, host_down, port_opened, port_closed
        changes: [i64; 4],
    }

    impl Expected {
        fn apply(&mut self, report: &Report) {
            let up: BTreeSet<String> = report
                .hosts
                .iter()
                .filter(|h| h.state == HostState::Up)
                .map(|h| h.address.to_string())
                .collect();
            for (address, (_, _, was_up)) in &mut self.hosts {
                if *was_up && !up.contains(address) {
                    *was_up = false;
                    self.changes[1] += 1;
                }
            }
            let mut open_now = BTreeMap::new();
            for host in report.hosts.iter().filter(|h| h.state == HostState::Up) {
                let address = host.address.to_string();
                let entry =
                    self.hosts
                        .entry(address.clone())
                        .or_insert((None, host.os.clone(), false));
                if !entry.2 {
                    entry.2 = true;
                    self.changes[0] += 1;
                    *self.host_intervals.entry(address.clone()).or_default() += 1;
                }
                if host.hostname.is_some() {
                    entry.0.clone_from(&host.hostname);
                }
                entry.1 = host.os.clone();
                for port in host.ports.iter().filter(|p| p.state == PortState::Open) {
                    let key = (address.clone(), port.port);
                    let banner = match self.open.get(&key) {
                        Some(banner) => port.banner.clone().or(banner.clone()),
                        None => {
                            self.changes[2] += 1;
                            *self.port_intervals.entry(key.clone()).or_default() += 1;
                            port.banner.clone()
                        }
                    };
                    open_now.insert(key, banner);
                }
            }
            self.changes[3] += self
                .open
                .keys()
                .filter(|k| !open_now.contains_key(*k))
                .count() as i64;
            self.open = open_now;
        }

        fn read(conn: &Connection) -> Self {
            let rows = |sql: &str| -> Vec<(String, Option<i64>, Option<String>, i64)> {
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            };
            let mut read = Self::default();
            let mut stmt = conn
                .prepare("SELECT address, hostname, os, up FROM hosts")
                .unwrap();
            let hosts = stmt
                .query_map([], |r| {
                    let os: String = r.get(2)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        (r.get(1)?, serde_json::from_str(&os).unwrap(), r.get(3)?),
                    ))
                })
                .unwrap();
            read.hosts = hosts.collect::<Result<_, _>>().unwrap();
            for (address, port, banner, _) in rows(
                "SELECT h.address, p.port, p.banner, 0 FROM port_intervals p
                 JOIN hosts h USING (host_id) WHERE p.closed_ms IS NULL",
            ) {
                read.open.insert((address, port.unwrap() as u16), banner);
            }
            for (address, _, _, n) in rows(
                "SELECT h.address, NULL, NULL, count(*) FROM host_intervals i
                 JOIN hosts h USING (host_id) GROUP BY 1",
            ) {
                read.host_intervals.insert(address, n);
            }
            for (address, port, _, n) in rows(
                "SELECT h.address, p.port, NULL, count(*) FROM port_intervals p
                 JOIN hosts h USING (host_id) GROUP BY 1, 2",
            ) {
                read.port_intervals
                    .insert((address, port.unwrap() as u16), n);
            }
            for (kind, _, _, n) in rows("SELECT kind, NULL, NULL, count(*) FROM changes GROUP BY 1")
            {
                let i = ["host_up", "host_down", "port_opened", "port_closed"]
                    .iter()
                    .position(|k| *k == kind)
                    .unwrap();
                read.changes[i] = n;
            }
            read
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of reports leaves in the tables what the reports alone say: hosts
        /// up or down with their latest name and OS guess, the open ports with their latest
        /// banner, one interval per time up or open, one change per transition. Reports go
        /// through the memo or, when it is forgotten first, through the tables (debug builds
        /// also compare the two after every report).
        #[test]
        fn history_follows_any_sequence_of_reports(specs in proptest::collection::vec(report_spec(), 1..10)) {
            let mut conn = Connection::open_in_memory().unwrap();
            super::super::migrations().to_latest(&mut conn).unwrap();
            conn.execute(
                "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms)
                 VALUES (?1, 's', '1', 0)",
                [PROBE],
            )
            .unwrap();
            let mut memo = Memo::default();
            let mut expected = Expected::default();
            let mut previous = None;
            for (i, (hosts, forget)) in specs.iter().enumerate() {
                if *forget {
                    memo.forget();
                }
                let at = 1000 * (i as i64 + 1);
                let report = report(hosts, i as u64 + 1);
                apply(&conn, &mut memo, &report, at, previous).unwrap();
                previous = Some(at);
                expected.apply(&report);
                prop_assert_eq!(&Expected::read(&conn), &expected, "after report {}", i + 1);
            }
        }
    }
}
