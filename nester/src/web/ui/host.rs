//! A host's page: when it was up, and each port's timeline.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use time::Duration;

use super::chart::{self, Span};
use super::rows::{HostRow, host_row, timeline_rows};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiPath};
use crate::state::AppState;
use crate::web::view::{Nav, ok};

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

pub async fn page(
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
