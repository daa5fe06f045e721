//! The daemon: one loop owns the agent and waits on whichever comes first: the next cycle, a
//! change in the spool (notify), the periodic rescan (in case an event was missed), the end
//! of a retry backoff, or shutdown. Shutdown also ends a cycle or a delivery under way: a
//! report is spooled whole or not at all (the spool's write and the sequence number are one
//! step with no wait inside), and one being delivered stays in the spool until acknowledged.

use std::future::Future;
use std::time::Duration;

use notify::Watcher;
use tokio::time::Instant;

use super::Agent;
use crate::backoff::random_unit;

const RESCAN: Duration = Duration::from_secs(30);

impl Agent {
    /// Runs until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let (wake_tx, mut wake) = tokio::sync::mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = wake_tx.send(());
            }
        })
        .and_then(|mut w| {
            w.watch(self.spool.dir(), notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        });
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "cannot watch the spool directory; relying on the periodic rescan");
        }
        let interval = self.config.interval;
        let mut next_scan = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut rescan = tokio::time::interval(RESCAN);
        loop {
            let due = tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(next_scan) => true,
                Some(()) = wake.recv() => false,
                _ = rescan.tick() => false,
                () = tokio::time::sleep_until(retry_at.unwrap_or(next_scan)), if retry_at.is_some() => {
                    retry_at = None;
                    false
                }
            };
            if due {
                tokio::select! {
                    () = &mut shutdown => return,
                    _ = self.steps() => {}
                }
                next_scan = Instant::now() + interval + interval.mul_f64(random_unit() / 10.0);
            }
            if retry_at.is_none() {
                let drained = tokio::select! {
                    () = &mut shutdown => return,
                    drained = self.drain() => drained,
                };
                match drained {
                    Ok(_) => self.backoff.reset(),
                    Err(e) => {
                        let delay = self.backoff.next_delay();
                        tracing::warn!(error = format!("{e:#}"), retry_in = ?delay, "delivery failed; reports stay in the spool");
                        retry_at = Some(Instant::now() + delay);
                    }
                }
            }
        }
    }
}
