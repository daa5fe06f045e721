//! Monitoring alerts: the conditions a NOC must hear about, evaluated every `[alerts] every`
//! from what ingest already stored (it never waits for this). Each rule is a file:
//! `probes.rs` (offline, probe certificates, lost and unsent reports), `feed.rs` (new
//! hosts and ports from the change feed, closed ports on important hosts), `wan.rs` (latency
//! and loss with hysteresis), `certs.rs` (the nester's own certificates), `ssh.rs` (a box
//! that did not install the SSH trust it was given). Security alerts come from `threat`.
//!
//! Conditions (a probe offline) fire once and resolve when the condition clears; events (a
//! new port) count on their open alert and resolve after `events_resolve_after` of quiet.

mod certs;
mod feed;
mod probes;
mod ssh;
mod wan;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::config::AlertConfig;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::alerts::Raise;

/// Rules whose alert resolves as soon as their condition no longer holds.
const CONDITIONS: [&str; 4] = [probes::OFFLINE, probes::CERTIFICATE, certs::RULE, ssh::RULE];

/// Rules whose alerts are events, resolved after a quiet time.
const EVENTS: [&str; 3] = ["host.", "port.", "reports."];

/// What the rules concluded in one evaluation.
#[derive(Default)]
pub struct Verdicts {
    /// Conditions that hold now, and events that happened.
    raise: Vec<Raise>,
    /// Subjects of hysteresis rules that are good again: (rule, subject).
    clear: Vec<(&'static str, String)>,
}

/// What one evaluation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub raised: usize,
    pub resolved: usize,
}

pub struct Engine {
    db: Db,
    config: AlertConfig,
    dir: DataDir,
    /// An operator's own web certificate, watched as the nester's are.
    web_cert: Option<PathBuf>,
}

impl Engine {
    pub fn new(db: Db, config: AlertConfig, dir: DataDir, web_cert: Option<PathBuf>) -> Self {
        Self {
            db,
            config,
            dir,
            web_cert,
        }
    }

    /// Runs every rule once and applies what they found.
    pub async fn evaluate(&self) -> anyhow::Result<Evaluation> {
        let now = self.db.clock().now_ms();
        let mut v = Verdicts::default();
        let standings = self.db.probe_standings().await?;
        probes::judge(&self.config, &standings, now, &mut v);
        probes::lost(&self.db, &self.config, &standings, &mut v).await?;
        feed::judge(&self.db, &self.config, &mut v).await?;
        wan::judge(&self.db, &self.config, now, &mut v).await?;
        certs::judge(&self.dir, self.web_cert.as_deref(), now, &mut v);
        ssh::judge(&self.db.ssh_trust_holders().await?, now, &mut v.raise);
        let mut done = self.apply(v).await?;
        for prefix in EVENTS {
            let quiet =
                i64::try_from(self.config.events_resolve_after.as_millis()).unwrap_or(i64::MAX);
            done.resolved += self.db.resolve_quiet_alerts(prefix, quiet).await?;
        }
        self.db.expire_acknowledgements().await?;
        self.db.end_expired_silences().await?;
        Ok(done)
    }

    async fn apply(&self, v: Verdicts) -> anyhow::Result<Evaluation> {
        let mut done = Evaluation::default();
        // The open alerts of every condition rule, read once: what may resolve, and what must
        // not be raised twice.
        let mut open: HashSet<(&str, String)> = HashSet::new();
        for rule in CONDITIONS.iter().chain(&[wan::RULE]) {
            for subject in self.db.open_alert_subjects(rule).await? {
                open.insert((rule, subject));
            }
        }
        // Conditions: resolved when they stop holding (WAN: when good long enough).
        let holding: HashSet<(&str, &str)> = v
            .raise
            .iter()
            .map(|r| (r.rule, r.subject.as_str()))
            .collect();
        let stopped: Vec<(&str, String)> = open
            .iter()
            .filter(|(rule, subject)| {
                CONDITIONS.contains(rule) && !holding.contains(&(*rule, subject.as_str()))
            })
            .cloned()
            .chain(
                v.clear
                    .iter()
                    .map(|(rule, subject)| (*rule, subject.clone())),
            )
            .collect();
        for (rule, subject) in stopped {
            if self.db.resolve_alert(rule, subject.clone()).await? {
                done.resolved += 1;
                open.remove(&(rule, subject));
            }
        }
        // Raised when they start; events always (they count on their open alert).
        for raise in v.raise {
            let condition = CONDITIONS.contains(&raise.rule) || raise.rule == wan::RULE;
            if condition && open.contains(&(raise.rule, raise.subject.clone())) {
                continue;
            }
            tracing::warn!(rule = raise.rule, subject = %raise.subject, summary = %raise.summary, "alert");
            self.db.raise_alert(raise).await?;
            done.raised += 1;
        }
        Ok(done)
    }
}
