//! Enrollment tokens and the probes they admit.

use aws_lc_rs::{constant_time, digest};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{Actor, Change};
use super::{Db, DbError, millis, to_ms};

/// An enrollment token as listed: never its secret, which only its creator saw.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub token_id: String,
    pub site: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub max_uses: u32,
    pub uses: u32,
    pub revoked: bool,
}

/// Whether a token still admits probes, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Usable,
    UsedUp,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::UsedUp => "used up",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl TokenInfo {
    pub fn state(&self, now: OffsetDateTime) -> TokenState {
        if self.revoked {
            TokenState::Revoked
        } else if self.uses >= self.max_uses {
            TokenState::UsedUp
        } else if now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Usable
        }
    }
}

/// Why a token did not admit a probe. A wrong id and a wrong secret look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Invalid,
    Expired,
    UsedUp,
    Revoked,
}

/// A certificate just issued to a probe, to record.
pub struct IssuedCert {
    pub probe_id: Uuid,
    pub serial: String,
    pub expires_at: OffsetDateTime,
    /// SHA-256 of the issuing CA's certificate.
    pub issuer: String,
}

fn secret_hash(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

impl Db {
    pub async fn create_token(
        &self,
        actor: Actor,
        token_id: String,
        secret: &str,
        site: String,
        expires_at: OffsetDateTime,
        max_uses: u32,
    ) -> Result<(), DbError> {
        let hash = secret_hash(secret);
        let now = self.clock.now_ms();
        self.audited(actor, move |conn| {
            conn.execute(
                "INSERT INTO enrollment_tokens (token_id, secret_sha256, site, created_ms, expires_ms, max_uses)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![token_id, hash, site, now, to_ms(expires_at), max_uses],
            )?;
            let change = Change::new("enrollment_token.create", format!("enrollment_token:{token_id}"))
                .with("site", &site)
                .with("uses", max_uses)
                .with("expires_ms", to_ms(expires_at));
            Ok(((), Some(change)))
        })
        .await
    }

    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT token_id, site, created_ms, expires_ms, max_uses, uses, revoked_ms IS NOT NULL
                 FROM enrollment_tokens ORDER BY created_ms",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TokenInfo {
                    token_id: r.get(0)?,
                    site: r.get(1)?,
                    created_at: millis(r, 2)?,
                    expires_at: millis(r, 3)?,
                    max_uses: r.get(4)?,
                    uses: r.get(5)?,
                    revoked: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Revokes a token; `false` when there is no such token.
    pub async fn revoke_token(&self, actor: Actor, token_id: String) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |conn| {
            let n = conn.execute(
                "UPDATE enrollment_tokens SET revoked_ms = ?2 WHERE token_id = ?1 AND revoked_ms IS NULL",
                params![token_id, now],
            )?;
            let change = (n == 1).then(|| {
                Change::new("enrollment_token.revoke", format!("enrollment_token:{token_id}"))
            });
            Ok((n == 1, change))
        })
        .await
    }

    /// Checks a token without using it.
    pub async fn check_token(
        &self,
        token_id: String,
        secret: String,
    ) -> Result<Result<String, TokenRefusal>, DbError> {
        let now = self.clock.now_ms();
        self.read(move |conn| check(conn, &token_id, &secret, now))
            .await
    }

    /// Uses one admission of the token and records the new probe, in one transaction. The
    /// token is checked again inside it, so two racing enrollments cannot overuse it.
    pub async fn enroll(
        &self,
        actor: Actor,
        token_id: String,
        secret: String,
        cert: IssuedCert,
    ) -> Result<Result<String, TokenRefusal>, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |tx| {
            let site = match check(tx, &token_id, &secret, now)? {
                Ok(site) => site,
                Err(refusal) => return Ok((Err(refusal), None)),
            };
            tx.execute("UPDATE enrollment_tokens SET uses = uses + 1 WHERE token_id = ?", [&token_id])?;
            tx.execute(
                "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms, token_id, cert_serial, cert_expires_ms, cert_issuer)
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7)",
                params![cert.probe_id.to_string(), site, now, token_id, cert.serial, to_ms(cert.expires_at), cert.issuer],
            )?;
            // The token's use and the probe it admitted, in one entry.
            let change = Change::new("probe.enroll", format!("probe:{}", cert.probe_id))
                .with("enrollment_token", &token_id)
                .with("site", &site)
                .with("serial", &cert.serial);
            Ok((Ok(site), Some(change)))
        })
        .await
    }

    /// Records a renewed certificate; `false` (and nothing recorded) when the probe is
    /// revoked or unknown, so the certificate must not be handed out.
    pub async fn record_renewal(&self, actor: Actor, cert: IssuedCert) -> Result<bool, DbError> {
        self.audited(actor, move |conn| {
            let n = conn.execute(
                "UPDATE probes SET cert_serial = ?2, cert_expires_ms = ?3, cert_issuer = ?4
                 WHERE probe_id = ?1 AND revoked_ms IS NULL",
                params![
                    cert.probe_id.to_string(),
                    cert.serial,
                    to_ms(cert.expires_at),
                    cert.issuer
                ],
            )?;
            let change = (n == 1).then(|| {
                Change::new("probe.renew", format!("probe:{}", cert.probe_id))
                    .with("serial", &cert.serial)
                    .with("expires_ms", to_ms(cert.expires_at))
            });
            Ok((n == 1, change))
        })
        .await
    }

    /// The unrevoked probes whose certificate is not from the CA `issuer` (SHA-256): during a
    /// CA rotation, those that have not renewed from the new CA yet. Probe id and site.
    pub async fn probes_not_issued_by(
        &self,
        issuer: String,
    ) -> Result<Vec<(String, String)>, DbError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT probe_id, site FROM probes
                 WHERE revoked_ms IS NULL AND (cert_issuer IS NULL OR cert_issuer != ?)
                 ORDER BY site, probe_id",
            )?;
            let rows = statement.query_map([issuer], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The site of an enrolled probe and whether it is revoked; `None` for an unknown probe.
    pub fn probe_standing(&self, probe_id: Uuid) -> Result<Option<(String, bool)>, DbError> {
        self.quick_read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT site, revoked_ms IS NOT NULL FROM probes WHERE probe_id = ?",
                )?
                .query_row([probe_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    /// Revokes a probe; `false` when there is no such probe.
    pub async fn revoke_probe(&self, actor: Actor, probe_id: Uuid) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        self.audited(actor, move |conn| {
            let n = conn.execute(
                "UPDATE probes SET revoked_ms = ?2 WHERE probe_id = ?1 AND revoked_ms IS NULL",
                params![probe_id.to_string(), now],
            )?;
            let change = (n == 1).then(|| Change::new("probe.revoke", format!("probe:{probe_id}")));
            Ok((n == 1, change))
        })
        .await
    }
}

fn check(
    conn: &rusqlite::Connection,
    token_id: &str,
    secret: &str,
    now_ms: i64,
) -> Result<Result<String, TokenRefusal>, DbError> {
    let row: Option<(Vec<u8>, String, i64, u32, u32, bool)> = conn
        .query_row(
            "SELECT secret_sha256, site, expires_ms, max_uses, uses, revoked_ms IS NOT NULL
             FROM enrollment_tokens WHERE token_id = ?",
            [token_id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    // Hash even for an unknown id, so timing says nothing about which ids exist.
    let presented = secret_hash(secret);
    let Some((stored, site, expires_ms, max_uses, uses, revoked)) = row else {
        return Ok(Err(TokenRefusal::Invalid));
    };
    if constant_time::verify_slices_are_equal(&stored, &presented).is_err() {
        return Ok(Err(TokenRefusal::Invalid));
    }
    Ok(if revoked {
        Err(TokenRefusal::Revoked)
    } else if uses >= max_uses {
        Err(TokenRefusal::UsedUp)
    } else if now_ms >= expires_ms {
        Err(TokenRefusal::Expired)
    } else {
        Ok(site)
    })
}
