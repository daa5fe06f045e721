//! SSH user certificates the nester issued: to whom, for which key and principals, for how
//! long, asked from where; and their revocation, which the KRL served to harvesters
//! carries. Issuing and revoking are audited.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SshCertificate {
    /// Random, below 2^53 (exact in JSON).
    pub serial: u64,
    pub username: String,
    /// What sshd logs for each login with it.
    pub key_id: String,
    pub principals: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_before: OffsetDateTime,
    /// The certified key's SHA256 fingerprint.
    pub fingerprint: String,
    /// The signing CA's SHA256 fingerprint.
    pub ca: String,
    pub source_ip: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<String>,
}

/// A certificate just signed, to record.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: u64,
    pub user_id: i64,
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after_ms: i64,
    pub valid_before_ms: i64,
    pub public_key: String,
    pub fingerprint: String,
    pub ca: String,
}

const COLUMNS: &str = "c.serial, u.username, c.key_id, c.principals, c.valid_after_ms,
    c.valid_before_ms, c.fingerprint, c.ca, c.source_ip, c.issued_ms, c.revoked_ms,
    c.revoked_by, c.user_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(SshCertificate, i64)> {
    let serial: i64 = r.get(0)?;
    let principals: String = r.get(3)?;
    Ok((
        SshCertificate {
            serial: serial.unsigned_abs(),
            username: r.get(1)?,
            key_id: r.get(2)?,
            principals: principals.split(' ').map(str::to_string).collect(),
            valid_after: millis(r, 4)?,
            valid_before: millis(r, 5)?,
            fingerprint: r.get(6)?,
            ca: r.get(7)?,
            source_ip: r.get(8)?,
            issued_at: millis(r, 9)?,
            revoked_at: r
                .get::<_, Option<i64>>(10)?
                .map(|_| millis(r, 10))
                .transpose()?,
            revoked_by: r.get(11)?,
        },
        r.get(12)?,
    ))
}

impl Db {
    /// Records a certificate just signed. Audited (`ssh.certificate_issue`).
    pub async fn record_ssh_certificate(
        &self,
        actor: Actor,
        issued: Issued,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let source_ip = actor.ip.map(|ip| ip.to_string());
        self.audited(actor, move |tx| {
            tx.execute(
                "INSERT INTO ssh_certificates (serial, user_id, key_id, principals,
                   valid_after_ms, valid_before_ms, public_key, fingerprint, ca, source_ip,
                   issued_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    i64::try_from(issued.serial).unwrap_or(i64::MAX),
                    issued.user_id,
                    issued.key_id,
                    issued.principals.join(" "),
                    issued.valid_after_ms,
                    issued.valid_before_ms,
                    issued.public_key,
                    issued.fingerprint,
                    issued.ca,
                    source_ip,
                    now
                ],
            )?;
            let change = Change::new(
                "ssh.certificate_issue",
                format!("ssh-certificate:{}", issued.serial),
            )
            .with("key_id", &issued.key_id)
            .with("principals", &issued.principals)
            .with("fingerprint", &issued.fingerprint)
            .with("valid_before_ms", issued.valid_before_ms);
            Ok(((), Some(change)))
        })
        .await
    }

    /// Certificates, newest first: one user's, or everyone's (`None`); the 500 newest.
    pub async fn ssh_certificates(
        &self,
        user_id: Option<i64>,
    ) -> Result<Vec<SshCertificate>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM ssh_certificates c JOIN users u USING (user_id)
                 WHERE ?1 IS NULL OR c.user_id = ?1 ORDER BY c.issued_ms DESC, c.serial LIMIT 500"
            ))?;
            let rows = stmt.query_map([user_id], row)?;
            Ok(rows.map(|r| r.map(|(c, _)| c)).collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Certificate `serial` and the id of the user it was issued to.
    pub async fn ssh_certificate(
        &self,
        serial: u64,
    ) -> Result<Option<(SshCertificate, i64)>, DbError> {
        let serial = i64::try_from(serial).unwrap_or(-1);
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM ssh_certificates c JOIN users u USING (user_id)
                         WHERE c.serial = ?1"
                    ),
                    [serial],
                    row,
                )
                .optional()?)
        })
        .await
    }

    /// Revokes certificate `serial`; `false` when it was already. Audited
    /// (`ssh.certificate_revoke`).
    pub async fn revoke_ssh_certificate(&self, actor: Actor, serial: u64) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let by = actor.name.clone();
        let serial = i64::try_from(serial).unwrap_or(-1);
        self.audited(actor, move |tx| {
            let done = tx.execute(
                "UPDATE ssh_certificates SET revoked_ms = ?2, revoked_by = ?3
                 WHERE serial = ?1 AND revoked_ms IS NULL",
                params![serial, now, by],
            )? == 1;
            if done {
                super::ssh_trust::bump(tx)?;
            }
            Ok((
                done,
                done.then(|| {
                    Change::new(
                        "ssh.certificate_revoke",
                        format!("ssh-certificate:{serial}"),
                    )
                }),
            ))
        })
        .await
    }
}
