//! Probes: one in detail and its WAN series (the API and the probe page), and revoking one
//! (the CLI, the admin page, the API).

use serde::Serialize;
use time::Duration;
use uuid::Uuid;

use super::query::{QueryError, bad_query};
use super::{Internal, Kind, Refused};
use crate::db::audit::Actor;
use crate::db::{Db, Gap, HostSummary, ProbeSummary, Resolution, WanPoint};

/// One probe in detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProbeDetail {
    #[serde(flatten)]
    pub probe: ProbeSummary,
    /// Each WAN target over the last 24 hours: median of the medians, lowest, highest, loss.
    pub wan_24h: Vec<WanPoint>,
    /// Hosts up in the probe's history now (its latest report).
    pub hosts_up: u32,
    /// Ports open now, on all its hosts.
    pub open_ports: u32,
    /// Missing sequence numbers (lost reports), oldest first.
    pub gaps: Vec<Gap>,
}

/// The probe's detail, and the hosts it was computed from (the probe page shows them too).
pub async fn detail(
    db: &Db,
    probe_id: Uuid,
) -> Result<(ProbeDetail, Vec<HostSummary>), QueryError> {
    let now = db.clock().now();
    let probe = db
        .probes(Some(probe_id), now)
        .await?
        .pop()
        .ok_or_else(|| no_probe(probe_id))?;
    let day = db
        .wan_series(probe_id, now - Duration::days(1), now, Resolution::Raw)
        .await?
        .unwrap_or_default();
    let hosts = db.probe_hosts(probe_id).await?.unwrap_or_default();
    let up: Vec<&HostSummary> = hosts.iter().filter(|h| h.up).collect();
    let detail = ProbeDetail {
        probe,
        wan_24h: crate::db::wan_summary(&day),
        hosts_up: up.len() as u32,
        open_ports: up.iter().map(|h| h.open_ports.len() as u32).sum(),
        gaps: db.gaps(probe_id).await?.unwrap_or_default(),
    };
    Ok((detail, hosts))
}

pub fn no_probe(probe_id: Uuid) -> QueryError {
    QueryError::NotFound(format!("no probe {probe_id}"))
}

/// A probe's WAN latency series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WanSeries {
    pub probe_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub from: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: time::OffsetDateTime,
    pub resolution: Resolution,
    /// By target, then time. Old parts come from rollups even at `raw`.
    pub points: Vec<WanPoint>,
}

/// The WAN series of `probe_id` from `from` to `to`, at `resolution` (`raw`, `hour`,
/// `day`; `auto` or none picks one for the span).
pub async fn series(
    db: &Db,
    probe_id: Uuid,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    resolution: Option<&str>,
) -> Result<WanSeries, QueryError> {
    let resolution = match resolution {
        None | Some("auto") => Resolution::for_span(to - from),
        Some(r) => r.parse().map_err(bad_query)?,
    };
    let points = db
        .wan_series(probe_id, from, to, resolution)
        .await?
        .ok_or_else(|| no_probe(probe_id))?;
    Ok(WanSeries {
        probe_id,
        from,
        to,
        resolution,
        points,
    })
}

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
