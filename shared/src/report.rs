//! The report a harvester produces each scan cycle.
//!
//! Evolution rule: any change to these types bumps [`SCHEMA_VERSION`] and regenerates
//! `schema/report.schema.json` (`UPDATE_SCHEMA=1 cargo test -p seahawks-shared`). Unknown fields
//! are refused, so a report means exactly what its version says.

use std::net::IpAddr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Version of the report format this build reads and writes.
pub const SCHEMA_VERSION: u32 = 3;

/// Longest accepted free-text field (site label, version string).
pub const MAX_LABEL_LEN: usize = 128;
/// Longest accepted service banner, in bytes, after sanitising.
pub const MAX_BANNER_LEN: usize = 1024;
/// Most pieces of evidence behind one OS guess.
pub const MAX_EVIDENCE: usize = 16;
/// Longest DNS name (RFC 1035).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// One scan cycle of one probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Seahawks report", extend("$id" = "https://seahawks.invalid/schema/report-v3.json"))]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] for reports this build writes.
    pub schema_version: u32,
    /// Unique id of this report (UUID v7: time-ordered). Re-sending it is idempotent.
    pub report_id: Uuid,
    /// The probe that produced and signed the report; equals the id in its certificate.
    pub probe_id: Uuid,
    /// Site label the probe belongs to.
    pub site: String,
    /// Version of the harvester that produced the report.
    pub harvester_version: String,
    /// Per-probe counter, +1 per report: a missing number is a lost report.
    pub sequence: u64,
    /// Reports this probe could not produce or had to drop (spool full), in total since it
    /// was enrolled. A running total, so it survives a report that is itself lost.
    pub unsent_reports: u64,
    /// When the report was produced (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(schema_with = "rfc3339")]
    pub generated_at: OffsetDateTime,
    /// How often this probe reports, in seconds (its configured interval; 0 for a one-off
    /// scan). The nester calls a probe stale or offline by it.
    pub interval_s: u64,
    /// What was asked of the scan.
    pub scan: ScanParameters,
    /// Hosts found up (state `up`) in this scan.
    pub hosts_up: u32,
    /// Hosts found in scope, in address order.
    pub hosts: Vec<Host>,
    /// WAN latency measurements (may be empty).
    pub wan: Vec<WanMeasurement>,
}

/// The parameters a scan ran with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanParameters {
    /// Targets as configured: addresses, CIDR ranges or host names.
    pub targets: Vec<String>,
    /// Port specification as configured, for example `22,80,8000-8100`.
    pub ports: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(schema_with = "rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(schema_with = "rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Connect attempts in flight at once.
    pub concurrency: u32,
    /// Connect timeout bounds in milliseconds: the timeout adapts to measured round trips
    /// between these two.
    pub min_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Extra attempts for an unanswered port before it counts as `filtered`.
    pub retries: u32,
    /// Cap on connection attempts per second, all targets together; 0 for none.
    pub rate: u32,
    /// Whether hosts were discovered first (off: every address scanned, like nmap `-Pn`).
    pub discovery: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub address: IpAddr,
    /// Name from reverse DNS or from the target list, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub state: HostState,
    /// How the host was found up; absent when discovery was skipped or nothing answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Discovery>,
    /// What the evidence says about the operating system.
    pub os: OsGuess,
    /// Scanned ports, in port order.
    pub ports: Vec<Port>,
}

/// The evidence that a host is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    pub method: DiscoveryMethod,
    /// Round trip of the answer that proved it, in milliseconds; absent for `arp`, whose
    /// answer the kernel received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryMethod {
    /// An ICMP echo reply.
    Icmp,
    /// A TCP handshake or reset on one of the discovery ports.
    Tcp,
    /// No ICMP or TCP answer, but the host answered ARP: the kernel's neighbour table holds
    /// its link-layer address (a host on the local link that drops everything, as nmap
    /// reports it).
    Arp,
}

/// An operating-system guess from evidence actually observed; never invented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OsGuess {
    pub family: OsFamily,
    /// 0 (no evidence) to 100.
    pub confidence: u8,
    /// What the guess rests on, e.g. `ICMP reply TTL 64` or `SSH banner: OpenSSH ... Debian`.
    pub evidence: Vec<String>,
}

impl OsGuess {
    pub fn unknown() -> Self {
        Self {
            family: OsFamily::Unknown,
            confidence: 0,
            evidence: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OsFamily {
    /// No evidence.
    Unknown,
    Linux,
    Windows,
    /// FreeBSD, OpenBSD, NetBSD.
    Bsd,
    MacOs,
    /// Unix-like, not told apart further (an initial TTL of 64 alone).
    Unix,
    /// Routers, switches and similar (an initial TTL of 255, vendor banners).
    NetworkDevice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// The host answered (a completed handshake or a reset both prove it is there).
    Up,
    /// Nothing answered.
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub port: u16,
    pub protocol: Protocol,
    pub state: PortState,
    /// First bytes the service sent, sanitised and truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
}

impl Protocol {
    /// The name used on the wire (`tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
        }
    }

    /// The protocol named `name` on the wire, if this build knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Tcp].into_iter().find(|p| p.as_str() == name)
    }
}

/// Port states as nmap defines them for a connect scan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// The TCP handshake completed.
    Open,
    /// The host answered with a reset.
    Closed,
    /// No answer within the timeout, after retries (or an ICMP unreachable).
    Filtered,
}

/// One round of latency probes to one WAN target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WanMeasurement {
    pub target: String,
    pub method: WanMethod,
    pub sent: u32,
    pub received: u32,
    /// Round-trip times in milliseconds; absent when nothing came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// Standard deviation of the round-trip times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// Share of probes lost, 0 to 100.
    pub loss_pct: f64,
    /// Why the method is what it is, or why nothing came back (e.g. "ICMP unanswered").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WanMethod {
    Icmp,
    Tcp,
}

fn rfc3339(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("report is not valid JSON for schema version {SCHEMA_VERSION}: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "report schema version {0} is not supported (this build reads version {SCHEMA_VERSION})"
    )]
    UnsupportedVersion(u64),
    #[error("report is invalid: {0}")]
    Invalid(String),
}

impl Report {
    /// Parses and validates a report payload. A payload that does not parse is parsed again
    /// for its schema version alone, so a report from a newer harvester gets a version error
    /// rather than a confusing field error (the happy path parses once).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ReportError> {
        #[derive(Deserialize)]
        struct Versioned {
            schema_version: u64,
        }
        // UTF-8 checked once for the whole text: `from_slice` would check every string again.
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(bytes),
        };
        let report: Report = match parsed {
            Ok(report) => report,
            Err(e) => {
                return Err(match serde_json::from_slice::<Versioned>(bytes) {
                    Ok(v) if v.schema_version != u64::from(SCHEMA_VERSION) => {
                        ReportError::UnsupportedVersion(v.schema_version)
                    }
                    _ => ReportError::Json(e),
                });
            }
        };
        if report.schema_version != SCHEMA_VERSION {
            return Err(ReportError::UnsupportedVersion(
                report.schema_version.into(),
            ));
        }
        report.validate()?;
        Ok(report)
    }

    /// Checks what serde cannot express: lengths and orderings.
    pub fn validate(&self) -> Result<(), ReportError> {
        let invalid = |m: String| Err(ReportError::Invalid(m));
        if self.site.trim().is_empty() || self.site.len() > MAX_LABEL_LEN {
            return invalid(format!("site must be 1 to {MAX_LABEL_LEN} characters"));
        }
        if self.harvester_version.is_empty() || self.harvester_version.len() > MAX_LABEL_LEN {
            return invalid(format!(
                "harvester_version must be 1 to {MAX_LABEL_LEN} characters"
            ));
        }
        if self.scan.finished_at < self.scan.started_at {
            return invalid("scan.finished_at is before scan.started_at".into());
        }
        let up = self
            .hosts
            .iter()
            .filter(|h| h.state == HostState::Up)
            .count();
        if usize::try_from(self.hosts_up).ok() != Some(up) {
            return invalid(format!(
                "hosts_up is {} but {up} hosts are up",
                self.hosts_up
            ));
        }
        for host in &self.hosts {
            if host.os.confidence > 100
                || host.os.evidence.len() > MAX_EVIDENCE
                || host.os.evidence.iter().any(|e| e.len() > MAX_BANNER_LEN)
            {
                return invalid(format!("OS guess of {} is malformed", host.address));
            }
            if host
                .hostname
                .as_ref()
                .is_some_and(|h| h.len() > MAX_HOSTNAME_LEN)
            {
                return invalid(format!("hostname of {} is too long", host.address));
            }
            if !host.ports.windows(2).all(|w| w[0].port < w[1].port) {
                return invalid(format!(
                    "ports of {} are not unique and sorted",
                    host.address
                ));
            }
            if let Some(p) = host
                .ports
                .iter()
                .find(|p| p.banner.as_ref().is_some_and(|b| b.len() > MAX_BANNER_LEN))
            {
                return invalid(format!("banner of {}:{} is too long", host.address, p.port));
            }
        }
        if !self.hosts.windows(2).all(|w| w[0].address < w[1].address) {
            return invalid("hosts are not unique and sorted by address".into());
        }
        if let Some(w) = self
            .wan
            .iter()
            .find(|w| !(0.0..=100.0).contains(&w.loss_pct) || w.received > w.sent)
        {
            return invalid(format!("WAN measurement of {} is inconsistent", w.target));
        }
        Ok(())
    }

    /// Number of open ports across all hosts.
    pub fn open_ports(&self) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.ports)
            .filter(|p| p.state == PortState::Open)
            .count()
    }
}

/// The JSON Schema of [`Report`], as committed in `schema/report.schema.json`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema is always JSON")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn sample(probe_id: Uuid) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            report_id: Uuid::now_v7(),
            probe_id,
            site: "kansas-city".into(),
            harvester_version: "0.1.0".into(),
            sequence: 7,
            unsent_reports: 0,
            generated_at: datetime!(2026-11-21 12:00:00 UTC),
            interval_s: 300,
            scan: ScanParameters {
                targets: vec!["192.0.2.0/30".into()],
                ports: "22,80".into(),
                started_at: datetime!(2026-11-21 11:59:58 UTC),
                finished_at: datetime!(2026-11-21 12:00:00 UTC),
                concurrency: 256,
                min_timeout_ms: 100,
                max_timeout_ms: 1000,
                retries: 1,
                rate: 0,
                discovery: true,
            },
            hosts_up: 1,
            hosts: vec![Host {
                address: "192.0.2.1".parse().expect("literal address"),
                hostname: Some("gw.example".into()),
                state: HostState::Up,
                discovery: Some(Discovery {
                    method: DiscoveryMethod::Icmp,
                    rtt_ms: Some(0.4),
                }),
                os: OsGuess {
                    family: OsFamily::Linux,
                    confidence: 80,
                    evidence: vec!["ICMP reply TTL 64".into()],
                },
                ports: vec![
                    Port {
                        port: 22,
                        protocol: Protocol::Tcp,
                        state: PortState::Open,
                        banner: Some("SSH-2.0-OpenSSH_9.2".into()),
                    },
                    Port {
                        port: 80,
                        protocol: Protocol::Tcp,
                        state: PortState::Closed,
                        banner: None,
                    },
                ],
            }],
            wan: vec![WanMeasurement {
                target: "192.0.2.254".into(),
                method: WanMethod::Tcp,
                sent: 10,
                received: 9,
                min_ms: Some(1.0),
                median_ms: Some(2.0),
                avg_ms: Some(2.5),
                max_ms: Some(9.0),
                jitter_ms: Some(0.7),
                loss_pct: 10.0,
                note: None,
            }],
        }
    }

    #[test]
    fn json_round_trip() {
        let report = sample(Uuid::now_v7());
        let bytes = serde_json::to_vec(&report).unwrap();
        assert_eq!(Report::from_json(&bytes).unwrap(), report);
    }

    #[test]
    fn text_that_is_not_utf8_is_a_json_error() {
        let mut bytes = serde_json::to_vec(&sample(Uuid::now_v7())).unwrap();
        let at = bytes.windows(4).position(|w| w == b"site").unwrap();
        bytes[at] = 0xff;
        let err = Report::from_json(&bytes).unwrap_err();
        assert!(matches!(err, ReportError::Json(_)), "{err}");
    }

    #[test]
    fn newer_schema_version_is_named() {
        let mut value = serde_json::to_value(sample(Uuid::now_v7())).unwrap();
        value["schema_version"] = (SCHEMA_VERSION + 1).into();
        let err = Report::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(
            matches!(err, ReportError::UnsupportedVersion(v) if v == u64::from(SCHEMA_VERSION) + 1),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut value = serde_json::to_value(sample(Uuid::now_v7())).unwrap();
        value["hosts"][0]["ports"][0]["admin"] = true.into();
        let err = Report::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(matches!(err, ReportError::Json(_)), "{err}");
        assert!(err.to_string().contains("admin"), "{err}");
    }

    #[test]
    fn invariants_are_checked() {
        let mut r = sample(Uuid::now_v7());
        r.hosts[0].ports.swap(0, 1);
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("sorted")));
        let mut r = sample(Uuid::now_v7());
        r.site = " ".into();
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("site")));
        let mut r = sample(Uuid::now_v7());
        r.hosts[0].ports[0].banner = Some("x".repeat(MAX_BANNER_LEN + 1));
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("banner")));
        let mut r = sample(Uuid::now_v7());
        r.wan[0].received = 11;
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("WAN")));
        let mut r = sample(Uuid::now_v7());
        r.hosts_up = 2;
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("hosts_up")));
        let mut r = sample(Uuid::now_v7());
        r.hosts[0].os.confidence = 101;
        assert!(matches!(r.validate(), Err(ReportError::Invalid(m)) if m.contains("OS guess")));
    }

    /// The committed schema is what the types generate. To update after a deliberate change:
    /// `UPDATE_SCHEMA=1 cargo test -p seahawks-shared committed_schema`.
    #[test]
    fn committed_schema_matches_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            // CI checks the committed file; it never rewrites it.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "UPDATE_SCHEMA is refused in CI"
            );
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is out of date with the Report types; run UPDATE_SCHEMA=1 cargo test -p seahawks-shared"
        );
    }
}
