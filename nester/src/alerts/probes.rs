//! Rules on each probe's standing: offline (no report for N of its intervals), a certificate
//! the harvester failed to renew, reports lost for good (sequence gaps), and reports the
//! harvester could not keep (its spool full), which its reports count.

use crate::clock::human;
use crate::config::AlertConfig;
use crate::db::alerts::{Raise, Severity};
use crate::db::{Db, DbError, ProbeStanding, ProbeStatus};
use crate::pki::PROBE_VALIDITY;

use super::Verdicts;

pub const OFFLINE: &str = "probe.offline";
pub const UNSENT: &str = "reports.unsent";
pub const CERTIFICATE: &str = "probe.certificate_expiring";
pub const LOST: &str = "reports.lost";

fn raise(p: &ProbeStanding, rule: &'static str, severity: Severity, summary: String) -> Raise {
    Raise {
        rule,
        subject: format!("probe:{}", p.probe_id),
        site: Some(p.site.clone()),
        probe_id: Some(p.probe_id.clone()),
        severity,
        summary,
        details: serde_json::Value::Null,
        count: 1,
    }
}

/// Offline and certificate: conditions of each probe now.
pub fn judge(config: &AlertConfig, probes: &[ProbeStanding], now: i64, v: &mut Verdicts) {
    let default_interval = ProbeStatus::DEFAULT_INTERVAL.whole_milliseconds() as i64;
    for p in probes {
        let rules = config.rules(&p.site);
        let interval = p.interval_ms.filter(|i| *i > 0).unwrap_or(default_interval);
        let silent = now - p.last_ms;
        let limit = interval.saturating_mul(i64::from(rules.offline_intervals));
        if rules.offline_intervals > 0 && silent > limit {
            v.raise.push(raise(
                p,
                OFFLINE,
                Severity::Critical,
                format!(
                    "probe at {} silent for {} ({} of its {} intervals)",
                    p.site,
                    human(silent),
                    silent / interval,
                    human(interval)
                ),
            ));
        }
        let lifetime = PROBE_VALIDITY.whole_milliseconds() as i64;
        if rules.certificates
            && let Some(expires) = p.cert_expires_ms
            && expires - now < lifetime / 4
        {
            let severity = if expires <= now {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let when = if expires <= now {
                format!("expired {} ago", human(now - expires))
            } else {
                format!("expires in {}", human(expires - now))
            };
            v.raise.push(raise(
                p,
                CERTIFICATE,
                severity,
                format!(
                    "probe at {}: its certificate {when} and the harvester has not renewed it",
                    p.site
                ),
            ));
        }
    }
}

/// Reports lost for good (sequence gaps) and reports the harvester could not keep: each
/// raised when its running total grows past what was last alerted on (kept across restarts),
/// so one loss is one alert, counted as it grows.
pub async fn lost(
    db: &Db,
    config: &AlertConfig,
    probes: &[ProbeStanding],
    v: &mut Verdicts,
) -> Result<(), DbError> {
    for p in probes {
        let rules = config.rules(&p.site);
        let totals = [
            (LOST, p.missing, rules.lost_reports, "never arrived"),
            (
                UNSENT,
                p.unsent_reports,
                rules.unsent_reports,
                "could not be kept by the harvester (spool full)",
            ),
        ];
        for (rule, total, enabled, what) in totals {
            let cursor = format!("{rule}:{}", p.probe_id);
            let known = db.alert_cursor(cursor.clone()).await?.unwrap_or(0);
            if total == known {
                continue;
            }
            db.set_alert_cursor(cursor, total).await?;
            if total > known && enabled {
                let mut r = raise(
                    p,
                    rule,
                    Severity::Warning,
                    format!(
                        "probe at {}: {} reports {what} ({total} in all)",
                        p.site,
                        total - known
                    ),
                );
                r.details = serde_json::json!({"total": total, "new": total - known});
                v.raise.push(r);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(last_ms: i64) -> ProbeStanding {
        ProbeStanding {
            probe_id: "p".into(),
            site: "kc".into(),
            last_ms,
            interval_ms: Some(60_000),
            cert_expires_ms: None,
            unsent_reports: 0,
            missing: 0,
        }
    }

    #[test]
    fn offline_after_the_sites_number_of_intervals() {
        let mut config = AlertConfig::default();
        let now = 10_000_000;
        let mut v = Verdicts::default();
        judge(&config, &[probe(now - 180_000)], now, &mut v);
        assert!(v.raise.is_empty(), "three intervals is not yet past three");
        judge(&config, &[probe(now - 180_001)], now, &mut v);
        assert_eq!(v.raise.len(), 1);
        assert_eq!(v.raise[0].rule, OFFLINE);
        assert_eq!(v.raise[0].site.as_deref(), Some("kc"));
        config.sites.insert(
            "kc".into(),
            crate::config::SiteRules {
                offline_intervals: Some(0),
                ..Default::default()
            },
        );
        let mut v = Verdicts::default();
        judge(&config, &[probe(0)], now, &mut v);
        assert!(v.raise.is_empty(), "turned off for the site");
    }

    #[test]
    fn an_unrenewed_certificate_is_a_condition() {
        let config = AlertConfig::default();
        let now = 1_000_000_000;
        let mut p = probe(now);
        p.cert_expires_ms = Some(now + 7 * 86_400_000);
        let mut v = Verdicts::default();
        judge(&config, &[p.clone()], now, &mut v);
        let rules: Vec<_> = v.raise.iter().map(|r| (r.rule, r.severity)).collect();
        assert_eq!(rules, [(CERTIFICATE, Severity::Warning)]);
        p.cert_expires_ms = Some(now - 1);
        let mut v = Verdicts::default();
        judge(&config, &[p.clone()], now, &mut v);
        assert_eq!(v.raise[0].severity, Severity::Critical, "expired");
        p.cert_expires_ms = Some(now + 8 * 86_400_000);
        let mut v = Verdicts::default();
        judge(&config, &[p], now, &mut v);
        assert!(v.raise.is_empty());
    }
}
