//! Backup work off the serving path: a whole backup (snapshot, compression, hashing, the
//! SFTP transfer and its encryption, the verification) runs on a thread of its own at the
//! lowest CPU priority (nice 19), with its own single-threaded runtime for the SSH session,
//! so that it takes only the CPU that ingest and the dashboard leave and never holds one of
//! the serving runtime's worker threads. Threads it starts inherit its priority.

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

/// Runs the future `work` makes on a new low-priority thread, in a runtime of its own, and
/// waits for it.
pub async fn run_async<T, F>(work: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: Future<Output = anyhow::Result<T>>,
{
    run(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("backup")
            .build()
            .context("cannot start the backup runtime")?
            .block_on(work())
    })
    .await
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

    #[tokio::test]
    async fn async_work_runs_in_its_own_runtime_and_its_blocking_threads_stay_niced() {
        let nice = super::run_async(|| async {
            // A thread the backup runtime starts for blocking work.
            tokio::task::spawn_blocking(|| {
                std::fs::read_to_string("/proc/thread-self/stat").map(|stat| {
                    stat.rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().nth(16).map(str::to_string))
                        .unwrap_or_default()
                })
            })
            .await?
            .map_err(anyhow::Error::from)
        })
        .await
        .unwrap();
        assert_eq!(nice, "19");
    }
}
