//! CPU time used by the benchmark process: a steadier figure than a rate on a noisy machine.

use std::time::Instant;

use anyhow::Context;

/// Items (reports) per second, and the process's CPU time per item in µs: all threads, so
/// clients in the same process count too.
#[derive(Clone, Copy)]
pub struct Rate {
    pub per_s: f64,
    pub cpu_us: f64,
}

impl Rate {
    /// CPU time over wall time: how many cores the process kept busy.
    pub fn busy_cores(&self) -> f64 {
        self.cpu_us * self.per_s / 1e6
    }
}

/// The median of the figures of several rounds (the upper one of an even count).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    assert!(!v.is_empty(), "a median of no rounds");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Wall-clock and CPU time from the start of a stretch of work.
pub struct Meter {
    started: Instant,
    cpu: f64,
}

impl Meter {
    pub fn start() -> anyhow::Result<Self> {
        Ok(Self {
            cpu: seconds()?,
            started: Instant::now(),
        })
    }

    /// The rate of `items` done since the start.
    pub fn rate(&self, items: usize) -> anyhow::Result<Rate> {
        let elapsed = self.started.elapsed().as_secs_f64();
        Ok(Rate {
            per_s: items as f64 / elapsed,
            cpu_us: (seconds()? - self.cpu) * 1e6 / items as f64,
        })
    }
}

/// This process's CPU time so far (user and system, all threads), in seconds; from
/// `/proc/self/stat`, at the kernel's tick resolution (10 ms).
pub fn seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unreadable /proc/self/stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of proc(5), in ticks of 1/100 s on Linux.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// The CPU time one thread of this process has used so far, in µs; from
/// `/proc/self/task/<tid>/schedstat`, at nanosecond resolution.
pub fn thread_us(tid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .with_context(|| format!("thread {tid} has ended"))?;
    let ns: u64 = stat
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?;
    Ok(ns as f64 / 1000.0)
}

/// The ids of this process's threads named `name`, in order.
pub fn threads_named(name: &str) -> anyhow::Result<Vec<u32>> {
    let mut tids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let path = entry?.path();
        // A thread may end between the listing and the read.
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim_end() == name {
            tids.push(
                path.file_name()
                    .context("task")?
                    .to_string_lossy()
                    .parse()?,
            );
        }
    }
    tids.sort_unstable();
    Ok(tids)
}
