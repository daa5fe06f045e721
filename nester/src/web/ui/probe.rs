//! A probe's page: WAN latency over a chosen range, hosts, the port timeline, its latest
//! reports and changes.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use time::Duration;
use uuid::Uuid;

use super::chart::{self, Span};
use super::rows::{
    ChangeRow, HostRow, LastReport, ProbeRow, WanCell, host_row, last_report, recent_changes, row,
    timeline_rows, wan_cell,
};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::db::ReportQuery;
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::ops::probes;
use crate::ops::query::bad_query;
use crate::state::AppState;
use crate::web::view::{Nav, ok};

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

pub async fn page(
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
    let (detail, hosts) = probes::detail(&state.db, probe_id).await?;
    let series = probes::series(&state.db, probe_id, span.from, span.to, None).await?;
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
