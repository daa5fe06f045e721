//! Reads: what every list shares (one paging scheme, `limit` and an opaque `cursor`, and RFC
//! 3339 times), each refused saying what is wrong, and the error of a read.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Internal, Kind, Refused};
use crate::db::DbError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// Why a read found nothing to give.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter out of bounds or unreadable (`bad_query`).
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<DbError> for QueryError {
    fn from(e: DbError) -> Self {
        Self::Internal(e.into())
    }
}

impl Refused for QueryError {
    fn kind(&self) -> Kind {
        match self {
            Self::Bad(_) => Kind::Invalid,
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Bad(_) => "bad_query",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

pub fn bad_query(message: impl Into<String>) -> QueryError {
    QueryError::Bad(message.into())
}

/// Paging: `limit` (1-500, default 50) and `cursor` (the `next_cursor` of the previous page,
/// opaque). Each query type declares the two fields itself: serde cannot flatten numbers out
/// of a query string.
#[derive(Debug, Default)]
pub struct Paging {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> Result<u32, QueryError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(bad_query(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )))
        }
    }

    /// The cursor, which every list makes from a number.
    pub fn cursor<T: std::str::FromStr>(&self) -> Result<Option<T>, QueryError> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|_| bad_query(format!("invalid cursor `{c}`")))
            })
            .transpose()
    }
}

/// An RFC 3339 time parameter.
pub fn time(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, QueryError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                bad_query(format!(
                    "`{name}` must be an RFC 3339 time such as 2026-11-21T08:00:00Z, not `{v}`"
                ))
            })
        })
        .transpose()
}

/// `from` and `to` with `from` before `to`.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), QueryError> {
    let (from, to) = (time("from", from)?, time("to", to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(bad_query("`from` must be before `to`"));
    }
    Ok((from, to))
}
