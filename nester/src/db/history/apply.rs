//! Applying a report to its probe's history, inside the report's own transaction: what
//! appeared opens an interval, what is gone closes one, and each start and end is a row of
//! `changes`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use rusqlite::{Connection, params};
use shared::report::{HostState, OsGuess, PortState, Protocol, Report};

use super::ChangeKind;
use crate::db::DbError;

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
pub(crate) struct Memo {
    probes: HashMap<String, HashMap<IpAddr, Known>>,
    /// The `history_version` the memo matches.
    version: Option<i64>,
}

impl Memo {
    pub(crate) fn forget(&mut self) {
        self.probes.clear();
        self.version = None;
    }

    /// Forgets everything if the history tables changed behind the memo, or if that cannot
    /// be told: before each group commit's first job (inside its transaction), and after
    /// each exclusive write.
    pub(crate) fn check(&mut self, conn: &Connection) {
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
pub(crate) fn apply(
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
