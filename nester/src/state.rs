//! What both listeners share: the database, the one clock, the CAs and the report verifier
//! built from them. State only one router reads lives with that router
//! ([`IngestState`](crate::ingest::IngestState), the web's answer cache and guard).

use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::config::SshConfig;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::pki::Authorities;
use crate::ssh_ca::Ssh;
use crate::threat::{ThreatConfig, Threats};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The database's clock: everything reads "now" here, and tests move it.
    pub clock: Clock,
    /// The CAs: the issuing one signs probe certificates and is handed to enrolling probes;
    /// reports must chain to a trusted one; every one is served at `/ca.pem`.
    pub authorities: Arc<Authorities>,
    /// Trusts what `authorities` trusts (updated with it).
    pub verifier: Arc<shared::Verifier>,
    /// The data directory, for what lives beside the database (the audit checkpoints).
    pub dir: DataDir,
    /// The ban list and the rules that fill it.
    pub threats: Arc<Threats>,
    /// The SSH certificate authorities.
    pub ssh: Arc<Ssh>,
}

impl AppState {
    pub fn new(
        dir: &DataDir,
        db: Db,
        authorities: Arc<Authorities>,
        threats: ThreatConfig,
        ssh: SshConfig,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            ssh: Arc::new(Ssh::load(dir, ssh)?),
            dir: dir.clone(),
            threats: Threats::new(threats, db.clone()),
            clock: db.clock().clone(),
            db,
            verifier: Arc::new(
                shared::Verifier::with_roots(authorities.get().trusted())
                    .context("the CA certificate is unusable")?,
            ),
            authorities,
        })
    }

    /// Reads the bans, and says when nobody can sign in.
    pub async fn warn_at_start(&self) {
        if let Err(e) = self.threats.reload().await {
            tracing::error!(error = format!("{e:#}"), "cannot read the bans");
        }
        match self.db.list_users().await {
            Ok(users) if !users.iter().any(|u| !u.disabled) => tracing::warn!(
                "no enabled user: nobody can sign in; add one with `nester user add NAME --role admin`"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the users"),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A whole `AppState` over a data directory `nester init` made, for unit tests of what
    //! needs the CAs (the routers, SSH certificates): no listener, no TLS.

    use super::AppState;

    pub async fn state() -> (tempfile::TempDir, AppState) {
        let temp = tempfile::tempdir().unwrap();
        let dir = crate::datadir::DataDir::new(temp.path().join("n"));
        crate::cli::init::init(&dir, &[]).unwrap();
        let authorities = crate::pki::Authorities::new(crate::pki::Authority::load(&dir).unwrap());
        let state = AppState::new(
            &dir,
            dir.open_database().unwrap(),
            authorities,
            Default::default(),
            Default::default(),
        )
        .unwrap();
        (temp, state)
    }
}
