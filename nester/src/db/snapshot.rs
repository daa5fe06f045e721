//! A database file apart from the served one, for backups: a consistent copy of it made
//! while it is written, and what a copy holds (its census, its integrity, its audit chain),
//! read to put in a backup's manifest and to check a backup against it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use super::audit::{GENESIS, RawEntry, read_chain};

/// What a database holds, as a backup's manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    pub schema_version: i64,
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
    /// The audit chain's head: its sequence number and hash.
    pub audit_seq: i64,
    pub audit_head: Vec<u8>,
}

/// A consistent copy of the database at `from`, made while it is written: SQLite's online
/// backup in one step, which reads in one transaction (in WAL mode the writer goes on; in
/// several steps every write would restart it). The copy is not synced: it lives only until
/// it is compressed, so most of it never needs to reach the disk, where its writing would
/// hold up ingest's syncs. (It kept ingest moving better than `VACUUM INTO`:
/// docs/benchmarks.md.)
pub fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", from.display()))?;
    let mut copy =
        Connection::open(to).with_context(|| format!("cannot create {}", to.display()))?;
    copy.pragma_update(None, "synchronous", "OFF")?;
    let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            // Another connection holds a lock a moment (a checkpoint's): try again.
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => bail!("the database stayed locked for 10 minutes"),
        }
    }
}

/// A copy of a database, opened to be read.
pub struct Snapshot(Connection);

impl Snapshot {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self(Connection::open(path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    }

    /// `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity(&self) -> anyhow::Result<String> {
        Ok(self
            .0
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    pub fn census(&self) -> anyhow::Result<Census> {
        let conn = &self.0;
        let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut tables = BTreeMap::new();
        for name in names {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |r| {
                r.get(0)
            })?;
            tables.insert(name, n);
        }
        let (audit_seq, audit_head) = conn
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or((0, GENESIS.to_vec()));
        Ok(Census {
            schema_version,
            tables,
            audit_seq,
            audit_head,
        })
    }

    /// Every audit entry, oldest first.
    pub fn audit_chain(&self) -> anyhow::Result<Vec<RawEntry>> {
        Ok(read_chain(&self.0)?)
    }
}
