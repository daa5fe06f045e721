//! Reading columns: times kept as Unix milliseconds, ids as text, values parsed from text;
//! and the paging every list shares.

use rusqlite::{Connection, OptionalExtension, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::DbError;

pub(crate) fn millis(row: &Row<'_>, i: usize) -> rusqlite::Result<OffsetDateTime> {
    let ms: i64 = row.get(i)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Integer, Box::new(e))
    })
}

/// A text column holding something `FromStr` (a role, a scope).
pub(crate) fn parsed<T: std::str::FromStr<Err = String>>(
    row: &Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

pub(crate) fn optional_millis(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(i)? {
        Some(_) => millis(row, i).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn probe_exists(conn: &Connection, probe_id: Uuid) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM probes WHERE probe_id = ?")?
        .query_row([probe_id.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Cuts a page fetched with `limit + 1` rows down to `limit`; the cursor is the last item's
/// key when more follow.
pub(crate) fn next_cursor<T>(
    items: &mut Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> String,
) -> Option<String> {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(key)
    } else {
        None
    }
}

pub(crate) fn uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(i)?;
    Uuid::try_parse(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}
