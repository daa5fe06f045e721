//! One background job: every period (and when woken), one tick, until stopped. Every
//! periodic piece of work of `nester serve` is a [`Job`] made here, so none is a loop of its
//! own: a tick that fails or panics is logged with the job's name and the job carries on
//! after a backoff, never silently gone.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, watch};

/// What a tick asks of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// After the job's period.
    Period,
    /// After this long instead (a schedule of its own, a retry).
    After(Duration),
}

/// A job's work: its state lives in the value, across ticks.
pub trait Work: Send {
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>>;

    /// Once at shutdown, after the last tick (what must not be lost).
    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A closure whose future owns what it needs is work without state.
struct Every<F>(F);

impl<F, Fut> Work for Every<F>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
        let tick = (self.0)();
        Box::pin(async move { tick.await.map(|()| Pace::Period) })
    }
}

/// The shutdown every job follows: a change, or the sender gone.
pub type Stop = watch::Receiver<()>;

/// Waits for `stop` (a change or its sender gone).
pub async fn stopped(mut stop: Stop) {
    let _ = stop.changed().await;
}

/// Waits after failures stop growing here (or at the period, when it is longer).
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Job {
    name: String,
    period: Duration,
    at_start: bool,
    wake: Option<(Arc<Notify>, Duration)>,
    work: Box<dyn Work>,
}

impl Job {
    /// `tick` every `period`, the first after one period.
    pub fn every<F, Fut>(name: impl Into<String>, period: Duration, tick: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self::new(name, period, Every(tick))
    }

    /// `work` every `period` (or at the pace its ticks ask), the first after one period.
    pub fn new(name: impl Into<String>, period: Duration, work: impl Work + 'static) -> Self {
        Self {
            name: name.into(),
            period,
            at_start: false,
            wake: None,
            work: Box::new(work),
        }
    }

    /// The first tick at once.
    pub fn at_start(mut self) -> Self {
        self.at_start = true;
        self
    }

    /// A tick also `settle` after each `wake` (letting whoever woke it finish).
    pub fn woken_by(mut self, wake: Arc<Notify>, settle: Duration) -> Self {
        self.wake = Some((wake, settle));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ticks until `stop`, then finishes. A tick in progress at `stop` is dropped there.
    pub async fn run(mut self, stop: Stop) {
        let mut failures = 0u32;
        let mut wait = if self.at_start {
            Duration::ZERO
        } else {
            self.period
        };
        let stop = stopped(stop).shared();
        loop {
            let woken = async {
                match &self.wake {
                    Some((wake, settle)) => {
                        wake.notified().await;
                        tokio::time::sleep(*settle).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.clone() => break,
                () = tokio::time::sleep(wait) => {}
                () = woken => {}
            }
            let tick = AssertUnwindSafe(self.work.tick()).catch_unwind();
            let outcome = tokio::select! {
                () = stop.clone() => break,
                outcome = tick => outcome,
            };
            wait = match outcome {
                Ok(Ok(pace)) => {
                    failures = 0;
                    match pace {
                        Pace::Period => self.period,
                        Pace::After(after) => after,
                    }
                }
                Ok(Err(e)) => {
                    failures += 1;
                    let wait = backoff(failures, self.period);
                    tracing::error!(job = %self.name, error = format!("{e:#}"), retry_in = %humantime::format_duration(wait), "job failed; retrying");
                    wait
                }
                Err(panic) => {
                    failures += 1;
                    let wait = backoff(failures, self.period);
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(job = %self.name, panic = %what, restart_in = %humantime::format_duration(wait), "job panicked; restarting");
                    wait
                }
            };
        }
        let _ = AssertUnwindSafe(self.work.finish()).catch_unwind().await;
    }
}

/// The wait after `failures` failures in a row: doubling from a second to five minutes, and
/// never sooner than the job's own period.
fn backoff(failures: u32, period: Duration) -> Duration {
    let doubling = Duration::from_secs(1) * 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    doubling.min(MAX_BACKOFF).max(period)
}

/// Runs every job until `stop`, and returns once all of them finished.
pub async fn run_all(jobs: Vec<Job>, stop: Stop) {
    for job in &jobs {
        tracing::debug!(job = %job.name, "job started");
    }
    futures_util::future::join_all(jobs.into_iter().map(|job| job.run(stop.clone()))).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Log lines, for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_or_panicking_job_is_named_and_restarted_with_a_backoff() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let job = Job::every("flaky", Duration::from_millis(10), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("first tick breaks"),
                    1 => anyhow::bail!("second tick fails"),
                    _ => Ok(()),
                }
            }
        })
        .at_start();
        let (stop, stopped) = watch::channel(());
        let started = tokio::time::Instant::now();
        let running = tokio::spawn(job.run(stopped));
        // The panic waits 1 s, the failure 2 s, then the period again.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 2, "restarted after 1 s only");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let after = ticks.load(Ordering::SeqCst);
        assert!(after > 10, "back at its period once it succeeded: {after}");
        stop.send(()).unwrap();
        running.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(
            log.contains("job panicked; restarting") && log.contains("first tick breaks"),
            "{log}"
        );
        assert!(
            log.contains("job failed; retrying") && log.contains("second tick fails"),
            "{log}"
        );
        assert_eq!(log.matches("job=flaky").count(), 2, "{log}");
    }

    #[test]
    fn backoff_doubles_to_a_bound_and_never_beats_the_period() {
        let s = Duration::from_secs;
        assert_eq!(backoff(1, Duration::ZERO), s(1));
        assert_eq!(backoff(3, Duration::ZERO), s(4));
        assert_eq!(backoff(40, Duration::ZERO), MAX_BACKOFF);
        assert_eq!(backoff(1, s(3600)), s(3600));
    }

    /// Counts its ticks and its finish.
    struct Finishing(Arc<AtomicUsize>, Arc<AtomicUsize>);

    impl Work for Finishing {
        fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(Pace::After(Duration::from_secs(3600))) })
        }
        fn finish(&mut self) -> BoxFuture<'_, ()> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_woken_job_ticks_at_once_and_finishes_at_stop() {
        let (ticks, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let wake = Arc::new(Notify::new());
        let work = Finishing(ticks.clone(), finished.clone());
        let job = Job::new("woken", Duration::from_secs(3600), work)
            .woken_by(wake.clone(), Duration::from_millis(300));
        let (stop, stopped) = watch::channel(());
        let running = tokio::spawn(job.run(stopped));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            0,
            "the first tick waits for its period"
        );
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 0, "still settling");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 1, "woken");
        drop(stop);
        running.await.unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }
}
