//! `GET /v1/ssh/trust` (mTLS): what a harvester box's sshd trusts for user certificates (the
//! user CA keys) and refuses (the KRL of revoked certificates), versioned. Harvesters fetch
//! it each cycle, so a revocation reaches every site within one.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use shared::protocol::SshTrust;

use super::{IngestState, ProbeIdentity};
use crate::error::ApiError;

pub(super) async fn ssh_trust(
    _probe: ProbeIdentity,
    State(state): State<IngestState>,
) -> Result<Json<SshTrust>, ApiError> {
    let ssh = &state.app.ssh;
    let (version, krl) = ssh.krl(&state.app.db).await.map_err(ApiError::internal)?;
    Ok(Json(SshTrust {
        version,
        user_ca_keys: vec![
            ssh.user_ca
                .public_key()
                .to_openssh()
                .map_err(ApiError::internal)?,
        ],
        krl: base64::engine::general_purpose::STANDARD.encode(krl),
    }))
}
