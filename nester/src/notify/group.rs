//! Events into messages. Waiting alert events are grouped per site; a group goes out once its
//! oldest event has waited `group_wait` (so 50 probes of one site failing within half a
//! minute are one message). In a group, a firing is notified unless a silence matches it or a
//! firing of the same condition was notified within `flap_interval`; a resolution only if its
//! firing was notified. Each channel gets the alerts it routes, as one message.

use std::collections::BTreeMap;

use crate::config::NotifyConfig;
use crate::db::outbox::{Outgoing, WaitingEvent};
use crate::db::silences::Silence;

use super::message::{Notification, NotifiedAlert};

/// The rule of the alert a failing channel raises about itself (never sent to that channel).
pub const CHANNEL_FAILING: &str = "notify.channel_failing";

/// What one grouping pass decided, to store in one transaction.
#[derive(Debug, Default)]
pub struct Plan {
    pub messages: Vec<Outgoing>,
    /// Events handled (notified or not): they leave the queue.
    pub events: Vec<i64>,
    /// Alerts whose firing is being notified: id and key.
    pub fired: Vec<(i64, String)>,
}

/// Plans the messages for the events ready at `now`.
pub fn plan(
    config: &NotifyConfig,
    events: Vec<WaitingEvent>,
    silences: &[Silence],
    base_url: Option<&str>,
    now: i64,
) -> Plan {
    let wait = ms(config.group_wait);
    let flap = ms(config.flap_interval);
    let mut groups: BTreeMap<Option<String>, Vec<WaitingEvent>> = BTreeMap::new();
    for e in events {
        groups.entry(e.site.clone()).or_default().push(e);
    }
    let mut plan = Plan::default();
    for (site, events) in groups {
        let oldest = events.iter().map(|e| e.at_ms).min().unwrap_or(now);
        if now - oldest < wait {
            continue;
        }
        let first_id = events.iter().map(|e| e.event_id).min().unwrap_or(0);
        let mut notified = Vec::new();
        for e in events {
            plan.events.push(e.event_id);
            let tell = if e.kind == "firing" {
                let silenced = silences
                    .iter()
                    .any(|s| s.matcher.matches(&e.rule, e.site.as_deref(), &e.subject));
                let flapping = e.key_notified_ms.is_some_and(|at| now - at < flap);
                if !silenced && !flapping {
                    plan.fired.push((e.alert_id, e.key.clone()));
                }
                !silenced && !flapping
            } else {
                e.notified_ms.is_some()
            };
            if tell {
                notified.push(e);
            }
        }
        for (name, channel) in &config.channels {
            let own = format!("channel:{name}");
            let alerts: Vec<&WaitingEvent> = notified
                .iter()
                .filter(|e| channel.wants(&e.severity, e.site.as_deref()))
                .filter(|e| !(e.rule == CHANNEL_FAILING && e.subject == own))
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let key = format!("{name}/{}/{first_id}", site.as_deref().unwrap_or("-"));
            let message = Notification {
                id: key.clone(),
                site: site.clone(),
                firing: alerts.iter().filter(|e| e.kind == "firing").count() as u32,
                resolved: alerts.iter().filter(|e| e.kind == "resolved").count() as u32,
                alerts: alerts.iter().map(|e| notified_alert(e, base_url)).collect(),
                test: false,
            };
            plan.messages.push(Outgoing {
                channel: name.clone(),
                key,
                site: site.clone(),
                body: serde_json::to_string(&message).unwrap_or_default(),
            });
        }
    }
    plan
}

fn notified_alert(e: &WaitingEvent, base_url: Option<&str>) -> NotifiedAlert {
    let first = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.first_ms) * 1_000_000)
        .map(crate::clock::rfc3339)
        .unwrap_or_default();
    NotifiedAlert {
        id: e.alert_id,
        rule: e.rule.clone(),
        severity: e.severity.clone(),
        state: e.kind.clone(),
        subject: e.subject.clone(),
        summary: e.summary.clone(),
        site: e.site.clone(),
        probe_id: e.probe_id.clone(),
        first_seen: first,
        url: base_url.map(|base| {
            let site = e.site.as_deref().unwrap_or("");
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("site", site)
                .finish();
            format!("{base}/alerts?{query}")
        }),
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::silences::Matcher;

    fn event(id: i64, site: &str, kind: &str, at_ms: i64) -> WaitingEvent {
        WaitingEvent {
            event_id: id,
            kind: kind.into(),
            at_ms,
            alert_id: id,
            key: format!("probe.offline/probe:{id}"),
            rule: "probe.offline".into(),
            severity: "critical".into(),
            site: Some(site.into()),
            probe_id: Some(format!("{id}")),
            subject: format!("probe:{id}"),
            summary: "silent".into(),
            first_ms: at_ms,
            notified_ms: None,
            key_notified_ms: None,
        }
    }

    fn config(channels: &str) -> NotifyConfig {
        toml::from_str(channels).unwrap()
    }

    const TWO: &str = r#"
        [channels.all]
        kind = "slack"
        url = "http://127.0.0.1:1/"
        [channels.kc]
        kind = "slack"
        url = "http://127.0.0.1:1/"
        sites = ["kc"]
        severities = ["warning"]
    "#;

    #[test]
    fn fifty_probes_of_one_site_are_one_message_per_channel_once_the_wait_is_over() {
        let c = config(TWO);
        let events: Vec<_> = (1..=50)
            .map(|i| event(i, "kc", "firing", 1000 + i * 100))
            .collect();
        // Within the wait: nothing yet.
        let early = plan(&c, events.clone(), &[], None, 1000 + 29_000);
        assert!(early.messages.is_empty() && early.events.is_empty());
        let p = plan(&c, events, &[], Some("https://n.example"), 1000 + 31_000);
        assert_eq!(p.events.len(), 50);
        assert_eq!(p.fired.len(), 50);
        // `kc` wants warnings only: one message, to `all`.
        assert_eq!(p.messages.len(), 1);
        let m: serde_json::Value = serde_json::from_str(&p.messages[0].body).unwrap();
        assert_eq!(m["firing"], 50);
        assert_eq!(m["id"], "all/kc/1");
        assert_eq!(m["alerts"][0]["url"], "https://n.example/alerts?site=kc");
    }

    #[test]
    fn silenced_flapping_and_unnotified_resolutions_are_not_told() {
        let c = config(TWO);
        let silence = Silence {
            id: 1,
            matcher: Matcher {
                subject: Some("probe:1".into()),
                ..Default::default()
            },
            comment: String::new(),
            created_by: String::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
        };
        let now = 10_000_000;
        let mut flapping = event(2, "kc", "firing", 0);
        flapping.key_notified_ms = Some(now - 1_000_000);
        let mut resolved_told = event(3, "kc", "resolved", 0);
        resolved_told.notified_ms = Some(0);
        let resolved_untold = event(4, "kc", "resolved", 0);
        let mut old_flap = event(5, "kc", "firing", 0);
        old_flap.key_notified_ms = Some(now - 4_000_000);
        let events = vec![
            event(1, "kc", "firing", 0),
            flapping,
            resolved_told,
            resolved_untold,
            old_flap,
        ];
        let p = plan(&c, events, &[silence], None, now);
        assert_eq!(p.events.len(), 5, "all handled");
        assert_eq!(p.fired.iter().map(|f| f.0).collect::<Vec<_>>(), [5]);
        let m: serde_json::Value = serde_json::from_str(&p.messages[0].body).unwrap();
        let ids: Vec<i64> = m["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [3, 5]);
        assert_eq!(
            (m["firing"].as_i64(), m["resolved"].as_i64()),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn a_failing_channel_is_not_told_about_itself() {
        let c = config(TWO);
        let mut e = event(1, "kc", "firing", 0);
        e.rule = CHANNEL_FAILING.into();
        e.subject = "channel:all".into();
        e.severity = "warning".into();
        let p = plan(&c, vec![e], &[], None, 100_000);
        assert_eq!(
            p.messages
                .iter()
                .map(|m| m.channel.as_str())
                .collect::<Vec<_>>(),
            ["kc"]
        );
    }
}
