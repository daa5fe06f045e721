//! What the KRL carries and who holds it: revoked certificates (in `ssh_certificates`) and
//! keys revoked outright, the SSH trust's version (it rises with every revocation and every
//! CA rotation's start and end), and which version each harvester fetched and holds.

use rusqlite::{Transaction, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis};

/// Everything revoked, for the KRL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    pub version: u64,
    /// Revoked certificates: their CA's fingerprint and serial.
    pub serials: Vec<(String, u64)>,
    /// Keys revoked outright, OpenSSH format.
    pub keys: Vec<String>,
}

/// A key revoked outright.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevokedKey {
    pub fingerprint: String,
    pub public_key: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    pub revoked_by: String,
}

/// A harvester's standing with the SSH trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub probe_id: String,
    pub site: String,
    /// The version it was last given.
    pub served_version: u64,
    /// The version it said it had installed, when it did.
    pub held_version: Option<u64>,
    pub seen_ms: i64,
    /// It said it holds less than it was given at an earlier fetch: installing failed.
    pub behind: bool,
}

/// Raises the trust's version, inside the transaction that changed the trust.
pub(super) fn bump(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute("UPDATE ssh_trust_version SET version = version + 1", [])?;
    Ok(())
}

fn unsigned(n: i64) -> u64 {
    n.unsigned_abs()
}

impl Db {
    /// The trust's version alone (a one-row read, for status pages and metrics).
    pub async fn ssh_trust_version(&self) -> Result<u64, DbError> {
        self.read(|conn| {
            let version: i64 =
                conn.query_row("SELECT version FROM ssh_trust_version", [], |r| r.get(0))?;
            Ok(unsigned(version))
        })
        .await
    }

    /// Everything revoked, and the trust's version, read together.
    pub async fn ssh_revocations(&self) -> Result<Revocations, DbError> {
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let version: i64 =
                tx.query_row("SELECT version FROM ssh_trust_version", [], |r| r.get(0))?;
            let serials = tx
                .prepare_cached(
                    "SELECT ca, serial FROM ssh_certificates WHERE revoked_ms IS NOT NULL
                     ORDER BY serial",
                )?
                .query_map([], |r| Ok((r.get(0)?, unsigned(r.get(1)?))))?
                .collect::<Result<_, _>>()?;
            let keys = tx
                .prepare_cached("SELECT public_key FROM ssh_revoked_keys ORDER BY fingerprint")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(Revocations {
                version: unsigned(version),
                serials,
                keys,
            })
        })
        .await
    }

    /// Revokes a key outright; `false` when it already was. Audited (`ssh.key_revoke`).
    pub async fn revoke_ssh_key(
        &self,
        actor: Actor,
        fingerprint: String,
        public_key: String,
        reason: String,
    ) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let by = actor.name.clone();
        self.audited(actor, move |tx| {
            let done = tx.execute(
                "INSERT INTO ssh_revoked_keys (fingerprint, public_key, reason, revoked_ms,
                   revoked_by) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![fingerprint, public_key, reason, now, by],
            )? == 1;
            if done {
                bump(tx)?;
            }
            let change = Change::new("ssh.key_revoke", format!("ssh-key:{fingerprint}"))
                .with("reason", &reason);
            Ok((done, done.then_some(change)))
        })
        .await
    }

    /// Whether the key with this fingerprint is revoked outright.
    pub async fn ssh_key_revoked(&self, fingerprint: String) -> Result<bool, DbError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM ssh_revoked_keys WHERE fingerprint = ?1")?
                .exists([fingerprint])?)
        })
        .await
    }

    /// Keys revoked outright, newest first.
    pub async fn ssh_revoked_keys(&self) -> Result<Vec<RevokedKey>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT fingerprint, public_key, reason, revoked_ms, revoked_by
                 FROM ssh_revoked_keys ORDER BY revoked_ms DESC, fingerprint",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(RevokedKey {
                    fingerprint: r.get(0)?,
                    public_key: r.get(1)?,
                    reason: r.get(2)?,
                    revoked_at: millis(r, 3)?,
                    revoked_by: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Records a change of the SSH CAs (a rotation's start or end): audited, and the trust's
    /// version rises.
    pub async fn ssh_trust_changed(&self, actor: Actor, change: Change) -> Result<(), DbError> {
        self.audited(actor, move |tx| {
            bump(tx)?;
            Ok(((), Some(change)))
        })
        .await
    }

    /// Records that `probe_id` was served trust `served` and holds `held` (when it said): a
    /// fetch gives both (`held` none: nothing installed), a host certificate request only
    /// `held`. Holding less than it was given before marks it `behind`.
    pub async fn record_ssh_trust_holder(
        &self,
        probe_id: String,
        site: String,
        served: Option<u64>,
        held: Option<u64>,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let signed = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let (served, held) = (signed(served), signed(held));
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO ssh_trust_holders (probe_id, site, served_version, held_version,
                   seen_ms) VALUES (?1, ?2, coalesce(?3, 0), ?4, ?5)
                 ON CONFLICT (probe_id) DO UPDATE SET site = excluded.site,
                   served_version = coalesce(?3, served_version),
                   held_version = coalesce(?4, held_version), seen_ms = excluded.seen_ms,
                   behind = CASE WHEN ?3 IS NULL AND ?4 IS NULL THEN behind
                                 ELSE coalesce(?4, -1) < served_version END",
            )?
            .execute(params![probe_id, site, served, held, now])?;
            Ok(())
        })
        .await
    }

    /// Every harvester that ever fetched the SSH trust, by site.
    pub async fn ssh_trust_holders(&self) -> Result<Vec<Holder>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT probe_id, site, served_version, held_version, seen_ms, behind
                 FROM ssh_trust_holders ORDER BY site, probe_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Holder {
                    probe_id: r.get(0)?,
                    site: r.get(1)?,
                    served_version: unsigned(r.get(2)?),
                    held_version: r.get::<_, Option<i64>>(3)?.map(unsigned),
                    seen_ms: r.get(4)?,
                    behind: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
