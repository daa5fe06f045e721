//! SSH keys revoked outright (admin), for a key that leaked: every certificate for it is
//! refused on every box from its harvester's next cycle (the KRL carries the key's SHA-256),
//! whoever it was issued to and whichever CA signed it, and no certificate is issued for it
//! again. Audited (`ssh.key_revoke`); never undone.

use russh::keys::HashAlg;
use serde::Deserialize;

use super::{Internal, Kind, Refused};
use crate::db::Db;
use crate::db::audit::Actor;
use crate::db::ssh_trust::RevokedKey;
use crate::ssh_ca::keys;

/// A key to revoke.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRevokedKey {
    /// An OpenSSH public key line.
    pub public_key: String,
    /// Why, for the record (e.g. "laptop stolen"); at most 200 characters.
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    BadKey(String),
    #[error("say why in one line of at most 200 characters")]
    BadReason,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Refused for KeyError {
    fn kind(&self) -> Kind {
        match self {
            Self::BadKey(_) | Self::BadReason => Kind::Invalid,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::BadKey(_) => "bad_public_key",
            Self::BadReason => "bad_reason",
            Self::Internal(_) => "internal",
        }
    }
}

/// Revokes a key: whether it is revoked now (not before), and its record.
pub async fn revoke(
    db: &Db,
    actor: Actor,
    new: &NewRevokedKey,
) -> Result<(bool, RevokedKey), KeyError> {
    let key = keys::accepted(&new.public_key).map_err(|why| KeyError::BadKey(why.to_string()))?;
    let reason = new.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(KeyError::BadReason);
    }
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let openssh = key.to_openssh().map_err(|e| Internal(e.to_string()))?;
    let who = actor.name.clone();
    let revoked = db
        .revoke_ssh_key(actor, fingerprint.clone(), openssh, reason.to_string())
        .await
        .map_err(Internal::from)?;
    if revoked {
        tracing::warn!(by = %who, %fingerprint, "SSH key revoked outright");
    }
    let record = db
        .ssh_revoked_keys()
        .await
        .map_err(Internal::from)?
        .into_iter()
        .find(|k| k.fingerprint == fingerprint)
        .ok_or_else(|| Internal("the key just revoked is missing".into()))?;
    Ok((revoked, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1mYHqctpacFyS52dBi5SvFHLFR0cPd1hRlo4trZWyw laptop";

    #[tokio::test]
    async fn a_key_is_revoked_once_with_a_reason() {
        let (_dir, db) = super::super::testing::db();
        let ask = |key: &str, reason: &str| NewRevokedKey {
            public_key: key.into(),
            reason: reason.into(),
        };
        let bad = revoke(&db, Actor::cli(), &ask("ssh-ed25519 nope", "stolen")).await;
        assert_eq!(bad.unwrap_err().code(), "bad_public_key");
        let no_reason = revoke(&db, Actor::cli(), &ask(KEY, " \n"))
            .await
            .unwrap_err();
        assert_eq!(no_reason.kind(), Kind::Invalid);
        let (now, record) = revoke(&db, Actor::cli(), &ask(KEY, "laptop stolen"))
            .await
            .unwrap();
        assert!(now);
        assert_eq!(record.reason, "laptop stolen");
        let (again, _) = revoke(&db, Actor::cli(), &ask(KEY, "twice")).await.unwrap();
        assert!(!again, "already revoked");
        assert!(db.ssh_key_revoked(record.fingerprint).await.unwrap());
    }
}
