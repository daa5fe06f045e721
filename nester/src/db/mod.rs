//! The only place that runs SQL.
//!
//! One writer thread owns the only read-write connection; a few reader threads share the
//! read-only work. Callers hand a closure over and await its answer, so no SQLite call ever
//! blocks the async runtime. WAL journal, `synchronous=FULL` on the writer (an acknowledged
//! report survives a power cut), foreign keys on, numbered migrations from `migrations/`.

mod reports;

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};
use tokio::sync::oneshot;

pub use reports::{Inserted, Page, ProbeSummary, ReportSummary};

const READERS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("database worker is gone")]
    Closed,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Cheap to clone; all clones share the same worker threads.
#[derive(Clone)]
pub struct Db {
    writer: mpsc::Sender<Job>,
    readers: mpsc::Sender<Job>,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("migrations/0001_reports.sql"))])
}

impl Db {
    /// Opens (creating if needed) and migrates the database, then starts the workers.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        configure(&conn)?;
        migrations().to_latest(&mut conn)?;

        let (writer, jobs) = mpsc::channel::<Job>();
        spawn_worker("db-writer", conn, Arc::new(Mutex::new(jobs)));
        let (readers, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..READERS {
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            configure(&conn)?;
            spawn_worker("db-reader", conn, jobs.clone());
        }
        Ok(Self { writer, readers })
    }

    /// Runs `f` on the writer connection.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        call(&self.writer, f).await
    }

    /// Runs `f` on a read-only connection.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        call(&self.readers, f).await
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

fn spawn_worker(name: &str, mut conn: Connection, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
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
        })
        .expect("the OS can start a database thread");
}

async fn call<T: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    let (tx, rx) = oneshot::channel();
    jobs.send(Box::new(move |conn| {
        let _ = tx.send(f(conn));
    }))
    .map_err(|_| DbError::Closed)?;
    rx.await.map_err(|_| DbError::Closed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }
}
