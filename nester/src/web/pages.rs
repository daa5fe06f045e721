//! Server-rendered dashboard pages (templates in `dashboard/templates/`).

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::view::Nav;
use crate::auth::Caller;
use crate::db::ProbeSummary;
use crate::error::ApiError;
use crate::state::AppState;

struct ProbeRow {
    site: String,
    probe_id: String,
    version: String,
    missing: u64,
    unsent: u64,
    revoked: bool,
    last_report: Option<LastReport>,
}

struct LastReport {
    report_id: String,
    sequence: u64,
    at: String,
    age: String,
    hosts_up: u32,
    open_ports: u32,
}

#[derive(Template)]
#[template(path = "index.html")]
struct Index {
    nav: Option<Nav>,
    probes: Vec<ProbeRow>,
    generated_at: String,
}

pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Html<String>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let probes = state
        .db
        .probes()
        .await?
        .into_iter()
        .map(|p| row(p, now))
        .collect();
    let page = Index {
        nav: Nav::of(&caller),
        probes,
        generated_at: rfc3339(now),
    };
    Ok(Html(page.render().map_err(ApiError::internal)?))
}

fn row(p: ProbeSummary, now: OffsetDateTime) -> ProbeRow {
    ProbeRow {
        site: p.site,
        probe_id: p.probe_id.to_string(),
        version: p.harvester_version,
        missing: p.missing_reports,
        unsent: p.unsent_reports,
        revoked: p.revoked,
        last_report: p.last_report.map(|r| LastReport {
            report_id: r.report_id.to_string(),
            sequence: r.sequence,
            at: rfc3339(r.generated_at),
            age: age(now - r.generated_at),
            hosts_up: r.hosts_up,
            open_ports: r.open_ports,
        }),
    }
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
