//! Hosts: search across every site.

use super::query::{Paging, QueryError, bad_query};
use crate::db::{Db, HostSummary, Page};

/// Longest search text.
pub const MAX_QUERY: usize = 256;

/// Hosts whose name or address contains `q`, ignoring case, across every site.
pub async fn find(db: &Db, q: &str, paging: Paging) -> Result<Page<HostSummary>, QueryError> {
    let q = q.trim();
    if q.is_empty() || q.chars().count() > MAX_QUERY {
        return Err(bad_query(format!(
            "`q` must be 1 to {MAX_QUERY} characters"
        )));
    }
    Ok(db
        .search_hosts(q.to_string(), paging.limit()?, paging.cursor()?)
        .await?)
}
