//! Rules on the change feed ingest writes: a host seen for the first time at a site, a port
//! newly open on a known host, and on hosts marked important (`important_hosts`), a port
//! that closed or the host going down. A probe's first report is its baseline: nothing in it
//! is news. The feed is read from where the last evaluation stopped (a cursor kept in the
//! database); the first evaluation starts at its end.

use crate::config::AlertConfig;
use crate::db::alerts::{Raise, Severity};
use crate::db::{Db, DbError, FeedChange};

use super::Verdicts;

pub const NEW_HOST: &str = "host.new";
pub const NEW_PORT: &str = "port.new";
pub const CLOSED_PORT: &str = "port.closed";
pub const IMPORTANT_DOWN: &str = "host.down";
const CURSOR: &str = "changes";
const BATCH: u32 = 1000;
/// Batches read in one evaluation, at most; the rest waits for the next.
const BATCHES: usize = 20;

pub async fn judge(db: &Db, config: &AlertConfig, v: &mut Verdicts) -> Result<(), DbError> {
    let Some(mut cursor) = db.alert_cursor(CURSOR.into()).await? else {
        let end = db.last_change_id().await?;
        return db.set_alert_cursor(CURSOR.into(), end).await;
    };
    for _ in 0..BATCHES {
        let changes = db.changes_after(cursor, BATCH).await?;
        for c in &changes {
            if let Some(raise) = news(config, c) {
                v.raise.push(raise);
            }
        }
        let Some(last) = changes.last() else { break };
        cursor = last.change_id;
        db.set_alert_cursor(CURSOR.into(), cursor).await?;
        if changes.len() < BATCH as usize {
            break;
        }
    }
    Ok(())
}

/// The alert a change is, if any.
fn news(config: &AlertConfig, c: &FeedChange) -> Option<Raise> {
    if c.baseline {
        return None;
    }
    let rules = config.rules(&c.site);
    let important = rules.important_hosts.contains(&c.address);
    let host = match &c.hostname {
        Some(name) => format!("{} ({name})", c.address),
        None => c.address.clone(),
    };
    let port = format!(
        "{}/{}",
        c.port.unwrap_or(0),
        c.protocol.as_deref().unwrap_or("tcp")
    );
    let (rule, subject, summary) = match c.kind.as_str() {
        "host_up" if c.new_host && rules.new_hosts => (
            NEW_HOST,
            format!("host:{}/{}", c.site, c.address),
            format!("new host {host} at {}", c.site),
        ),
        "port_opened" if !c.new_host && rules.new_ports => (
            NEW_PORT,
            format!("port:{}/{}/{port}", c.site, c.address),
            format!("port {port} newly open on {host} at {}", c.site),
        ),
        "port_closed" if important => (
            CLOSED_PORT,
            format!("port:{}/{}/{port}", c.site, c.address),
            format!("port {port} closed on important host {host} at {}", c.site),
        ),
        "host_down" if important => (
            IMPORTANT_DOWN,
            format!("host:{}/{}", c.site, c.address),
            format!("important host {host} at {} is down", c.site),
        ),
        _ => return None,
    };
    Some(Raise {
        rule,
        subject,
        site: Some(c.site.clone()),
        probe_id: Some(c.probe_id.clone()),
        severity: Severity::Warning,
        summary,
        details: serde_json::json!({
            "address": c.address,
            "hostname": c.hostname,
            "port": c.port,
            "protocol": c.protocol,
            "change_id": c.change_id,
        }),
        count: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, new_host: bool, baseline: bool) -> FeedChange {
        FeedChange {
            change_id: 7,
            at_ms: 0,
            kind: kind.into(),
            protocol: Some("tcp".into()),
            port: Some(22),
            probe_id: "p".into(),
            site: "kc".into(),
            address: "10.0.0.5".into(),
            hostname: None,
            new_host,
            baseline,
        }
    }

    #[test]
    fn what_in_the_feed_is_news() {
        let mut config = AlertConfig::default();
        let rule = |c: &AlertConfig, k, new, base| news(c, &change(k, new, base)).map(|r| r.rule);
        assert_eq!(rule(&config, "host_up", true, false), Some(NEW_HOST));
        assert_eq!(rule(&config, "host_up", true, true), None, "baseline");
        assert_eq!(rule(&config, "host_up", false, false), None, "back up");
        assert_eq!(rule(&config, "port_opened", false, false), Some(NEW_PORT));
        assert_eq!(
            rule(&config, "port_opened", true, false),
            None,
            "part of the new host"
        );
        assert_eq!(
            rule(&config, "port_closed", false, false),
            None,
            "not important"
        );
        assert_eq!(rule(&config, "host_down", false, false), None);
        config.rules.important_hosts = vec!["10.0.0.5".into()];
        assert_eq!(
            rule(&config, "port_closed", false, false),
            Some(CLOSED_PORT)
        );
        assert_eq!(
            rule(&config, "host_down", false, false),
            Some(IMPORTANT_DOWN)
        );
        let r = news(&config, &change("port_opened", false, false)).unwrap();
        assert_eq!(r.subject, "port:kc/10.0.0.5/22/tcp");
    }
}
