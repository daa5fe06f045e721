//! `GET /v1/ssh/trust` (mTLS): what a harvester box's sshd trusts for user certificates (the
//! user CA keys: two during a rotation) and refuses (the KRL), versioned. Harvesters fetch
//! it each cycle, so a revocation reaches every site within one; they say which version
//! they hold (`?held=N`), which `nester ssh status` shows.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use shared::protocol::SshTrust;

use super::{IngestState, ProbeIdentity};
use crate::error::{ApiError, ApiQuery};

#[derive(Debug, Deserialize)]
pub(super) struct Held {
    held: Option<u64>,
}

pub(super) async fn ssh_trust(
    probe: ProbeIdentity,
    State(state): State<IngestState>,
    ApiQuery(held): ApiQuery<Held>,
) -> Result<Json<SshTrust>, ApiError> {
    let app = &state.app;
    let trust = app
        .ssh
        .trust(&app.db, app.clock.now_ms())
        .await
        .map_err(ApiError::internal)?;
    app.db
        .record_ssh_trust_holder(
            probe.probe_id.to_string(),
            probe.site,
            Some(trust.version),
            held.held,
        )
        .await?;
    Ok(Json(trust))
}
