//! `[alerts]` in `nester.toml`: which conditions raise an alert and their thresholds, with
//! overrides per site (`[alerts.sites."kc-01"]`, the same keys).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::error::within;
use super::{ConfigError, duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// How often the conditions are evaluated.
    #[serde(deserialize_with = "duration")]
    pub every: Duration,
    /// An alert for an event (a new host, a new port, lost reports, an attack) that nothing
    /// raised again for this long is resolved.
    #[serde(deserialize_with = "duration")]
    pub events_resolve_after: Duration,
    #[serde(flatten)]
    pub rules: Rules,
    /// Per-site overrides of the rules.
    pub sites: BTreeMap<String, SiteRules>,
}

/// The rules and their thresholds; 0 or `false` turns one off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// A probe is offline after this many of its intervals without a report.
    pub offline_intervals: u32,
    /// A host seen for the first time at a site.
    pub new_hosts: bool,
    /// A port newly open on a known host.
    pub new_ports: bool,
    /// Hosts (addresses) whose closing ports raise an alert.
    pub important_hosts: Vec<String>,
    /// WAN latency (median, ms) or loss (%) over these thresholds...
    pub wan_latency_ms: f64,
    pub wan_loss_percent: f64,
    /// ...in this many consecutive reports fires; this many good ones in a row resolves.
    pub wan_bad_reports: u32,
    pub wan_good_reports: u32,
    /// Reports a harvester could not produce or had to drop (its spool full), as its reports
    /// count them.
    pub unsent_reports: bool,
    /// Sequence gaps: reports that never arrived.
    pub lost_reports: bool,
    /// Probe and nester certificates with under a quarter of their lifetime left.
    pub certificates: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            offline_intervals: 3,
            new_hosts: true,
            new_ports: true,
            important_hosts: Vec::new(),
            wan_latency_ms: 150.0,
            wan_loss_percent: 5.0,
            wan_bad_reports: 3,
            wan_good_reports: 3,
            unsent_reports: true,
            lost_reports: true,
            certificates: true,
        }
    }
}

/// The same keys as [`Rules`], each optional: what a site changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRules {
    pub offline_intervals: Option<u32>,
    pub new_hosts: Option<bool>,
    pub new_ports: Option<bool>,
    pub important_hosts: Option<Vec<String>>,
    pub wan_latency_ms: Option<f64>,
    pub wan_loss_percent: Option<f64>,
    pub wan_bad_reports: Option<u32>,
    pub wan_good_reports: Option<u32>,
    pub unsent_reports: Option<bool>,
    pub lost_reports: Option<bool>,
    pub certificates: Option<bool>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15),
            events_resolve_after: Duration::from_secs(24 * 3600),
            rules: Rules::default(),
            sites: BTreeMap::new(),
        }
    }
}

impl AlertConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let second = Duration::from_secs(1);
        within("alerts.every", self.every, second, Some(second * 3600))?;
        within(
            "alerts.events_resolve_after",
            self.events_resolve_after,
            second * 60,
            None,
        )
    }

    /// The rules at `site`: the defaults with its overrides.
    pub fn rules(&self, site: &str) -> Rules {
        let mut r = self.rules.clone();
        let Some(o) = self.sites.get(site) else {
            return r;
        };
        macro_rules! take {
            ($($field:ident),*) => {
                $(if let Some(v) = &o.$field { r.$field = v.clone(); })*
            };
        }
        take!(
            offline_intervals,
            new_hosts,
            new_ports,
            important_hosts,
            wan_latency_ms,
            wan_loss_percent,
            wan_bad_reports,
            wan_good_reports,
            unsent_reports,
            lost_reports,
            certificates
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_overrides_only_what_it_names() {
        let c: AlertConfig = toml::from_str(
            r#"
            offline_intervals = 4
            wan_latency_ms = 100.0
            [sites."kc-01"]
            offline_intervals = 8
            new_ports = false
            "#,
        )
        .unwrap();
        let kc = c.rules("kc-01");
        assert_eq!((kc.offline_intervals, kc.new_ports), (8, false));
        assert_eq!(kc.wan_latency_ms, 100.0);
        let other = c.rules("stl-02");
        assert_eq!((other.offline_intervals, other.new_ports), (4, true));
        assert!(toml::from_str::<AlertConfig>("offline_interval = 4").is_err());
        assert!(toml::from_str::<AlertConfig>("[sites.kc]\nbogus = 1").is_err());
    }
}
