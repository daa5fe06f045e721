//! Periodic work beside the listeners, each job a loop that ends with the server's shutdown:
//! the retention pass, the audit log's checkpoints, bans and security alerts, and the
//! monitoring alerts' evaluation.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::audit::{CheckpointKey, checkpoint};
use crate::db::Policy;
use crate::state::AppState;

/// Applies the retention policy at start and then `every` after each pass, until `stop`.
pub async fn retention(
    state: AppState,
    policy: Policy,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let passes = async {
        loop {
            let started = std::time::Instant::now();
            match state.db.retain(policy, state.clock.now()).await {
                Ok(done) => tracing::info!(
                    reports_deleted = done.reports_deleted,
                    samples_rolled_up = done.samples_rolled_up,
                    hours_rolled_up = done.hours_rolled_up,
                    pages_freed = done.pages_freed,
                    took_ms = started.elapsed().as_millis() as u64,
                    "retention pass"
                ),
                Err(e) => tracing::error!(error = %e, "retention pass failed; retrying next time"),
            }
            tokio::time::sleep(every).await;
        }
    };
    tokio::select! {
        () = passes => {}
        () = stop => {}
    }
}

/// Signs a checkpoint of the audit chain's head when it moved: at most every `every` (a
/// minute in service) and as soon as [`CHECKPOINT_ENTRIES`] entries are unsigned, and once
/// more at shutdown. Each goes to `checkpoints` (a file outside the database).
pub async fn audit_checkpoints(
    state: AppState,
    key: CheckpointKey,
    checkpoints: PathBuf,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut signed = match checkpoint::read_all(&checkpoints) {
        Ok(all) => all.last().map_or(-1, |c| c.seq),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot read the audit checkpoints"
            );
            -1
        }
    };
    let mut last_time = std::time::Instant::now();
    let write = |head: (i64, Vec<u8>), signed: &mut i64| {
        let time = crate::clock::rfc3339(state.clock.now());
        match checkpoint::append(&checkpoints, &key.sign(head.0, &head.1, &time)) {
            Ok(()) => *signed = head.0,
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot write an audit checkpoint"),
        }
    };
    let poll = Duration::from_millis(500).min(every);
    let ticks = async {
        loop {
            match state.db.audit_head().await {
                Ok(head) if head.0 > signed => {
                    if head.0 - signed >= CHECKPOINT_ENTRIES || last_time.elapsed() >= every {
                        write(head, &mut signed);
                        last_time = std::time::Instant::now();
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the audit head"),
            }
            tokio::time::sleep(poll).await;
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
    match state.db.audit_head().await {
        Ok(head) if head.0 > signed => write(head, &mut signed),
        _ => {}
    }
}

/// Unsigned entries that call for a checkpoint without waiting for the minute.
pub const CHECKPOINT_ENTRIES: i64 = 100;

/// Every couple of seconds: reads the bans again, so `nester ban add|remove` from another
/// process reaches the accept loop and ended bans leave it, and writes the security alerts
/// detection noted, and resolves those that went quiet.
pub async fn threats(state: AppState, stop: impl Future<Output = ()>) {
    let ticks = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Err(e) = state.threats.reload().await {
                tracing::warn!(error = format!("{e:#}"), "cannot read the bans");
            }
            if let Err(e) = state.threats.flush_alerts().await {
                tracing::error!(error = format!("{e:#}"), "cannot write security alerts");
            }
            match state.threats.resolve_quiet_alerts().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(resolved = n, "quiet security alerts resolved"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot resolve alerts"),
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
    // What was noted last is not lost at shutdown.
    if let Err(e) = state.threats.flush_alerts().await {
        tracing::error!(error = format!("{e:#}"), "cannot write security alerts");
    }
}

/// Evaluates the alert rules every `every`, until `stop`.
pub async fn alerts(
    engine: crate::alerts::Engine,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let ticks = async {
        loop {
            tokio::time::sleep(every).await;
            match engine.evaluate().await {
                Ok(done) if done.raised + done.resolved > 0 => {
                    tracing::info!(
                        raised = done.raised,
                        resolved = done.resolved,
                        "alerts evaluated"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "alert evaluation failed; retrying next time"
                ),
            }
        }
    };
    tokio::select! {
        () = ticks => {}
        () = stop => {}
    }
}
