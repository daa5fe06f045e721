//! Backup work off the serving path: the snapshot, its compression and hashing, and a
//! verification run on a thread of their own at the lowest CPU priority (nice 19), so that
//! they take only the CPU that ingest and the dashboard leave, and never hold one of the
//! runtime's worker threads.

use anyhow::Context;

/// Runs `work` on a new low-priority thread and waits for it.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || {
            // On Linux a nice value is a thread's own: `None` is the calling thread.
            if let Err(e) = rustix::process::setpriority_process(None, 19) {
                tracing::warn!(error = %e, "cannot lower the backup thread's priority");
            }
            let _ = done.send(work());
        })
        .context("cannot start the backup thread")?;
    outcome
        .await
        .context("the backup thread stopped before it finished")?
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn work_runs_niced_on_its_own_thread_and_its_error_comes_back() {
        let (name, nice) = super::run(|| {
            let nice = std::fs::read_to_string("/proc/thread-self/stat")?
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(16).map(str::to_string))
                .unwrap_or_default();
            Ok((std::thread::current().name().map(str::to_string), nice))
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("backup"));
        assert_eq!(nice, "19");
        let failed = super::run(|| -> anyhow::Result<()> { anyhow::bail!("disk full") }).await;
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
    }
}
