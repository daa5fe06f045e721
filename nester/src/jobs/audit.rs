//! The audit checkpoints job: signs a checkpoint of the audit chain's head when it moved, at
//! most every period (a minute in service) and as soon as [`CHECKPOINT_ENTRIES`] entries are
//! unsigned, and once more at shutdown. Each goes to a file outside the database.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::audit::{CheckpointKey, checkpoint};
use crate::job::{Job, Pace, Work};
use crate::state::AppState;

/// Unsigned entries that call for a checkpoint without waiting for the period.
pub const CHECKPOINT_ENTRIES: i64 = 100;

pub fn job(state: AppState, key: CheckpointKey, checkpoints: PathBuf, every: Duration) -> Job {
    let signed = match checkpoint::read_all(&checkpoints) {
        Ok(all) => all.last().map_or(-1, |c| c.seq),
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "cannot read the audit checkpoints"
            );
            -1
        }
    };
    let work = Checkpoints {
        state,
        key,
        checkpoints,
        every,
        signed,
        last_time: Instant::now(),
    };
    // The head is looked at often; it is signed only when due.
    Job::new(
        "audit-checkpoints",
        Duration::from_millis(500).min(every),
        work,
    )
    .at_start()
}

struct Checkpoints {
    state: AppState,
    key: CheckpointKey,
    checkpoints: PathBuf,
    every: Duration,
    /// The sequence number of the last entry signed (-1: none).
    signed: i64,
    last_time: Instant,
}

impl Checkpoints {
    fn write(&mut self, head: (i64, Vec<u8>)) {
        let time = crate::clock::rfc3339(self.state.clock.now());
        let signed = self.key.sign(head.0, &head.1, &time);
        match checkpoint::append(&self.checkpoints, &signed) {
            Ok(()) => self.signed = head.0,
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot write an audit checkpoint"),
        }
    }
}

impl Work for Checkpoints {
    fn tick(&mut self) -> BoxFuture<'_, anyhow::Result<Pace>> {
        Box::pin(async {
            let head = self.state.db.audit_head().await?;
            let unsigned = head.0 - self.signed;
            if unsigned > 0
                && (unsigned >= CHECKPOINT_ENTRIES || self.last_time.elapsed() >= self.every)
            {
                self.write(head);
                self.last_time = Instant::now();
            }
            Ok(Pace::Period)
        })
    }

    fn finish(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if let Ok(head) = self.state.db.audit_head().await
                && head.0 > self.signed
            {
                self.write(head);
            }
        })
    }
}
