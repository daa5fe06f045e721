//! What the nester knows of the backups it pushed: when, how big, and when each was last
//! verified (downloaded and checked end to end) and with what result.

use rusqlite::{OptionalExtension, params};

use super::{Db, DbError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub name: String,
    pub bytes: i64,
    pub pushed_ms: i64,
    pub verified_ms: Option<i64>,
    pub verify_error: Option<String>,
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<BackupRecord> {
    Ok(BackupRecord {
        name: r.get(0)?,
        bytes: r.get(1)?,
        pushed_ms: r.get(2)?,
        verified_ms: r.get(3)?,
        verify_error: r.get(4)?,
    })
}

impl Db {
    pub async fn record_backup(&self, name: String, bytes: u64) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO backups (name, bytes, pushed_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET bytes = ?2, pushed_ms = ?3",
                params![name, i64::try_from(bytes).unwrap_or(i64::MAX), now],
            )?;
            Ok(())
        })
        .await
    }

    /// Records a verification of backup `name`: `Ok` held, `Err` why not.
    pub async fn record_verification(
        &self,
        name: String,
        outcome: Result<(), String>,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        self.write(move |conn| {
            conn.execute(
                "UPDATE backups SET verified_ms = ?2, verify_error = ?3 WHERE name = ?1",
                params![name, now, outcome.err()],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets backups deleted from the server.
    pub async fn forget_backup(&self, name: String) -> Result<(), DbError> {
        self.write(move |conn| {
            conn.execute("DELETE FROM backups WHERE name = ?", [name])?;
            Ok(())
        })
        .await
    }

    /// Every backup recorded, newest first.
    pub async fn backups(&self) -> Result<Vec<BackupRecord>, DbError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT name, bytes, pushed_ms, verified_ms, verify_error FROM backups
                 ORDER BY name DESC",
            )?;
            let rows = statement.query_map([], record)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The backup recorded as `name`, if any.
    pub async fn backup(&self, name: String) -> Result<Option<BackupRecord>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT name, bytes, pushed_ms, verified_ms, verify_error FROM backups
                     WHERE name = ?",
                    [name],
                    record,
                )
                .optional()?)
        })
        .await
    }
}
