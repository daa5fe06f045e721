//! The overview (`/`): sites, every probe with its status and WAN latency, recent changes.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::rows::{ChangeRow, ProbeRow, recent_changes, row};
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::ops::sites::{SiteSummary, sites};
use crate::state::AppState;
use crate::web::view::{Nav, ok};

#[derive(Template)]
#[template(path = "index.html")]
struct Index {
    nav: Option<Nav>,
    sites: Vec<SiteSummary>,
    probes: Vec<ProbeRow>,
    changes: Vec<ChangeRow>,
    generated_at: String,
    /// Open alerts (firing, acknowledged) by site and by probe.
    site_alerts: HashMap<String, (u32, u32)>,
    probe_alerts: HashMap<String, (u32, u32)>,
}

impl Index {
    fn site_alerts(&self, site: &str) -> (u32, u32) {
        self.site_alerts.get(site).copied().unwrap_or_default()
    }

    fn probe_alerts(&self, probe_id: &str) -> (u32, u32) {
        self.probe_alerts.get(probe_id).copied().unwrap_or_default()
    }
}

pub async fn index(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let probes = state.db.probes(None, now).await?;
    let changes = recent_changes(&state, None, now).await?;
    let (mut site_alerts, mut probe_alerts) = (HashMap::new(), HashMap::new());
    for (site, probe, firing, acked) in state.db.open_alert_counts().await? {
        for (map, key) in [(&mut site_alerts, site), (&mut probe_alerts, probe)] {
            if let Some(key) = key {
                let counts: &mut (u32, u32) = map.entry(key).or_default();
                counts.0 += firing;
                counts.1 += acked;
            }
        }
    }
    ok(&Index {
        site_alerts,
        probe_alerts,
        nav: Nav::of(&caller),
        sites: sites(&probes),
        probes: probes.into_iter().map(|p| row(p, now)).collect(),
        changes,
        generated_at: rfc3339(now),
    })
}
