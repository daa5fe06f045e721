//! The CAs to trust: the nester's signed trust bundle, adopted when it changed.

use anyhow::Context;
use hyper::StatusCode;
use rustls_pki_types::CertificateDer;
use shared::identity::fingerprint;
use shared::protocol::TRUST_PATH;
use shared::trust::SignedTrust;

use super::Agent;
use crate::state;
use crate::uplink::UplinkError;

impl Agent {
    /// Fetches the nester's signed trust bundle and adopts it when it changed (it must be
    /// signed by a CA trusted now): during a CA rotation it adds the new CA, at its end it
    /// drops the old one. Returns the CA the nester issues from.
    pub async fn refresh_trust(&mut self) -> anyhow::Result<Option<String>> {
        let signed: SignedTrust = match self.uplink.get_json(TRUST_PATH).await {
            Ok(signed) => signed,
            // A nester from before trust bundles.
            Err(UplinkError::Refused { status, .. }) if status == StatusCode::NOT_FOUND => {
                return Ok(None);
            }
            Err(e) => return Err(e).context("cannot fetch the trust bundle"),
        };
        let bundle = signed.open(&self.identity.trust).context(
            "the nester's trust bundle is refused; if its CA was rotated while this \
                 harvester was offline, enroll it again",
        )?;
        let cas = bundle.certificates()?;
        let fingerprints = |cas: &[CertificateDer<'_>]| {
            let mut all: Vec<String> = cas.iter().map(|c| fingerprint(c)).collect();
            all.sort();
            all
        };
        if fingerprints(&cas) != fingerprints(&self.identity.trust) {
            state::save_trust(&self.config.state_dir, &bundle.cas.concat())?;
            self.reload_identity()?;
            tracing::info!(version = %bundle.version, cas = cas.len(), issuing = %bundle.issuing_sha256, "trust bundle updated");
        }
        Ok(Some(bundle.issuing_sha256))
    }
}
