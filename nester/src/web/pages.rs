//! Server-rendered dashboard pages (templates in `dashboard/templates/`): the overview, a
//! probe, a host, a report, and host search. Pages read the same queries as the API.
//! Parts marked `data-live` are refreshed in place by `static/refresh.js`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::chart::{self, Span};
use super::params::{Paging, bad_query};
use super::sites::{SiteSummary, sites};
use super::view::{Nav, ok};
use crate::auth::Caller;
use crate::db::{
    Change, ChangeFilter, ChangeKind, HostSummary, Interval, ProbeSummary, ReportQuery,
    ReportSummary, WanPoint,
};
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::state::AppState;

/// A probe as the pages show it.
struct ProbeRow {
    site: String,
    probe_id: String,
    short_id: String,
    status: &'static str,
    version: String,
    interval: String,
    missing: u64,
    unsent: u64,
    revoked: bool,
    certificate: String,
    certificate_warn: bool,
    last_report: Option<LastReport>,
    wan: Vec<WanCell>,
}

struct LastReport {
    report_id: String,
    sequence: u64,
    at: String,
    age: String,
    hosts_up: u32,
    open_ports: u32,
}

struct WanCell {
    target: String,
    median: String,
    loss: String,
    lossy: bool,
}

struct ChangeRow {
    at: String,
    age: String,
    kind: &'static str,
    what: String,
    site: String,
    host_id: i64,
    host: String,
}

#[derive(Template)]
#[template(path = "index.html")]
struct Index {
    nav: Option<Nav>,
    sites: Vec<SiteSummary>,
    probes: Vec<ProbeRow>,
    changes: Vec<ChangeRow>,
    generated_at: String,
}

pub async fn index(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let probes = state.db.probes(None, now).await?;
    let changes = recent_changes(&state, None, now).await?;
    ok(&Index {
        nav: Nav::of(&caller),
        sites: sites(&probes),
        probes: probes.into_iter().map(|p| row(p, now)).collect(),
        changes,
        generated_at: rfc3339(now),
    })
}

async fn recent_changes(
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

fn row(p: ProbeSummary, now: OffsetDateTime) -> ProbeRow {
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

fn last_report(r: &ReportSummary, now: OffsetDateTime) -> LastReport {
    LastReport {
        report_id: r.report_id.to_string(),
        sequence: r.sequence,
        at: rfc3339(r.generated_at),
        age: age(now - r.generated_at),
        hosts_up: r.hosts_up,
        open_ports: r.open_ports,
    }
}

fn wan_cell(p: &WanPoint) -> WanCell {
    WanCell {
        target: p.target.clone(),
        median: p
            .median_ms
            .map_or("—".to_string(), |m| format!("{m:.1} ms")),
        loss: format!("{:.0} %", p.loss_pct),
        lossy: p.loss_pct > 0.0,
    }
}

/// The ranges a probe page offers.
const RANGES: &[(&str, i64)] = &[
    ("6h", 6),
    ("24h", 24),
    ("7d", 24 * 7),
    ("30d", 24 * 30),
    ("1y", 24 * 365),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    range: Option<String>,
}

struct Chart {
    target: String,
    svg: String,
}

struct HostRow {
    host_id: i64,
    address: String,
    hostname: String,
    up: bool,
    os: String,
    os_evidence: String,
    ports: Vec<PortCell>,
}

struct PortCell {
    port: String,
    banner: String,
}

#[derive(Template)]
#[template(path = "probe.html")]
struct ProbePage {
    nav: Option<Nav>,
    probe: ProbeRow,
    hosts_up: u32,
    open_ports: u32,
    gaps: String,
    range: &'static str,
    ranges: Vec<&'static str>,
    resolution: String,
    charts: Vec<Chart>,
    summary: Vec<WanCell>,
    hosts: Vec<HostRow>,
    timeline: String,
    timeline_rows: usize,
    reports: Vec<LastReport>,
    changes: Vec<ChangeRow>,
    generated_at: String,
}

pub async fn probe(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(probe_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let (range, hours) = match query.range.as_deref() {
        None => RANGES[1],
        Some(r) => *RANGES.iter().find(|(name, _)| *name == r).ok_or_else(|| {
            bad_query(format!(
                "range must be one of 6h, 24h, 7d, 30d, 1y, not `{r}`"
            ))
        })?,
    };
    let span = Span {
        from: now - Duration::hours(hours),
        to: now,
    };
    let (detail, hosts) = super::probes::detail(&state, probe_id).await?;
    let series = super::probes::series(&state, probe_id, span.from, span.to, None).await?;
    let charts = series
        .points
        .chunk_by(|a, b| a.target == b.target)
        .map(|points| Chart {
            target: points[0].target.clone(),
            svg: chart::latency(&points[0].target, points, span),
        })
        .collect();
    let mut rows = Vec::new();
    for host in &hosts {
        if let Some(history) = state.db.host(host.host_id).await? {
            timeline_rows(&mut rows, &history.host, history.up, history.ports);
        }
    }
    let reports = state
        .db
        .probe_reports(
            probe_id,
            ReportQuery {
                limit: 10,
                ..ReportQuery::default()
            },
        )
        .await?
        .map(|page| page.items)
        .unwrap_or_default()
        .into_iter()
        .map(|r| last_report(&r, now))
        .collect();
    let gaps = detail
        .gaps
        .iter()
        .map(|g| {
            if g.first == g.last {
                g.first.to_string()
            } else {
                format!("{}–{}", g.first, g.last)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    ok(&ProbePage {
        nav: Nav::of(&caller),
        summary: detail.wan_24h.iter().map(wan_cell).collect(),
        hosts_up: detail.hosts_up,
        open_ports: detail.open_ports,
        probe: row(detail.probe, now),
        gaps,
        range,
        ranges: RANGES.iter().map(|(name, _)| *name).collect(),
        resolution: format!("{:?}", series.resolution).to_lowercase(),
        charts,
        hosts: hosts.into_iter().map(host_row).collect(),
        timeline_rows: rows.len(),
        timeline: chart::timeline(&rows, span),
        reports,
        changes: recent_changes(&state, Some(probe_id), now).await?,
        generated_at: rfc3339(now),
    })
}

fn timeline_rows(
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

fn host_row(h: HostSummary) -> HostRow {
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
fn serde_label(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

struct PortHistoryRow {
    port: String,
    open: bool,
    banner: String,
    first_seen_open: String,
    last_seen_open: String,
    /// "closed 2026-… · reopened 2026-…", in order.
    events: Vec<String>,
}

#[derive(Template)]
#[template(path = "host.html")]
struct HostPage {
    nav: Option<Nav>,
    host: HostRow,
    site: String,
    probe_id: String,
    first_seen: String,
    last_seen: String,
    ports: Vec<PortHistoryRow>,
    timeline: String,
}

pub async fn host(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(host_id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let detail = state
        .db
        .host(host_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no host {host_id}")))?;
    let from = detail.host.first_seen_at.min(now - Duration::hours(1));
    let span = Span { from, to: now };
    let ports = detail
        .ports
        .iter()
        .map(|p| {
            let mut events = Vec::new();
            for (i, interval) in p.intervals.iter().enumerate() {
                if i > 0 {
                    events.push(format!("reopened {}", rfc3339(interval.from)));
                }
                if let Some(until) = interval.until {
                    events.push(format!("closed {}", rfc3339(until)));
                }
            }
            PortHistoryRow {
                port: format!("{}/{}", p.port, p.protocol),
                open: p.open,
                banner: p.banner.clone().unwrap_or_default(),
                first_seen_open: rfc3339(p.first_seen_open),
                last_seen_open: rfc3339(p.last_seen_open),
                events,
            }
        })
        .collect();
    let mut rows = Vec::new();
    timeline_rows(&mut rows, &detail.host, detail.up, detail.ports);
    ok(&HostPage {
        nav: Nav::of(&caller),
        site: detail.host.site.clone(),
        probe_id: detail.host.probe_id.to_string(),
        first_seen: rfc3339(detail.host.first_seen_at),
        last_seen: rfc3339(detail.host.last_seen_at),
        host: host_row(detail.host),
        ports,
        timeline: chart::timeline(&rows, span),
    })
}

struct ReportHost {
    address: String,
    hostname: String,
    state: String,
    os: String,
    ports: Vec<ReportPort>,
}

struct ReportPort {
    port: String,
    state: String,
    banner: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    nav: Option<Nav>,
    report_id: String,
    probe_id: String,
    site: String,
    sequence: u64,
    generated_at: String,
    received_at: String,
    signature_ok: bool,
    signature: String,
    scan: String,
    hosts: Vec<ReportHost>,
    wan: Vec<WanCell>,
}

pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(report_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("no report {report_id}"));
    let summary = state
        .db
        .report_summary(report_id)
        .await?
        .ok_or_else(missing)?;
    let jws = state.db.report_jws(report_id).await?.ok_or_else(missing)?;
    // Checked again now, against this nester's CA, as of the time the report was made.
    let at = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        summary.generated_at.unix_timestamp().max(0) as u64,
    ));
    let (signature_ok, signature, report) = match state.verifier.verify(&jws, at) {
        Ok(v) => (
            true,
            format!(
                "valid: signed by probe {} (certificate SHA-256 {}), which chains to this nester's CA",
                v.probe_id, v.kid
            ),
            v.report,
        ),
        Err(e) => {
            let payload = shared::jws::payload_unverified(&jws).map_err(ApiError::internal)?;
            let report = shared::Report::from_json(&payload).map_err(ApiError::internal)?;
            (false, format!("does not verify: {e}"), report)
        }
    };
    let scan = format!(
        "targets {} · ports {} · {} hosts up · {:.1} s",
        report.scan.targets.join(", "),
        report.scan.ports,
        report.hosts_up,
        (report.scan.finished_at - report.scan.started_at).as_seconds_f64()
    );
    let hosts = report
        .hosts
        .iter()
        .map(|h| ReportHost {
            address: h.address.to_string(),
            hostname: h.hostname.clone().unwrap_or_default(),
            state: serde_label(&h.state),
            os: if h.os.evidence.is_empty() {
                "unknown".into()
            } else {
                format!(
                    "{} ({} %): {}",
                    serde_label(&h.os.family),
                    h.os.confidence,
                    h.os.evidence.join("; ")
                )
            },
            ports: h
                .ports
                .iter()
                .map(|p| ReportPort {
                    port: format!("{}/{}", p.port, p.protocol.as_str()),
                    state: serde_label(&p.state),
                    banner: p.banner.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let wan = report
        .wan
        .iter()
        .map(|m| WanCell {
            target: format!("{} ({})", m.target, serde_label(&m.method)),
            median: m.median_ms.map_or("—".into(), |v| format!("{v:.1} ms")),
            loss: format!("{:.0} %", m.loss_pct),
            lossy: m.loss_pct > 0.0,
        })
        .collect();
    ok(&ReportPage {
        nav: Nav::of(&caller),
        report_id: report_id.to_string(),
        probe_id: summary.probe_id.to_string(),
        site: summary.site,
        sequence: summary.sequence,
        generated_at: rfc3339(summary.generated_at),
        received_at: rfc3339(summary.received_at),
        signature_ok,
        signature,
        scan,
        hosts,
        wan,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    q: String,
    error: String,
    hosts: Vec<(HostRow, String, String)>,
    next: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    let q = query.q.unwrap_or_default();
    let mut page = SearchPage {
        nav: Nav::of(&caller),
        q: q.clone(),
        error: String::new(),
        hosts: Vec::new(),
        next: None,
    };
    if !q.trim().is_empty() {
        let paging = Paging {
            limit: Some(100),
            cursor: query.cursor,
        };
        match super::hosts::find(&state, &q, paging).await {
            Ok(found) => {
                page.next = found.next_cursor;
                page.hosts = found
                    .items
                    .into_iter()
                    .map(|h| (h.site.clone(), h.probe_id.to_string(), h))
                    .map(|(site, probe, h)| (host_row(h), site, probe))
                    .collect();
            }
            Err(e) if e.status.is_client_error() => page.error = e.message,
            Err(e) => return Err(e),
        }
    }
    ok(&page)
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// "42 s ago", "5 min ago", "3 h ago", "2 d ago".
fn age(d: time::Duration) -> String {
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
