//! The background jobs of `nester serve`, each a [`Job`](crate::job::Job) with a name: the
//! retention pass, audit checkpoints, bans and security alerts, the monitoring rules, the
//! listeners' certificates, notifications and backups. [`all`] is the one list.

mod audit;
pub mod certificates;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;

pub use audit::CHECKPOINT_ENTRIES;
pub use certificates::Served;

use crate::audit::CheckpointKey;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Policy;
use crate::job::{Job, Pace, Work};
use crate::net::client_roots::ClientRoots;
use crate::net::served_cert::ServedCert;
use crate::notify::send::Sender;
use crate::state::AppState;

/// How often the audit chain's head is signed when it moved (sooner after 100 entries).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// What the jobs take beyond the state and the config, read by `Server::open`.
pub struct Parts {
    pub retention: Policy,
    pub audit_key: CheckpointKey,
    pub served: Served,
    /// One per notification channel, secrets read.
    pub senders: Vec<(String, Sender)>,
}

impl Parts {
    /// Reads what the jobs need, so its errors surface before `serve` binds: `served` is the
    /// ingest and web listeners' certificates, `clients` the ingest listener's client CAs.
    pub fn open(
        dir: &DataDir,
        config: &Config,
        clients: Arc<ClientRoots>,
        [ingest, web]: [Arc<ServedCert>; 2],
    ) -> anyhow::Result<Self> {
        let retention = config
            .retention
            .policy()
            .context("[retention] is unusable: a duration is too long")?;
        let served = Served {
            dir: dir.clone(),
            clients,
            ingest,
            web,
            operator_web: config.web.cert.clone().zip(config.web.key.clone()),
            config: config.certificates.clone(),
        };
        Ok(Self {
            retention,
            audit_key: CheckpointKey::load_or_create(dir)?,
            served,
            senders: crate::notify::senders(&config.notify)?,
        })
    }
}

/// Every job `nester serve` runs; `web_url` is the dashboard's address for links in
/// notifications.
pub fn all(state: &AppState, config: &Config, parts: Parts, web_url: String) -> Vec<Job> {
    let mut jobs = vec![
        retention(state.clone(), parts.retention, config.retention.every),
        audit::job(
            state.clone(),
            parts.audit_key,
            state.dir.audit_checkpoints(),
            CHECKPOINT_EVERY,
        ),
        threats(state.clone()),
        alerts(state, config),
        certificates::job(state.clone(), parts.served),
    ];
    let notifier =
        crate::notify::Notifier::new(state.db.clone(), config.notify.clone(), Some(web_url));
    jobs.extend(notifier.jobs(parts.senders));
    if let Some(backup) = config.backup.clone() {
        let (dir, db) = (state.dir.clone(), state.db.clone());
        jobs.push(crate::backup::schedule::job(dir, backup, db));
    }
    jobs
}

/// Applies the retention policy at start and then every `every`.
fn retention(state: AppState, policy: Policy, every: Duration) -> Job {
    Job::every("retention", every, move || {
        let state = state.clone();
        async move {
            let started = std::time::Instant::now();
            let done = state.db.retain(policy, state.clock.now()).await?;
            tracing::info!(
                reports_deleted = done.reports_deleted,
                samples_rolled_up = done.samples_rolled_up,
                hours_rolled_up = done.hours_rolled_up,
                pages_freed = done.pages_freed,
                took_ms = started.elapsed().as_millis() as u64,
                "retention pass"
            );
            Ok(())
        }
    })
    .at_start()
}

/// Every couple of seconds: reads the bans again, so `nester ban add|remove` from another
/// process reaches the accept loop and ended bans leave it, and writes the security alerts
/// detection noted, and resolves those that went quiet. What was noted last is written at
/// shutdown too.
fn threats(state: AppState) -> Job {
    Job::new("threats", Duration::from_secs(2), Threats(state))
}

struct Threats(AppState);

impl Work for Threats {
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
        Box::pin(async {
            let threats = &self.0.threats;
            if let Err(e) = threats.reload().await {
                tracing::warn!(error = format!("{e:#}"), "cannot read the bans");
            }
            threats
                .flush_alerts()
                .await
                .context("cannot write security alerts")?;
            let resolved = threats
                .resolve_quiet_alerts()
                .await
                .context("cannot resolve alerts")?;
            if resolved > 0 {
                tracing::info!(resolved, "quiet security alerts resolved");
            }
            Ok(Pace::Period)
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if let Err(e) = self.0.threats.flush_alerts().await {
                tracing::error!(error = format!("{e:#}"), "cannot write security alerts");
            }
        })
    }
}

/// Evaluates the alert rules every `[alerts] every`.
fn alerts(state: &AppState, config: &Config) -> Job {
    let engine = std::sync::Arc::new(crate::alerts::Engine::new(
        state.db.clone(),
        config.alerts.clone(),
        state.dir.clone(),
        config.web.cert.clone(),
    ));
    Job::every("alerts", config.alerts.every, move || {
        let engine = engine.clone();
        async move {
            let done = engine.evaluate().await?;
            if done.raised + done.resolved > 0 {
                tracing::info!(
                    raised = done.raised,
                    resolved = done.resolved,
                    "alerts evaluated"
                );
            }
            Ok(())
        }
    })
}
