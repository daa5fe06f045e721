//! [`ProbeIdentity`]: which enrolled, unrevoked probe is on the other end of an mTLS
//! connection. Every ingest route but enrollment takes one.
//!
//! A probe's standing is checked on every request, so a revocation refuses its very next
//! request, whatever connection it comes on. Each connection keeps the standing it read, with
//! the `standing_version` it read it at; a request reads only that one-row counter, and the
//! probe's row again only once something changed some probe's standing.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use shared::protocol::code;
use uuid::Uuid;

use super::IngestState;
use crate::db::DbError;
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
        match standing(state, &peer, probe_id)? {
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

/// The probe's site and whether it is revoked (`None`: not enrolled), as of now.
fn standing(
    state: &IngestState,
    peer: &Peer,
    probe_id: Uuid,
) -> Result<Option<(String, bool)>, DbError> {
    let db = &state.app.db;
    // Read before the standing: a change between the two reads leaves an older version
    // beside a newer standing, which only costs one more read next time.
    let version = db.standing_version()?;
    let mut kept = peer.standing.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, standing)) = kept.as_ref()
        && *at == version
    {
        return Ok(standing.clone());
    }
    let standing = db.probe_standing(probe_id)?;
    *kept = Some((version, standing.clone()));
    Ok(standing)
}
