//! What each probe has seen over time: hosts and their open ports as intervals, and the
//! change feed. Updated at ingest (`apply.rs`) by comparing a report with the open intervals
//! (kept in the writer's [`Memo`]), so a query (`read.rs`) never rescans old reports and a
//! steady network costs no read and no write of the history tables per report.

mod apply;
mod read;

use serde::Serialize;
use shared::report::OsGuess;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) use apply::{Memo, apply};

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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use shared::report::{Host, OsFamily, Port, ScanParameters};

    use rusqlite::Connection;
    use shared::report::{HostState, PortState, Protocol, Report};

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
