//! Enrollment tokens, which a harvester spends once to get its certificate: made here for
//! `nester token`, the admin page and the API alike, so all three check the same limits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::enroll::EnrollmentToken;
use time::Duration;

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
) -> anyhow::Result<EnrollmentToken> {
    check(site, ttl, uses).map_err(anyhow::Error::msg)?;
    let token = EnrollmentToken {
        ingest,
        id: random::<8>()?.iter().map(|b| format!("{b:02x}")).collect(),
        secret: URL_SAFE_NO_PAD.encode(random::<32>()?),
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
    .await?;
    Ok(token)
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
}
