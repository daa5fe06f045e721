//! The only place that runs SQL.
//!
//! One writer thread owns the only read-write connection; a few reader threads share the
//! read-only work. Callers hand a closure over and await its answer, so no SQLite call ever
//! blocks the async runtime. WAL journal, `synchronous=FULL` (an acknowledged report survives
//! a power cut), foreign keys on, numbered migrations from `migrations/`.
//!
//! The one exception to "never block": [`Db::version`] asks SQLite, on the caller's thread,
//! whether anything was committed. It reads the WAL index in shared memory and takes
//! microseconds.
//!
//! Group commit: [`Db::write_batched`] jobs that arrive while the writer is busy are run
//! together in one transaction, each inside its own savepoint (one failing job rolls back only
//! itself), and every caller hears back only after the shared commit is durable. One fsync
//! then covers many reports. While more reports are being verified on their way to the writer
//! ([`ExpectedWrite`]), a group commit waits for them a little (at most [`COMMIT_WAIT`]):
//! without that, a writer faster than verification commits one or two reports at a time, and
//! every commit costs an fsync and rewrites the pages the reports share.
//!
//! Checkpoints (copying the WAL back into the database file) run on a thread of their own, a
//! few times a second while there are commits, not inside the writer's commits: a page
//! written many times in that while is copied once. The writer finishes one itself only once
//! the WAL passes [`WAL_RESTART_PAGES`], so that it can start over.

mod acknowledgements;
mod alert_inputs;
pub mod alerts;
mod api_tokens;
pub mod audit;
pub mod backups;
mod bans;
mod enrollment;
mod history;
mod logins;
pub mod outbox;
mod reports;
mod retention;
mod rows;
mod sessions;
mod signed;
pub mod silences;
pub mod snapshot;
pub mod ssh_certificates;
pub mod ssh_hosts;
pub mod ssh_trust;
mod staging;
mod users;
mod wan;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};
use tokio::sync::oneshot;

use crate::clock::Clock;
pub(crate) use crate::clock::to_ms;
pub use alert_inputs::{FeedChange, ProbeStanding, WanSeries};
pub(crate) use rows::{millis, next_cursor, optional_millis, parsed, probe_exists, uuid};
use writer::{checkpoint_loop, fold, read_loop, write_loop};

pub use api_tokens::{ApiTokenInfo, NewApiToken, Scope, TokenOwner};
pub use bans::Ban;
pub use enrollment::{IssuedCert, TokenInfo, TokenRefusal, TokenState};
pub use history::{
    Change, ChangeFilter, ChangeKind, HostDetail, HostSummary, Interval, OpenPort, PortTimeline,
};
pub use logins::{Failures, LoginEvent, LoginOutcome};
pub use reports::{Gap, Inserted, Page, ProbeStatus, ProbeSummary, ReportQuery, ReportSummary};
pub use retention::{Policy, Pruned, Stats, TableStats};
pub use sessions::{NewSession, SessionInfo, SessionRow, Stage};
pub use signed::SignedReport;
pub use staging::FOLD_IDLE;
pub use users::{LoginUser, Role, UserChange, UserInfo};
pub use wan::{Resolution, WanPoint, summary as wan_summary};

const READERS: usize = 2;
/// The WAL file is cut back to this size when it starts over.
const WAL_KEEP_BYTES: i64 = 64 << 20;
/// A WAL this long (4 KiB pages) is checkpointed by the writer itself.
const WAL_RESTART_PAGES: i64 = 8 * 1024;
/// Longest a group commit waits for expected writes, from its first job.
const COMMIT_WAIT: Duration = Duration::from_millis(2);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database commit failed: {0}")]
    Commit(String),
    #[error("database content is damaged: {0}")]
    Corrupt(String),
    #[error("database worker is gone")]
    Closed,
}

type Exclusive = Box<dyn FnOnce(&mut Connection) + Send>;
/// Runs inside the group transaction; says whether it succeeded (if not, its savepoint is
/// rolled back) and what to tell its caller once the commit succeeded or failed. A job that
/// is dropped without running tells its caller the database is gone.
/// Jobs that store reports use the writer's memo of the probes' history too.
type Batched = Box<dyn FnOnce(&Connection, &mut history::Memo) -> (bool, Reply) + Send>;
type Reply = Box<dyn FnOnce(Result<(), &DbError>) + Send>;

enum Job {
    Exclusive(Exclusive),
    Batched(Batched),
}

/// A batched write on its way to the writer, from [`Db::expect_write`]. While any exists, a
/// group commit waits up to [`COMMIT_WAIT`] for more jobs, so that one fsync covers them.
/// Dropping it says the write will not come (the report was refused).
#[must_use = "the expectation ends when this is dropped"]
pub struct ExpectedWrite(Arc<AtomicUsize>);

impl Drop for ExpectedWrite {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Cheap to clone; all clones share the same worker threads.
#[derive(Clone)]
pub struct Db {
    writer: mpsc::Sender<Job>,
    readers: mpsc::Sender<Exclusive>,
    /// A read-only connection for one-row reads answered on the caller's thread
    /// ([`Db::version`], [`Db::probe_standing`]): they take microseconds, less than the two
    /// thread switches a trip through the reader pool costs.
    quick: Arc<Mutex<Connection>>,
    /// Batched writes on their way (see [`ExpectedWrite`]).
    expected: Arc<AtomicUsize>,
    token_owners: api_tokens::TokenOwners,
    /// The time every row is stamped with; tests move it.
    clock: Clock,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_reports.sql")),
        M::up(include_str!("migrations/0002_enrollment.sql")),
        M::up(include_str!("migrations/0003_drop_report_rows.sql")),
        M::up(include_str!("migrations/0004_compressed_reports.sql")),
        M::up(include_str!("migrations/0005_users.sql")),
        M::up(include_str!("migrations/0006_auth.sql")),
        M::up(include_str!("migrations/0007_history.sql")),
        M::up(include_str!("migrations/0008_report_parts.sql")),
        M::up(include_str!("migrations/0009_staged_keys.sql")),
        M::up(include_str!("migrations/0010_max_sequence.sql")),
        M::up(include_str!("migrations/0011_history_version.sql")),
        M::up(include_str!("migrations/0012_audit.sql")),
        M::up(include_str!("migrations/0013_bans.sql")),
        M::up(include_str!("migrations/0014_alerts.sql")),
        M::up(include_str!("migrations/0015_alert_lifecycle.sql")),
        M::up(include_str!("migrations/0016_notifications.sql")),
        M::up(include_str!("migrations/0017_cert_issuer.sql")),
        M::up(include_str!("migrations/0018_backups.sql")),
        M::up(include_str!("migrations/0019_ssh_certificates.sql")),
        M::up(include_str!("migrations/0020_ssh_hosts.sql")),
    ])
}

impl Db {
    /// Opens (creating if needed) and migrates the database, then starts the workers. Rows
    /// are stamped with the system clock.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with_clock(path, Clock::default())
    }

    /// [`Db::open`], stamping rows with `clock`.
    #[allow(
        clippy::expect_used,
        reason = "at start only: without its threads there is no database to serve"
    )]
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self, DbError> {
        let mut conn = Connection::open(path)?;
        // Retention frees pages; this hands them back to the file system. It must be set
        // before the first table exists, or be followed by a VACUUM.
        let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if auto_vacuum != 2 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            conn.execute_batch("VACUUM")?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
        configure(&conn)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        migrations().to_latest(&mut conn)?;
        // Keys staged before a stop (see `staging.rs`) are folded now.
        fold(&mut conn)?;

        let checkpointer = Connection::open(path)?;
        checkpointer.pragma_update(None, "synchronous", "FULL")?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(5))?;
        // The checkpointer does the copying. Under a steady stream of commits it never
        // finishes before the next one, and only a finished checkpoint lets the WAL start
        // over: past this many pages the writer finishes one itself, mostly copied already.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_RESTART_PAGES)?;
        let (committed, wakes) = mpsc::sync_channel::<()>(1);
        thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &wakes))
            .expect("the OS can start a database thread");
        let (writer, jobs) = mpsc::channel::<Job>();
        let expected = Arc::new(AtomicUsize::new(0));
        let writer_expects = expected.clone();
        thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || write_loop(conn, &jobs, &writer_expects, &committed))
            .expect("the OS can start a database thread");
        let read_only =
            || Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
        let (readers, jobs) = mpsc::channel::<Exclusive>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..READERS {
            let conn = read_only()?;
            configure(&conn)?;
            let jobs = jobs.clone();
            thread::Builder::new()
                .name("db-reader".into())
                .spawn(move || read_loop(conn, &jobs))
                .expect("the OS can start a database thread");
        }
        let quick = read_only()?;
        // A reader waits only while another connection recovers the WAL or holds the
        // database exclusively, and this one waits on an async worker: not for long.
        quick.busy_timeout(std::time::Duration::from_millis(250))?;
        Ok(Self {
            writer,
            readers,
            quick: Arc::new(Mutex::new(quick)),
            expected,
            token_owners: api_tokens::TokenOwners::default(),
            clock,
        })
    }

    /// The clock this handle stamps rows with, and that everything holding it reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A number that changes whenever anything is committed to the database, by this
    /// process or another (the CLI revoking a probe, say). What was read at one version is
    /// still true while the version stays the same.
    pub fn version(&self) -> Result<u64, DbError> {
        let version: i64 = self.quick_read(|conn| {
            Ok(conn
                .prepare_cached("PRAGMA data_version")?
                .query_row([], |r| r.get(0))?)
        })?;
        Ok(version as u64)
    }

    /// Runs `f`, a read of a row or two, on the caller's thread (see `quick`).
    fn quick_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        f(&*self.quick.lock().map_err(|_| DbError::Closed)?)
    }

    /// Runs `f` alone on the writer connection (it manages its own transaction).
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Exclusive(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        self.writer.send(job).map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)?
    }

    /// Runs `f` inside a group transaction shared with other batched writes; answers after
    /// the commit. `f` must not begin or end transactions. If it fails, its own changes are
    /// rolled back and the others' are kept.
    pub async fn write_batched<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        self.write_expected(move |conn, _| f(conn), None).await
    }

    /// Says a batched write is coming (a report is being verified): group commits wait a
    /// little for it until the guard is dropped or handed to [`Db::insert_report`].
    pub fn expect_write(&self) -> ExpectedWrite {
        self.expected.fetch_add(1, Ordering::AcqRel);
        ExpectedWrite(self.expected.clone())
    }

    /// [`Db::write_batched`], ending the expectation `expected` as the job is queued.
    async fn write_expected<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &mut history::Memo) -> Result<T, DbError> + Send + 'static,
        expected: Option<ExpectedWrite>,
    ) -> Result<T, DbError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Batched(Box::new(move |conn, memo| {
            let result = f(conn, memo);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit: Result<(), &DbError>| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(e) => Err(DbError::Commit(e.to_string())),
                });
            });
            (ok, reply)
        }));
        // Ended before the job is queued, so the writer never waits for the job it holds.
        drop(expected);
        self.writer.send(job).map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)?
    }

    /// Runs `f` on a read-only connection.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)?
    }
}

/// Page cache of each reader, in KiB (SQLite's default is 2 MiB): the pages that API reads
/// keep coming back to stay in memory on a database of a few GB.
const CACHE_KIB: i64 = 64 * 1024;

/// Page cache of the writer, in KiB. What ingest touches is small (the right edges of the
/// report trees, the staged keys, each probe's hosts and open ports, and each probe's leaf at
/// a fold): a few thousand pages at most. A larger cache costs at commit: SQLite walks all of
/// it whenever a B-tree balance has parked a page at the lock-byte page number (1 GiB), past
/// the end of a smaller file, which is about once per group commit.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Prepared statements kept per connection: the insert path alone runs about twenty, and
/// rusqlite's default of 16 would prepare some of them again for every report.
const STATEMENTS: usize = 64;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    /// An acknowledged report survives a power cut only if every commit syncs the WAL
    /// (`synchronous=FULL`; NORMAL would lose the last commits). A SIGKILL keeps the page
    /// cache, so no crash test would notice the difference: this asks the writer itself.
    #[tokio::test]
    async fn the_writer_commits_durably() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let (journal, synchronous) = db
            .write(|c| {
                let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let synchronous: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                Ok((journal, synchronous))
            })
            .await
            .unwrap();
        assert_eq!((journal.as_str(), synchronous), ("wal", 2), "2 is FULL");
    }

    /// Migration 9 rebuilds `reports` and moves its keys to `report_sequences`: every row
    /// stays, with its id, and reads find it by probe and sequence.
    #[tokio::test]
    async fn reports_survive_the_rebuild_of_migration_9() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 8).unwrap();
            conn.execute_batch(
                "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms)
                 VALUES ('00000000-0000-0000-0000-000000000001', 'kc', '1', 0);
                 INSERT INTO reports (rowid, report_id, probe_id, sequence, site, generated_ms,
                                      received_ms, signer_kid, hosts_up, open_ports, jws)
                 VALUES (7, '00000000-0000-0000-0000-00000000000a',
                         '00000000-0000-0000-0000-000000000001', 1, 'kc', 1000, 1001, 'k', 1, 2,
                         CAST('a.b.c' AS BLOB)),
                        (9, '00000000-0000-0000-0000-00000000000b',
                         '00000000-0000-0000-0000-000000000001', 3, 'kc', 2000, 2001, 'k', 1, 2,
                         CAST('d.e.f' AS BLOB));",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let (keys, jws): (Vec<(i64, i64, i64)>, Vec<u8>) = db
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT sequence, generated_ms, id FROM report_sequences ORDER BY 1",
                )?;
                let keys = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                let jws = c.query_row("SELECT jws FROM reports WHERE id = 9", [], |r| r.get(0))?;
                Ok((keys, jws))
            })
            .await
            .unwrap();
        assert_eq!(keys, [(1, 1000, 7), (3, 2000, 9)]);
        assert_eq!(jws, b"d.e.f");
        let probe = Uuid::from_u128(1);
        let page = db
            .probe_reports(
                probe,
                ReportQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        let sequences: Vec<u64> = page.items.iter().map(|r| r.sequence).collect();
        assert_eq!(sequences, [3, 1]);
        assert_eq!(
            db.report_jws(Uuid::from_u128(0xa)).await.unwrap().unwrap(),
            b"a.b.c"
        );
    }

    /// Migration 10 keeps each probe's highest sequence on its row, from the folded and the
    /// staged keys; a probe without reports has none.
    #[test]
    fn migration_10_finds_each_probes_highest_sequence() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 9).unwrap();
        conn.execute_batch(
            "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms)
             VALUES ('p1', 'kc', '1', 0), ('p2', 'kc', '1', 0), ('p3', 'kc', '1', 0);
             INSERT INTO report_sequences (probe_id, sequence, generated_ms, id)
             VALUES ('p1', 3, 0, 1), ('p1', 9, 0, 2), ('p2', 4, 0, 3);
             INSERT INTO report_sequences_staged (probe_id, sequence, generated_ms, id)
             VALUES ('p1', 5, 0, 4), ('p2', 6, 0, 5);",
        )
        .unwrap();
        migrations().to_version(&mut conn, 10).unwrap();
        let max: Vec<(String, Option<i64>)> = conn
            .prepare("SELECT probe_id, max_sequence FROM probes ORDER BY probe_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            max,
            [
                ("p1".to_string(), Some(9)),
                ("p2".to_string(), Some(6)),
                ("p3".to_string(), None)
            ]
        );
    }

    /// Migration 11's counter moves with every change to `hosts` and `port_intervals` (what
    /// the writer's memo mirrors), and with nothing else.
    #[test]
    fn migration_11_counts_changes_to_hosts_and_ports() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let version = |c: &Connection| -> i64 {
            c.query_row("SELECT n FROM history_version", [], |r| r.get(0))
                .unwrap()
        };
        conn.execute_batch(
            "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms)
             VALUES ('p', 's', '1', 0)",
        )
        .unwrap();
        assert_eq!(version(&conn), 0);
        conn.execute_batch(
            "INSERT INTO hosts (probe_id, address, os, first_seen_ms, up)
             VALUES ('p', '10.0.0.1', '{}', 0, 1)",
        )
        .unwrap();
        assert_eq!(version(&conn), 1);
        conn.execute_batch(
            "INSERT INTO port_intervals (host_id, protocol, port, opened_ms) VALUES (1, 'tcp', 22, 0);
             UPDATE port_intervals SET closed_ms = 5;
             UPDATE hosts SET up = 0;
             DELETE FROM port_intervals;",
        )
        .unwrap();
        assert_eq!(version(&conn), 5);
        conn.execute_batch(
            "INSERT INTO host_intervals (host_id, up_ms) VALUES (1, 0);
             UPDATE probes SET history_ms = 1;",
        )
        .unwrap();
        assert_eq!(version(&conn), 5);
    }

    /// The version moves with every commit: through the writer, and by another connection
    /// (another process, as the CLI is); reads leave it alone.
    #[tokio::test]
    async fn the_version_changes_with_every_commit_from_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(&path).unwrap();
        let v0 = db.version().unwrap();
        assert_eq!(db.version().unwrap(), v0);
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER)")?))
            .await
            .unwrap();
        let v1 = db.version().unwrap();
        assert_ne!(v1, v0);
        db.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(db.version().unwrap(), v1);
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO t VALUES (1)", [])
            .unwrap();
        assert_ne!(db.version().unwrap(), v1);
    }

    /// Concurrent batched writes share commits; a failing job leaves no trace, its neighbours
    /// in the same transaction all land.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_isolates_failing_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let jobs = (0..200).map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write_batched(move |c| {
                    c.execute("INSERT INTO t (n) VALUES (?)", [n])?;
                    if n % 7 == 0 {
                        return Err(DbError::Commit(format!("job {n} fails after writing")));
                    }
                    Ok(n)
                })
                .await
            })
        });
        let results = futures_util::future::join_all(jobs).await;
        let ok: Vec<i64> = results
            .into_iter()
            .filter_map(|r| r.unwrap().ok())
            .collect();
        assert_eq!(ok.len(), 200 - 29);
        let stored: Vec<i64> = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT n FROM t ORDER BY n")?;
                Ok(stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        let mut expected = ok.clone();
        expected.sort_unstable();
        assert_eq!(stored, expected);
    }
}
