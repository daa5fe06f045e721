//! Probes: revoking one (the CLI, the admin page, the API).

use uuid::Uuid;

use super::{Internal, Kind, Refused};
use crate::db::Db;
use crate::db::audit::Actor;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no enrolled, unrevoked probe {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Refused for ProbeError {
    fn kind(&self) -> Kind {
        match self {
            Self::NotFound(_) => Kind::NotFound,
            Self::Internal(_) => Kind::Internal,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal",
        }
    }
}

/// Revokes a probe: its next request is refused, on any connection, and it cannot renew
/// its certificate. Its reports and history stay. Audited as `actor`.
pub async fn revoke(db: &Db, actor: Actor, probe_id: Uuid) -> Result<(), ProbeError> {
    let who = actor.name.clone();
    if !db
        .revoke_probe(actor, probe_id)
        .await
        .map_err(Internal::from)?
    {
        return Err(ProbeError::NotFound(probe_id));
    }
    tracing::info!(by = %who, %probe_id, "probe revoked");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::IssuedCert;

    #[tokio::test]
    async fn a_probe_is_revoked_once_and_audited_and_an_unknown_one_is_not_found() {
        let (_dir, db) = super::super::testing::db();
        let until = db.clock().now() + time::Duration::hours(1);
        let cli = Actor::cli;
        db.create_token(cli(), "t1".into(), "secret", "kc".into(), until, 1)
            .await
            .unwrap();
        let probe_id = Uuid::new_v4();
        let cert = IssuedCert {
            probe_id,
            serial: "01".into(),
            expires_at: until,
            issuer: "ca".into(),
        };
        let enrolled = db.enroll(cli(), "t1".into(), "secret".into(), cert).await;
        assert!(enrolled.unwrap().is_ok());
        let head = db.audit_head().await.unwrap().0;
        revoke(&db, cli(), probe_id).await.unwrap();
        assert_eq!(db.audit_head().await.unwrap().0, head + 1, "audited");
        let again = revoke(&db, cli(), probe_id).await.unwrap_err();
        assert_eq!((again.kind(), again.code()), (Kind::NotFound, "not_found"));
        let unknown = Uuid::new_v4();
        let err = revoke(&db, cli(), unknown).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no enrolled, unrevoked probe {unknown}")
        );
        assert_eq!(
            db.audit_head().await.unwrap().0,
            head + 1,
            "refusals are not audited"
        );
    }
}
