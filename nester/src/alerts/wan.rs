//! WAN latency and loss, with hysteresis: `wan_bad_reports` bad reports in a row (median
//! over `wan_latency_ms` or loss over `wan_loss_percent`) fire; `wan_good_reports` good
//! ones in a row resolve; anything between changes nothing.

use crate::config::AlertConfig;
use crate::db::alerts::{Raise, Severity};
use crate::db::{Db, DbError};

use super::Verdicts;

pub const RULE: &str = "wan.degraded";
/// Samples older than this are not looked at: a probe without one for a day decides nothing
/// here (the offline rule speaks for it), and each evaluation reads little.
const LOOKBACK_MS: i64 = 86_400_000;

pub async fn judge(
    db: &Db,
    config: &AlertConfig,
    now: i64,
    v: &mut Verdicts,
) -> Result<(), DbError> {
    let rules = &config.rules;
    let most = [rules.wan_bad_reports, rules.wan_good_reports]
        .into_iter()
        .chain(
            config
                .sites
                .values()
                .flat_map(|s| [s.wan_bad_reports, s.wan_good_reports])
                .flatten(),
        )
        .max()
        .unwrap_or(3)
        .max(1);
    for series in db.recent_wan(now - LOOKBACK_MS, most).await? {
        let rules = config.rules(&series.site);
        let bad = |&(sent, received, median): &(i64, i64, Option<f64>)| {
            let loss = if sent > 0 {
                100.0 * (sent - received) as f64 / sent as f64
            } else {
                0.0
            };
            loss > rules.wan_loss_percent || median.is_some_and(|m| m > rules.wan_latency_ms)
        };
        let run = |n: u32, want_bad: bool| {
            n > 0
                && series.samples.len() >= n as usize
                && series.samples[..n as usize]
                    .iter()
                    .all(|s| bad(s) == want_bad)
        };
        let subject = format!("wan:{}/{}", series.probe_id, series.target);
        if run(rules.wan_bad_reports, true) {
            let (sent, received, median) = series.samples[0];
            v.raise.push(Raise {
                rule: RULE,
                subject,
                site: Some(series.site.clone()),
                probe_id: Some(series.probe_id.clone()),
                severity: Severity::Warning,
                summary: format!(
                    "WAN from {} to {} degraded for {} reports: latest median {}, {received} of {sent} answered",
                    series.site,
                    series.target,
                    rules.wan_bad_reports,
                    median.map_or_else(|| "none".to_string(), |m| format!("{m:.0} ms")),
                ),
                details: serde_json::json!({
                    "target": series.target,
                    "median_ms": median,
                    "sent": sent,
                    "received": received,
                }),
                count: 1,
            });
        } else if run(rules.wan_good_reports, false) {
            v.clear.push((RULE, subject));
        }
    }
    Ok(())
}
