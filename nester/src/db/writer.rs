//! The database's threads: the single writer (exclusive jobs, and group commits of batched
//! jobs, each in its own savepoint), the readers, and the checkpointer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Batched, COMMIT_WAIT, DbError, Exclusive, Job, history, staging};

/// How long the checkpointer lets commits gather before it copies them.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// Most jobs in one group commit.
const MAX_BATCH: usize = 256;
/// How often a waiting group commit looks for jobs that arrived. The writer sleeps rather than
/// block on the queue, so senders do not each pay for waking it.
const COMMIT_WAIT_STEP: Duration = Duration::from_micros(250);

pub(super) fn read_loop(mut conn: Connection, jobs: &Mutex<mpsc::Receiver<Exclusive>>) {
    loop {
        // The lock is held only while waiting for the next job, not while running it.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut conn),
            Err(_) => return, // every Db handle is gone
        }
    }
}

/// Checkpoints after commits, at most every [`CHECKPOINT_EVERY`]; ends with the writer.
pub(super) fn checkpoint_loop(conn: &Connection, wakes: &mpsc::Receiver<()>) {
    while wakes.recv().is_ok() {
        thread::sleep(CHECKPOINT_EVERY);
        while wakes.try_recv().is_ok() {}
        // PASSIVE: copies what no reader still needs, and never blocks the writer.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed; the WAL grows until one succeeds");
        }
    }
}

/// Folds the staged keys in a transaction of its own.
pub(super) fn fold(conn: &mut Connection) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    staging::fold(&tx)?;
    Ok(tx.commit()?)
}

pub(super) fn write_loop(
    mut conn: Connection,
    jobs: &mpsc::Receiver<Job>,
    expected: &AtomicUsize,
    committed: &mpsc::SyncSender<()>,
) {
    let mut pending = None;
    // Batched writes since the last fold (see `staging.rs`).
    let mut unfolded = 0;
    let mut memo = history::Memo::default();
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None if unfolded > 0 => match jobs.recv_timeout(staging::FOLD_IDLE) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    fold_staged(&mut conn, &mut unfolded, committed);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Exclusive(f) => {
                f(&mut conn);
                // It may have written anything, the history tables too.
                memo.check(&conn);
            }
            Job::Batched(first) => {
                let batch = Batch {
                    first: Some(first),
                    jobs,
                    expected,
                    pending: &mut pending,
                    deadline: Instant::now() + COMMIT_WAIT,
                    taken: 0,
                };
                unfolded += run_batch(&conn, batch, &mut memo);
            }
        }
        // Whatever the job wrote wants a checkpoint; a wake-up already pending will do.
        let _ = committed.try_send(());
        if unfolded >= staging::FOLD_EVERY {
            fold_staged(&mut conn, &mut unfolded, committed);
        }
    }
}

/// Folds the staged keys (see `staging.rs`) and wakes the checkpointer. On failure, reads
/// still see the staged keys and the next pause tries again.
fn fold_staged(conn: &mut Connection, unfolded: &mut usize, committed: &mpsc::SyncSender<()>) {
    match fold(conn) {
        Ok(()) => *unfolded = 0,
        Err(e) => {
            tracing::warn!(error = %e, "folding staged keys failed");
            *unfolded = 1;
        }
    }
    let _ = committed.try_send(());
}

/// Runs one of the statements that frame a batch, prepared once (not parsed per report).
fn frame(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The jobs of one group commit: the first, those queued behind it, then, while writes are
/// expected, those that arrive before the deadline. An exclusive job ends the batch and is
/// left in `pending`.
struct Batch<'a> {
    first: Option<Batched>,
    jobs: &'a mpsc::Receiver<Job>,
    expected: &'a AtomicUsize,
    pending: &'a mut Option<Job>,
    deadline: Instant,
    taken: usize,
}

impl Iterator for Batch<'_> {
    type Item = Batched;

    fn next(&mut self) -> Option<Batched> {
        if let Some(first) = self.first.take() {
            self.taken += 1;
            return Some(first);
        }
        if self.taken >= MAX_BATCH || self.pending.is_some() {
            return None;
        }
        loop {
            match self.jobs.try_recv() {
                Ok(Job::Batched(job)) => {
                    self.taken += 1;
                    return Some(job);
                }
                Ok(exclusive) => {
                    *self.pending = Some(exclusive);
                    return None;
                }
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => {
                    let now = Instant::now();
                    if self.expected.load(Ordering::Acquire) == 0 || now >= self.deadline {
                        return None;
                    }
                    thread::sleep(COMMIT_WAIT_STEP.min(self.deadline - now));
                }
            }
        }
    }
}

/// Metrics of the group commits (described with the others in `crate::metrics`).
pub const COMMIT_JOBS: &str = "seahawks_nester_db_commit_batch_jobs";
pub const COMMIT_DURATION: &str = "seahawks_nester_db_commit_duration_seconds";

/// Runs a batch in one transaction; returns how many jobs it ran. Whatever is rolled back,
/// `memo` forgets.
fn run_batch(conn: &Connection, mut batch: Batch<'_>, memo: &mut history::Memo) -> usize {
    let started = std::time::Instant::now();
    if let Err(e) = frame(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin a write transaction");
        return 0; // the first job is dropped: its caller gets an error
    }
    memo.check(conn);
    let mut replies = Vec::new();
    for job in &mut batch {
        if let Err(e) = frame(conn, "SAVEPOINT job") {
            tracing::error!(error = %e, "cannot open a savepoint");
            continue;
        }
        let (ok, reply) = job(conn, memo);
        let end = if ok {
            frame(conn, "RELEASE job")
        } else {
            memo.forget();
            conn.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Err(e) = end {
            tracing::error!(error = %e, "cannot close a savepoint");
        }
        replies.push(reply);
    }
    let commit = frame(conn, "COMMIT").map_err(DbError::from);
    if let Err(e) = &commit {
        tracing::error!(error = %e, "group commit failed");
        memo.forget();
        let _ = conn.execute_batch("ROLLBACK");
    }
    metrics::histogram!(COMMIT_DURATION).record(started.elapsed().as_secs_f64());
    metrics::histogram!(COMMIT_JOBS).record(replies.len() as f64);
    for reply in replies {
        reply(commit.as_ref().map(|_| ()));
    }
    batch.taken
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::db::Reply;

    fn job() -> Batched {
        Box::new(|_, _| {
            let reply: Reply = Box::new(|_: Result<(), &DbError>| {});
            (true, reply)
        })
    }

    fn batch<'a>(
        first: Batched,
        jobs: &'a mpsc::Receiver<Job>,
        expected: &'a AtomicUsize,
        pending: &'a mut Option<Job>,
        wait: Duration,
    ) -> Batch<'a> {
        Batch {
            first: Some(first),
            jobs,
            expected,
            pending,
            deadline: Instant::now() + wait,
            taken: 0,
        }
    }

    /// While a write is expected, a batch waits for jobs that arrive later, and ends as soon
    /// as nothing more is expected.
    #[test]
    fn a_batch_waits_for_expected_writes() {
        let (tx, rx) = mpsc::channel();
        let expected = Arc::new(AtomicUsize::new(1));
        let sender = {
            let expected = expected.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(5));
                tx.send(Job::Batched(job())).unwrap();
                thread::sleep(Duration::from_millis(5));
                expected.fetch_sub(1, Ordering::AcqRel);
                tx
            })
        };
        let mut pending = None;
        let started = Instant::now();
        let taken = batch(job(), &rx, &expected, &mut pending, Duration::from_secs(60)).count();
        assert_eq!(taken, 2, "the job sent 5 ms later joins the batch");
        assert!(started.elapsed() >= Duration::from_millis(10));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ends when nothing is expected"
        );
        drop(sender.join().unwrap());
    }

    /// Nothing expected: a batch takes what is queued and does not wait. Expected writes that
    /// never come: it waits until its deadline, no longer. An exclusive job ends it.
    #[test]
    fn a_batch_waits_only_when_told_and_not_past_its_deadline() {
        let (tx, rx) = mpsc::channel();
        let nothing = AtomicUsize::new(0);
        tx.send(Job::Batched(job())).unwrap();
        let mut pending = None;
        let started = Instant::now();
        assert_eq!(
            batch(job(), &rx, &nothing, &mut pending, Duration::from_secs(60)).count(),
            2
        );
        assert!(started.elapsed() < Duration::from_secs(30));

        let never = AtomicUsize::new(1);
        let started = Instant::now();
        assert_eq!(
            batch(job(), &rx, &never, &mut pending, Duration::from_millis(20)).count(),
            1
        );
        assert!(started.elapsed() >= Duration::from_millis(20));

        tx.send(Job::Exclusive(Box::new(|_| {}))).unwrap();
        tx.send(Job::Batched(job())).unwrap();
        assert_eq!(
            batch(job(), &rx, &never, &mut pending, Duration::from_secs(60)).count(),
            1
        );
        assert!(matches!(pending, Some(Job::Exclusive(_))));
    }
}
