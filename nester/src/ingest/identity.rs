//! [`ProbeIdentity`]: which enrolled, unrevoked probe is on the other end of an mTLS
//! connection. Every ingest route but enrollment takes one.
//!
//! The standing is read once per connection, which turns away unknown and long-revoked probes
//! at their first request. A revocation made while a connection is open is caught by what
//! each request does anyway: a report's insert reads the probe's row on the writer
//! ([`Inserted::ProbeRevoked`](crate::db::Inserted::ProbeRevoked)), and a renewal reads its
//! standing again. So a revoked probe's very next report or renewal is refused, on whatever
//! connection it comes, at no cost per report.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use shared::protocol::code;
use uuid::Uuid;

use super::IngestState;
use crate::error::ApiError;
use crate::net::Peer;

/// The enrolled, unrevoked probe on the other end of an mTLS connection.
#[derive(Debug, Clone)]
pub struct ProbeIdentity {
    pub probe_id: Uuid,
    pub site: String,
    pub peer: Peer,
}

impl FromRequestParts<IngestState> for ProbeIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &IngestState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .cloned()
            .ok_or_else(|| ApiError::internal("ingest request without connection info"))?;
        let Some(probe_id) = peer.probe_id else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                code::CLIENT_CERTIFICATE_REQUIRED,
                "this route needs a probe certificate; enroll first with `harvester enroll`",
            ));
        };
        let standing = peer
            .standing
            .get_or_try_init(|| async { state.app.db.probe_standing(probe_id) })
            .await?;
        match standing.clone() {
            None => {
                tracing::warn!(client_ip = %peer.addr.ip(), %probe_id, "unknown probe refused");
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    code::UNKNOWN_PROBE,
                    "this probe is not enrolled here",
                ))
            }
            Some((_, true)) => Err(revoked(&peer, probe_id)),
            Some((site, false)) => Ok(Self {
                probe_id,
                site,
                peer,
            }),
        }
    }
}

/// The refusal of a revoked probe, on any ingest route.
pub(super) fn revoked(peer: &Peer, probe_id: Uuid) -> ApiError {
    tracing::warn!(client_ip = %peer.addr.ip(), %probe_id, "revoked probe refused");
    ApiError::new(
        StatusCode::FORBIDDEN,
        code::PROBE_REVOKED,
        "this probe has been revoked; ask an administrator to enroll it again",
    )
}
