//! What the dashboard pages share: a probe, a host, a report and a change as rows, the
//! recent changes, and ages as people read them ("5 min ago").

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::chart;
use crate::clock::rfc3339;
use crate::db::{
    Change, ChangeFilter, ChangeKind, HostSummary, Interval, ProbeSummary, ReportSummary, WanPoint,
};
use crate::error::ApiError;
use crate::state::AppState;

/// A probe as the pages show it.
pub(super) struct ProbeRow {
    pub(super) site: String,
    pub(super) probe_id: String,
    pub(super) short_id: String,
    pub(super) status: &'static str,
    pub(super) version: String,
    pub(super) interval: String,
    pub(super) missing: u64,
    pub(super) unsent: u64,
    pub(super) revoked: bool,
    pub(super) certificate: String,
    pub(super) certificate_warn: bool,
    pub(super) last_report: Option<LastReport>,
    pub(super) wan: Vec<WanCell>,
}

pub(super) struct LastReport {
    pub(super) report_id: String,
    pub(super) sequence: u64,
    pub(super) at: String,
    pub(super) age: String,
    pub(super) hosts_up: u32,
    pub(super) open_ports: u32,
}

pub(super) struct WanCell {
    pub(super) target: String,
    pub(super) median: String,
    pub(super) loss: String,
    pub(super) lossy: bool,
}

pub(super) struct ChangeRow {
    pub(super) at: String,
    pub(super) age: String,
    pub(super) kind: &'static str,
    pub(super) what: String,
    pub(super) site: String,
    pub(super) host_id: i64,
    pub(super) host: String,
}

pub(super) async fn recent_changes(
    state: &AppState,
    probe_id: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Vec<ChangeRow>, ApiError> {
    let page = state
        .db
        .changes(ChangeFilter {
            probe_id,
            newest_first: true,
            limit: 20,
            ..ChangeFilter::default()
        })
        .await?;
    Ok(page.items.into_iter().map(|c| change_row(c, now)).collect())
}

fn change_row(c: Change, now: OffsetDateTime) -> ChangeRow {
    let port = match (&c.protocol, c.port) {
        (Some(proto), Some(port)) => format!(" {port}/{proto}"),
        _ => String::new(),
    };
    let (kind, what) = match c.kind {
        ChangeKind::HostUp => ("up", "host up".to_string()),
        ChangeKind::HostDown => ("down", "host down".to_string()),
        ChangeKind::PortOpened => ("up", format!("port{port} opened")),
        ChangeKind::PortClosed => ("down", format!("port{port} closed")),
    };
    ChangeRow {
        at: rfc3339(c.at),
        age: age(now - c.at),
        kind,
        what,
        site: c.site,
        host_id: c.host_id,
        host: c.hostname.unwrap_or_else(|| c.address.clone()),
    }
}

pub(super) fn row(p: ProbeSummary, now: OffsetDateTime) -> ProbeRow {
    let (certificate, certificate_warn) = match p.certificate_expires_at {
        Some(at) if at <= now => ("expired".to_string(), true),
        Some(at) => (
            format!("in {}", age(at - now).trim_end_matches(" ago")),
            at - now < Duration::days(7),
        ),
        None => ("—".to_string(), false),
    };
    ProbeRow {
        site: p.site,
        short_id: p.probe_id.to_string()[..8].to_string(),
        probe_id: p.probe_id.to_string(),
        status: p.status.as_str(),
        version: p.harvester_version,
        interval: p.interval_s.map_or("—".into(), |s| {
            age(Duration::seconds(s as i64)).replace(" ago", "")
        }),
        missing: p.missing_reports,
        unsent: p.unsent_reports,
        revoked: p.revoked,
        certificate,
        certificate_warn,
        last_report: p.last_report.map(|r| last_report(&r, now)),
        wan: p.wan.iter().map(wan_cell).collect(),
    }
}

pub(super) fn last_report(r: &ReportSummary, now: OffsetDateTime) -> LastReport {
    LastReport {
        report_id: r.report_id.to_string(),
        sequence: r.sequence,
        at: rfc3339(r.generated_at),
        age: age(now - r.generated_at),
        hosts_up: r.hosts_up,
        open_ports: r.open_ports,
    }
}

pub(super) fn wan_cell(p: &WanPoint) -> WanCell {
    WanCell {
        target: p.target.clone(),
        median: p
            .median_ms
            .map_or("—".to_string(), |m| format!("{m:.1} ms")),
        loss: format!("{:.0} %", p.loss_pct),
        lossy: p.loss_pct > 0.0,
    }
}

pub(super) struct HostRow {
    pub(super) host_id: i64,
    pub(super) address: String,
    pub(super) hostname: String,
    pub(super) up: bool,
    pub(super) os: String,
    pub(super) os_evidence: String,
    pub(super) ports: Vec<PortCell>,
}

pub(super) struct PortCell {
    pub(super) port: String,
    pub(super) banner: String,
}

pub(super) fn timeline_rows(
    rows: &mut Vec<chart::Row>,
    host: &HostSummary,
    up: Vec<Interval>,
    ports: Vec<crate::db::PortTimeline>,
) {
    let name = host.hostname.as_deref().unwrap_or(&host.address);
    rows.push(chart::Row {
        label: format!("{name} up"),
        class: "up",
        intervals: up,
    });
    for port in ports {
        rows.push(chart::Row {
            label: format!("{name} {}/{}", port.port, port.protocol),
            class: "open",
            intervals: port.intervals,
        });
    }
}

pub(super) fn host_row(h: HostSummary) -> HostRow {
    HostRow {
        host_id: h.host_id,
        address: h.address,
        hostname: h.hostname.unwrap_or_default(),
        up: h.up,
        os: if h.os.evidence.is_empty() {
            "unknown".into()
        } else {
            format!("{} ({} %)", serde_label(&h.os.family), h.os.confidence)
        },
        os_evidence: h.os.evidence.join("; "),
        ports: h
            .open_ports
            .into_iter()
            .map(|p| PortCell {
                port: format!("{}/{}", p.port, p.protocol),
                banner: p.banner.unwrap_or_default(),
            })
            .collect(),
    }
}

/// The name serde gives a value (`linux`, `windows`).
pub(super) fn serde_label(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// "42 s ago", "5 min ago", "3 h ago", "2 d ago".
pub(super) fn age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(time::Duration::seconds(42)), "42 s ago");
        assert_eq!(age(time::Duration::seconds(300)), "5 min ago");
        assert_eq!(age(time::Duration::hours(3)), "3 h ago");
        assert_eq!(age(time::Duration::days(2)), "2 d ago");
        assert_eq!(age(time::Duration::seconds(-5)), "0 s ago");
    }
}
