//! [`ProbeIdentity`]: which enrolled, unrevoked probe is on the other end of an mTLS
//! connection. Every ingest route but enrollment takes one.

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
        let refuse = |code, message: &str| {
            tracing::warn!(client_ip = %peer.addr.ip(), %probe_id, code, "probe refused");
            Err(ApiError::new(StatusCode::FORBIDDEN, code, message))
        };
        let standing = peer
            .standing
            .get_or_try_init(|| async { state.app.db.probe_standing(probe_id) })
            .await?;
        match standing.clone() {
            None => refuse(code::UNKNOWN_PROBE, "this probe is not enrolled here"),
            Some((_, true)) => refuse(
                code::PROBE_REVOKED,
                "this probe has been revoked; ask an administrator to enroll it again",
            ),
            Some((site, false)) => Ok(Self {
                probe_id,
                site,
                peer,
            }),
        }
    }
}
