//! Host certificates signed for harvester boxes: for which probe, key, names and addresses,
//! by which CA, until when. Each probe's newest is handed out again while it still fits, a
//! name another box's valid certificate holds is not given to a second box, and the host
//! keys of revoked probes are refused (`@revoked` for clients).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use super::audit::{Actor, Change};
use super::{Db, DbError};

/// A host certificate, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCertificate {
    pub serial: u64,
    pub probe_id: String,
    pub site: String,
    pub public_key: String,
    pub fingerprint: String,
    pub principals: Vec<String>,
    pub valid_after_ms: i64,
    pub valid_before_ms: i64,
    pub ca: String,
    /// One OpenSSH line.
    pub certificate: String,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HostCertificate> {
    let principals: String = r.get(5)?;
    Ok(HostCertificate {
        serial: r.get::<_, i64>(0)?.unsigned_abs(),
        probe_id: r.get(1)?,
        site: r.get(2)?,
        public_key: r.get(3)?,
        fingerprint: r.get(4)?,
        principals: principals.split(' ').map(str::to_string).collect(),
        valid_after_ms: r.get(6)?,
        valid_before_ms: r.get(7)?,
        ca: r.get(8)?,
        certificate: r.get(9)?,
    })
}

const COLUMNS: &str = "serial, probe_id, site, public_key, fingerprint, principals,
    valid_after_ms, valid_before_ms, ca, certificate";

impl Db {
    /// Records a host certificate just signed. Audited (`ssh.host_certificate_issue`).
    pub async fn record_host_certificate(
        &self,
        actor: Actor,
        cert: HostCertificate,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            tx.execute(
                &format!(
                    "INSERT INTO ssh_host_certificates ({COLUMNS}, issued_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    i64::try_from(cert.serial).unwrap_or(i64::MAX),
                    cert.probe_id,
                    cert.site,
                    cert.public_key,
                    cert.fingerprint,
                    cert.principals.join(" "),
                    cert.valid_after_ms,
                    cert.valid_before_ms,
                    cert.ca,
                    cert.certificate,
                    now
                ],
            )?;
            let change = Change::new(
                "ssh.host_certificate_issue",
                format!("ssh-host-certificate:{}", cert.serial),
            )
            .with("probe", &cert.probe_id)
            .with("principals", &cert.principals)
            .with("fingerprint", &cert.fingerprint)
            .with("ca", &cert.ca)
            .with("valid_before_ms", cert.valid_before_ms);
            Ok(((), Some(change)))
        })
        .await
    }

    /// The newest host certificate of `probe_id`.
    pub async fn latest_host_certificate(
        &self,
        probe_id: String,
    ) -> Result<Option<HostCertificate>, DbError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM ssh_host_certificates WHERE probe_id = ?1
                     ORDER BY issued_ms DESC, rowid DESC LIMIT 1"
                ))?
                .query_row([probe_id], row)
                .optional()?)
        })
        .await
    }

    /// The host keys of revoked probes that hold a host certificate still valid at `now_ms`:
    /// `@revoked` in `known_hosts`, never certified again.
    pub async fn revoked_host_keys(&self, now_ms: i64) -> Result<Vec<(String, String)>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT c.fingerprint, c.public_key FROM ssh_host_certificates c
                   JOIN probes p ON p.probe_id = c.probe_id
                 WHERE p.revoked_ms IS NOT NULL AND c.valid_before_ms > ?1
                 ORDER BY c.fingerprint",
            )?;
            let rows = stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Every probe's newest host certificate, by site.
    pub async fn latest_host_certificates(&self) -> Result<Vec<HostCertificate>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM ssh_host_certificates c
                 WHERE issued_ms = (SELECT max(issued_ms) FROM ssh_host_certificates
                                    WHERE probe_id = c.probe_id)
                 ORDER BY site, probe_id"
            ))?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The names and addresses in the newest host certificates of other probes, not revoked,
    /// still valid at `now_ms`.
    pub async fn host_principals_of_others(
        &self,
        probe_id: String,
        now_ms: i64,
    ) -> Result<BTreeSet<String>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.principals FROM ssh_host_certificates c
                   LEFT JOIN probes p ON p.probe_id = c.probe_id
                 WHERE c.probe_id != ?1 AND c.valid_before_ms > ?2 AND p.revoked_ms IS NULL
                   AND c.issued_ms = (SELECT max(issued_ms) FROM ssh_host_certificates
                                      WHERE probe_id = c.probe_id)",
            )?;
            let rows = stmt.query_map(params![probe_id, now_ms], |r| r.get::<_, String>(0))?;
            let mut taken = BTreeSet::new();
            for principals in rows {
                taken.extend(principals?.split(' ').map(str::to_string));
            }
            Ok(taken)
        })
        .await
    }
}
