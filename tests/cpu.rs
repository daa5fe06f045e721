//! CPU time used by the benchmark process: a steadier figure than a rate on a noisy machine.

use anyhow::Context;

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
