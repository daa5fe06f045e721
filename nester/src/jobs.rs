//! Periodic work beside the listeners, each job a loop that ends with the server's shutdown:
//! today the retention pass.

use std::future::Future;
use std::time::Duration;

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
