//! Enrollment tokens, which a harvester spends once to get its certificate: made and revoked
//! here for `nester token`, the admin page and the API alike, so all three check the same
//! limits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use shared::enroll::EnrollmentToken;
use time::{Duration, OffsetDateTime};

use super::{Internal, Kind, Refused};
use crate::auth::secret::random;
use crate::db::Db;
use crate::db::audit::Actor;
use crate::pki::CaCert;

/// The longest a token may stay usable.
pub const MAX_TTL: Duration = Duration::days(30);

/// The most probes one token may admit (a whole fleet's rollout).
pub const MAX_USES: u32 = 10_000;

/// What to run on the site's box, with the token pasted on standard input: never as an
/// argument, which process lists and shell history would keep.
pub const HARVESTER_COMMAND: &str =
    "harvester enroll --config /etc/seahawks/harvester.toml --token-file -";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Why a token cannot be made as asked, in words for the person who asked.
    #[error("{0}")]
    Invalid(String),
    #[error("no unrevoked enrollment token {0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Refused for TokenError {
    fn kind(&self) -> Kind {
        match self {
            Self::Invalid(_) => Kind::Invalid,
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "bad_token_request",
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

/// A token's lifetime as people write it (`30m`, `2h`, `1d`).
pub fn ttl(text: &str) -> Result<Duration, TokenError> {
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .ok_or_else(|| {
            TokenError::Invalid(format!(
                "`{text}` is not a lifetime: write e.g. 30m, 2h or 1d"
            ))
        })
}

/// Why a token cannot be made as asked, in words for the person who asked.
pub fn check(site: &str, ttl: Duration, uses: u32) -> Result<(), String> {
    if site.trim().is_empty() || site.len() > shared::report::MAX_LABEL_LEN {
        return Err(format!(
            "the site must be 1 to {} characters",
            shared::report::MAX_LABEL_LEN
        ));
    }
    if ttl < Duration::MINUTE || ttl > MAX_TTL {
        return Err("the token must stay usable between 1 minute and 30 days".into());
    }
    if !(1..=MAX_USES).contains(&uses) {
        return Err(format!("the uses must be between 1 and {MAX_USES}"));
    }
    Ok(())
}

/// Creates a token for `site`, usable `uses` times within `ttl`, telling harvesters to dial
/// `ingest`; its `encode()` is the string to hand over. Only the secret's SHA-256 is stored.
pub async fn create(
    db: &Db,
    actor: Actor,
    ca: &CaCert,
    ingest: String,
    site: &str,
    ttl: Duration,
    uses: u32,
) -> Result<EnrollmentToken, TokenError> {
    let site = site.trim();
    check(site, ttl, uses).map_err(TokenError::Invalid)?;
    let who = actor.name.clone();
    let token = EnrollmentToken {
        ingest,
        id: random::<8>()
            .map_err(Internal::from)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        secret: URL_SAFE_NO_PAD.encode(random::<32>().map_err(Internal::from)?),
        ca_sha256: ca.fingerprint(),
    };
    db.create_token(
        actor,
        token.id.clone(),
        &token.secret,
        site.to_string(),
        db.clock().now() + ttl,
        uses,
    )
    .await
    .map_err(Internal::from)?;
    tracing::info!(by = %who, token_id = %token.id, site, uses, "enrollment token created");
    Ok(token)
}

/// A token just made: the only time its string is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub token_id: String,
    /// Hand this to the harvester, on standard input of `harvester_command`.
    pub token: String,
    pub site: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub uses: u32,
    /// The ingest address the token sends harvesters to.
    pub ingest: String,
    pub harvester_command: String,
}

/// Makes a token as the API and the admin page ask for it (a lifetime in words), and what
/// to show of it.
pub async fn make(
    db: &Db,
    actor: Actor,
    ca: &CaCert,
    ingest: String,
    site: &str,
    ttl_text: &str,
    uses: u32,
) -> Result<CreatedToken, TokenError> {
    let ttl = ttl(ttl_text)?;
    let token = create(db, actor, ca, ingest.clone(), site, ttl, uses).await?;
    Ok(CreatedToken {
        token: token.encode(),
        token_id: token.id,
        site: site.trim().to_string(),
        expires_at: db.clock().now() + ttl,
        uses,
        ingest,
        harvester_command: HARVESTER_COMMAND.to_string(),
    })
}

/// Revokes a token: nobody enrolls with it any more. Probes it already admitted stay.
pub async fn revoke(db: &Db, actor: Actor, token_id: &str) -> Result<(), TokenError> {
    let who = actor.name.clone();
    let revoked = db
        .revoke_token(actor, token_id.to_string())
        .await
        .map_err(Internal::from)?;
    if !revoked {
        return Err(TokenError::NotFound(token_id.to_string()));
    }
    tracing::info!(by = %who, %token_id, "enrollment token revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let ok = Duration::minutes(30);
        assert!(check("kc", ok, 1).is_ok());
        assert!(check("kc", MAX_TTL, MAX_USES).is_ok());
        assert!(check(" ", ok, 1).unwrap_err().contains("site"));
        assert!(check(&"x".repeat(129), ok, 1).unwrap_err().contains("site"));
        assert!(
            check("kc", Duration::seconds(59), 1)
                .unwrap_err()
                .contains("minute")
        );
        assert!(
            check("kc", MAX_TTL + Duration::SECOND, 1)
                .unwrap_err()
                .contains("30 days")
        );
        assert!(check("kc", ok, 0).unwrap_err().contains("uses"));
        assert!(check("kc", ok, MAX_USES + 1).unwrap_err().contains("uses"));
    }

    #[tokio::test]
    async fn a_token_is_made_within_bounds_and_revoked_once() {
        let (_dir, db) = super::super::testing::db();
        let temp = tempfile::tempdir().unwrap();
        let (cert, key) = (temp.path().join("ca.pem"), temp.path().join("ca.key"));
        let ca = crate::pki::Ca::create_at(&cert, &key, db.clock().now())
            .unwrap()
            .cert;
        let made = create(
            &db,
            Actor::cli(),
            &ca,
            "n:9443".into(),
            " kc ",
            ttl("1h").unwrap(),
            2,
        );
        let token = made.await.unwrap();
        assert_eq!(token.ca_sha256, ca.fingerprint());
        let listed = db.tokens().await.unwrap();
        assert_eq!((listed[0].site.as_str(), listed[0].max_uses), ("kc", 2));
        let refused = create(
            &db,
            Actor::cli(),
            &ca,
            "n:9443".into(),
            "kc",
            Duration::days(31),
            1,
        );
        assert_eq!(refused.await.unwrap_err().kind(), Kind::Invalid);
        assert!(ttl("soon").unwrap_err().to_string().contains("`soon`"));
        revoke(&db, Actor::cli(), &token.id).await.unwrap();
        let again = revoke(&db, Actor::cli(), &token.id).await.unwrap_err();
        assert_eq!(
            again.to_string(),
            format!("no unrevoked enrollment token {}", token.id)
        );
    }
}
