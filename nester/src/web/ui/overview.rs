//! The overview (`/`): sites, every probe with its status and WAN latency, recent changes.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::rows::{ChangeRow, ProbeRow, recent_changes, row};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::api::sites::{SiteSummary, sites};
use crate::web::view::{Nav, ok};

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
