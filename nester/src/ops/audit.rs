//! The audit log: a page of it, itself recorded as read, and whether its chain holds (`nester
//! audit verify`'s answer), for the API and the admin page alike.

use serde::{Deserialize, Serialize};

use super::Internal;
use super::query::{Paging, QueryError, time};
use crate::clock::to_ms;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::db::audit::{Actor, AuditEntry, AuditQuery, Change};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only this actor: `user:NAME`, `cli:ACCOUNT`, `probe:ID`, `nester`.
    pub actor: Option<String>,
    /// Only this action, e.g. `user.role`, `sign_in.failure`, `probe.revoke`.
    pub action: Option<String>,
    /// Only from this client IP.
    pub ip: Option<String>,
    /// From this time on (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// Whether the chain holds, as `nester audit verify` would say now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChainState {
    pub intact: bool,
    /// Entries in the chain (when intact).
    pub entries: Option<i64>,
    /// The last signed checkpoint the chain was held against.
    pub checkpoint_seq: Option<i64>,
    pub checkpoint_time: Option<String>,
    /// The first entry that is not as written (when broken), and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
    pub chain: ChainState,
}

/// A page of the log, recorded as read by `actor`.
pub async fn read(
    db: &Db,
    dir: &DataDir,
    actor: Actor,
    f: AuditFilter,
) -> Result<AuditPage, QueryError> {
    let paging = Paging {
        limit: f.limit,
        cursor: f.cursor,
    };
    // An empty range (`to` not after `from`) finds nothing, as a filter would.
    let (from, to) = (
        time("from", f.from.as_deref())?,
        time("to", f.to.as_deref())?,
    );
    let limit = paging.limit()?;
    let query = AuditQuery {
        actor: f.actor.filter(|s| !s.is_empty()),
        action: f.action.filter(|s| !s.is_empty()),
        ip: f.ip.filter(|s| !s.is_empty()),
        from_ms: from.map(to_ms),
        to_ms: to.map(to_ms),
        before_seq: paging.cursor()?,
        limit,
    };
    let items = db.audit_entries(query.clone()).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    let read = Change::new("audit.read", "audit_log")
        .with("actor", &query.actor)
        .with("action", &query.action)
        .with("ip", &query.ip)
        .with("entries", items.len());
    db.audit(actor, read).await?;
    Ok(AuditPage {
        items,
        next_cursor,
        chain: chain_state(db, dir).await?,
    })
}

/// Whether the chain holds now, checked against the signed checkpoints.
pub async fn chain_state(db: &Db, dir: &DataDir) -> Result<ChainState, QueryError> {
    let checked = crate::audit::check(dir, db).await.map_err(Internal::from)?;
    Ok(match checked {
        Ok(ok) => ChainState {
            intact: true,
            entries: Some(ok.entries),
            checkpoint_seq: ok.checkpoint.as_ref().map(|c| c.0),
            checkpoint_time: ok.checkpoint.map(|c| c.1),
            broken_at: None,
            problem: None,
        },
        Err(broken) => ChainState {
            intact: false,
            entries: None,
            checkpoint_seq: None,
            checkpoint_time: None,
            broken_at: Some(broken.seq),
            problem: Some(broken.reason),
        },
    })
}
