//! The audit log, hash-chained: each entry's `hash` is SHA-256 of the previous entry's hash
//! and of the entry itself in a canonical form ([`canonical`]), so changing, inserting,
//! deleting or reordering an entry breaks every hash after it. [`Db::audited`] is the only
//! way in: the change and its entry are written in one transaction, and when the entry cannot
//! be written the change is not made (fail closed). Signed checkpoints of the chain's head,
//! kept out of the database, catch a cut tail or a rebuilt chain (`crate::audit`).

use std::net::IpAddr;

use aws_lc_rs::digest;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{Db, DbError, millis};

/// Who did something, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `user:NAME`, `probe:ID`, `cli:ACCOUNT`, or `nester` for what the server does itself.
    pub name: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    pub fn user(username: &str, ip: Option<IpAddr>) -> Self {
        Self {
            name: format!("user:{username}"),
            ip,
        }
    }

    pub fn probe(probe_id: uuid::Uuid, ip: IpAddr) -> Self {
        Self {
            name: format!("probe:{probe_id}"),
            ip: Some(ip),
        }
    }

    /// The nester itself (a session found expired, a scheduled job).
    pub fn server() -> Self {
        Self {
            name: "nester".into(),
            ip: None,
        }
    }

    /// An administrator at the command line: the account they are logged in as.
    pub fn cli() -> Self {
        let account = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            name: format!("cli:{account}"),
            ip: None,
        }
    }
}

/// One change to record: what was done, to what, with what details.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: &'static str,
    pub target: String,
    pub details: Value,
}

impl Change {
    pub fn new(action: &'static str, target: impl Into<String>) -> Self {
        Self {
            action,
            target: target.into(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(
                key.into(),
                serde_json::to_value(value).unwrap_or(Value::Null),
            );
        }
        self
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_ip: Option<String>,
    /// Canonical JSON (keys sorted), as hashed.
    pub details: String,
    /// SHA-256 chain hash, hex.
    pub hash: String,
}

/// The chain's starting point: what entry 1 chains from.
pub const GENESIS: [u8; 32] = [0; 32];

/// The bytes an entry is hashed as: a JSON array of its fields in a fixed order.
pub fn canonical(
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    target: &str,
    source_ip: Option<&str>,
    details: &str,
) -> Vec<u8> {
    serde_json::to_vec(&(seq, at_ms, actor, action, target, source_ip, details)).unwrap_or_default()
}

pub fn chain_hash(prev: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(canonical);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The last entry's sequence number and hash; `(0, GENESIS)` for an empty log.
pub fn head(conn: &Connection) -> Result<(i64, Vec<u8>), DbError> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec())))
}

/// Appends `change` by `actor` at `at_ms`, chained to the current head. Call it inside the
/// transaction of the change it records.
pub fn append(
    conn: &Connection,
    at_ms: i64,
    actor: &Actor,
    change: &Change,
) -> Result<i64, DbError> {
    let (last, prev) = head(conn)?;
    let seq = last + 1;
    let details = change.details.to_string();
    let ip = actor.ip.map(|ip| ip.to_string());
    let bytes = canonical(
        seq,
        at_ms,
        &actor.name,
        change.action,
        &change.target,
        ip.as_deref(),
        &details,
    );
    let hash = chain_hash(&prev, &bytes);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at_ms, actor, action, target, source_ip, details, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        seq,
        at_ms,
        actor.name,
        change.action,
        change.target,
        ip,
        details,
        hash.to_vec()
    ])?;
    Ok(seq)
}

/// One row as stored, for verification: nothing recomputed.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_ip: Option<String>,
    pub details: String,
    pub hash: Vec<u8>,
}

impl RawEntry {
    pub fn canonical(&self) -> Vec<u8> {
        canonical(
            self.seq,
            self.at_ms,
            &self.actor,
            &self.action,
            &self.target,
            self.source_ip.as_deref(),
            &self.details,
        )
    }
}

/// Which entries to list: newest first, optionally filtered.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub ip: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Entries below this sequence number (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

impl Db {
    /// Runs `f` and records what it changed, in one transaction: `f` returns its value and
    /// the change to record (`None` when it changed nothing). If the entry cannot be written,
    /// nothing `f` did is kept and the caller gets the error.
    pub async fn audited<T: Send + 'static>(
        &self,
        actor: Actor,
        f: impl FnOnce(&Transaction) -> Result<(T, Option<Change>), DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let clock = self.clock.clone();
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let (value, change) = f(&tx)?;
            if let Some(change) = change {
                append(&tx, clock.now_ms(), &actor, &change)?;
            }
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Records `change` alone (a sign-in attempt, reading the log itself).
    pub async fn audit(&self, actor: Actor, change: Change) -> Result<(), DbError> {
        self.audited(actor, move |_| Ok(((), Some(change)))).await
    }

    /// Every entry in order, as stored, in one read transaction (a consistent snapshot).
    pub async fn audit_chain(&self) -> Result<Vec<RawEntry>, DbError> {
        self.read(|conn| Ok(read_chain(conn)?)).await
    }

    /// The head now: the last sequence number and its hash.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), DbError> {
        self.read(|conn| head(conn)).await
    }

    /// Entries matching `q`, newest first.
    pub async fn audit_entries(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at_ms, actor, action, target, source_ip, details, hash
                 FROM audit_log
                 WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
                   AND (?3 IS NULL OR source_ip = ?3)
                   AND (?4 IS NULL OR at_ms >= ?4) AND (?5 IS NULL OR at_ms < ?5)
                   AND (?6 IS NULL OR seq < ?6)
                 ORDER BY seq DESC LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![
                    q.actor,
                    q.action,
                    q.ip,
                    q.from_ms,
                    q.to_ms,
                    q.before_seq,
                    q.limit
                ],
                |r| {
                    let hash: Vec<u8> = r.get(7)?;
                    Ok(AuditEntry {
                        seq: r.get(0)?,
                        at: millis(r, 1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        target: r.get(4)?,
                        source_ip: r.get(5)?,
                        details: r.get(6)?,
                        hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// The whole audit chain, in order, read in one transaction.
pub fn read_chain(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<RawEntry>> {
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare(
        "SELECT seq, at_ms, actor, action, target, source_ip, details, hash
         FROM audit_log ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(RawEntry {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                source_ip: r.get(5)?,
                details: r.get(6)?,
                hash: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
