//! The box's sshd trust (`[ssh]`): user CA keys and the KRL, and its host certificate.

use anyhow::Context;
use shared::protocol::{
    HostCertificateResponse, SSH_HOST_CERTIFICATE_PATH, SSH_TRUST_PATH, SshTrust,
};

use super::{Agent, ingest_address};

impl Agent {
    /// Keeps the box's sshd trust (`[ssh]`) as the nester has it: user CA keys and the KRL,
    /// and, with `host_key`, the box's host certificate. Returns the trust version
    /// installed, if the section is there.
    pub async fn refresh_ssh_trust(&mut self) -> anyhow::Result<Option<u64>> {
        let Some(config) = self.config.ssh.clone() else {
            return Ok(None);
        };
        let path = match crate::ssh_trust::installed_version(&config) {
            Some(held) => format!("{SSH_TRUST_PATH}?held={held}"),
            None => SSH_TRUST_PATH.to_string(),
        };
        let trust: SshTrust = self
            .uplink
            .get_json(&path)
            .await
            .context("cannot fetch the SSH trust")?;
        let version = trust.version;
        let installing = config.clone();
        let changed =
            tokio::task::spawn_blocking(move || crate::ssh_trust::install(&installing, &trust))
                .await??;
        if changed {
            tracing::info!(version, "SSH trust installed (user CA keys, revoked keys)");
        }
        self.refresh_host_certificate(config, version).await?;
        Ok(Some(version))
    }

    /// Has the box's host key certified (`[ssh] host_key`) and installs the certificate when
    /// it changed.
    async fn refresh_host_certificate(
        &mut self,
        config: crate::config::SshTrustConfig,
        trust_version: u64,
    ) -> anyhow::Result<()> {
        if config.host_key.is_none() {
            return Ok(());
        }
        let nester = ingest_address(&self.config)?;
        let asking = config.clone();
        let Some(request) = tokio::task::spawn_blocking(move || {
            crate::ssh_host::request(&asking, &nester, Some(trust_version))
        })
        .await??
        else {
            return Ok(());
        };
        let response: HostCertificateResponse = self
            .uplink
            .post_json(SSH_HOST_CERTIFICATE_PATH, &request)
            .await
            .context("cannot get the box's SSH host certificate")?;
        let principals = response.principals.join(" ");
        let changed =
            tokio::task::spawn_blocking(move || crate::ssh_host::install(&config, &response))
                .await??;
        if changed {
            tracing::info!(%principals, "SSH host certificate installed");
        }
        Ok(())
    }
}
