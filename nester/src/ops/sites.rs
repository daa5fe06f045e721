//! Sites: what the overview and `/api/v1/sites` show of each, made from its probes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db::{ProbeStatus, ProbeSummary};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SiteSummary {
    pub name: String,
    pub probes: u32,
    pub online: u32,
    pub stale: u32,
    pub offline: u32,
    /// Hosts up in the probes' latest reports.
    pub hosts_up: u32,
    /// Open ports in the probes' latest reports.
    pub open_ports: u32,
}

/// Groups probes (ordered by site) into sites.
pub fn sites(probes: &[ProbeSummary]) -> Vec<SiteSummary> {
    let mut by_name: BTreeMap<&str, SiteSummary> = BTreeMap::new();
    for p in probes {
        let site = by_name.entry(&p.site).or_insert_with(|| SiteSummary {
            name: p.site.clone(),
            probes: 0,
            online: 0,
            stale: 0,
            offline: 0,
            hosts_up: 0,
            open_ports: 0,
        });
        site.probes += 1;
        match p.status {
            ProbeStatus::Online => site.online += 1,
            ProbeStatus::Stale => site.stale += 1,
            ProbeStatus::Offline => site.offline += 1,
        }
        if let Some(r) = &p.last_report {
            site.hosts_up += r.hosts_up;
            site.open_ports += r.open_ports;
        }
    }
    by_name.into_values().collect()
}
