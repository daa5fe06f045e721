//! The durable spool: every signed report is on disk before any delivery attempt, and leaves
//! only once the nester has acknowledged it.
//!
//! One file per report, named by its zero-padded sequence number, so name order is
//! oldest-first. Writes go to a `.tmp` file that is fsynced, renamed and its directory fsynced;
//! a crash leaves either the whole report or only a `.tmp` (removed at the next open).
//! Reports the nester refused for good move to `rejected/` for an operator to read.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::Deserialize;

use crate::state::{create_dir, write_atomically};

const EXTENSION: &str = "jws";

/// What to do when a new report would push the spool past its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    /// Keep every unsent report; produce no new one until there is room (counted, logged).
    #[default]
    Pause,
    /// Delete the oldest unsent reports to make room (counted, logged; the nester sees gaps).
    DropOldest,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub sequence: u64,
    pub bytes: u64,
    pub written: SystemTime,
}

/// Depth, size and age of the spool.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub reports: usize,
    pub bytes: u64,
    pub oldest: Option<SystemTime>,
}

impl Spool {
    pub fn open(dir: PathBuf, max_bytes: u64) -> anyhow::Result<Self> {
        create_dir(&dir)?;
        create_dir(&dir.join("rejected"))?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        Ok(Self { dir, max_bytes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Unsent reports, oldest first.
    pub fn pending(&self) -> anyhow::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read {}", self.dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != EXTENSION) {
                continue;
            }
            let Some(sequence) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
            else {
                continue;
            };
            let meta = entry.metadata()?;
            entries.push(Entry {
                path,
                sequence,
                bytes: meta.len(),
                written: meta.modified()?,
            });
        }
        entries.sort_unstable_by_key(|e| e.sequence);
        Ok(entries)
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        let pending = self.pending()?;
        Ok(Usage {
            reports: pending.len(),
            bytes: pending.iter().map(|e| e.bytes).sum(),
            oldest: pending.first().map(|e| e.written),
        })
    }

    /// Whether a report of `bytes` more fits under the cap.
    pub fn has_room(&self, bytes: u64) -> anyhow::Result<bool> {
        Ok(self.usage()?.bytes + bytes <= self.max_bytes)
    }

    /// Deletes the oldest reports until `bytes` more fit; returns how many were deleted.
    pub fn drop_oldest_for(&self, bytes: u64) -> anyhow::Result<u64> {
        let mut dropped = 0;
        let mut used = self.usage()?.bytes;
        for entry in self.pending()? {
            if used + bytes <= self.max_bytes {
                break;
            }
            self.remove(&entry)?;
            used -= entry.bytes;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Writes a report durably; it is in the spool once this returns.
    pub fn put(&self, sequence: u64, jws: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{sequence:020}.{EXTENSION}"));
        write_atomically(&path, jws, 0o600)?;
        Ok(path)
    }

    pub fn read(&self, entry: &Entry) -> anyhow::Result<String> {
        fs::read_to_string(&entry.path)
            .with_context(|| format!("cannot read {}", entry.path.display()))
    }

    /// Removes an acknowledged report, durably.
    pub fn remove(&self, entry: &Entry) -> anyhow::Result<()> {
        fs::remove_file(&entry.path)
            .with_context(|| format!("cannot remove {}", entry.path.display()))?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Moves a report the nester refused for good out of the queue.
    pub fn reject(&self, entry: &Entry) -> anyhow::Result<PathBuf> {
        let target = self.dir.join("rejected").join(
            entry
                .path
                .file_name()
                .context("spool entry without a name")?,
        );
        fs::rename(&entry.path, &target)?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(target)
    }

    pub fn rejected(&self) -> anyhow::Result<usize> {
        Ok(fs::read_dir(self.dir.join("rejected"))?.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_first_and_crash_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 1 << 20).unwrap();
        for seq in [10, 2, 33] {
            spool.put(seq, format!("report {seq}").as_bytes()).unwrap();
        }
        fs::write(spool.dir().join("00000000000000000040.tmp"), "torn").unwrap();
        let spool = Spool::open(dir.path().join("spool"), 1 << 20).unwrap();
        let order: Vec<u64> = spool
            .pending()
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(order, [2, 10, 33]);
        assert!(!spool.dir().join("00000000000000000040.tmp").exists());
        let first = &spool.pending().unwrap()[0];
        assert_eq!(spool.read(first).unwrap(), "report 2");
        spool.remove(first).unwrap();
        assert_eq!(spool.usage().unwrap().reports, 2);
    }

    #[test]
    fn the_cap_is_enforced_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool"), 100).unwrap();
        spool.put(1, &[b'a'; 40]).unwrap();
        spool.put(2, &[b'b'; 40]).unwrap();
        assert!(spool.has_room(20).unwrap());
        assert!(!spool.has_room(21).unwrap());
        assert_eq!(spool.drop_oldest_for(40).unwrap(), 1);
        let left: Vec<u64> = spool
            .pending()
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(left, [2]);
    }
}
