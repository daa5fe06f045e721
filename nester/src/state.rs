//! The one `Clone` application state both routers share.

use std::sync::Arc;

use anyhow::Context;

use crate::auth::session::SessionPolicy;
use crate::clock::Clock;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::enroll::{self, EnrollLimiter};
use crate::pki::Ca;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub verifier: Arc<shared::Verifier>,
    /// Signs probe certificates at enrollment and renewal.
    pub ca: Arc<Ca>,
    pub probe_validity: time::Duration,
    pub enroll_limiter: EnrollLimiter,
    /// The CA certificate, PEM, as served at `/ca.pem`.
    pub ca_pem: Arc<str>,
    pub max_body_bytes: usize,
    /// Largest body on the web listener.
    pub web_max_body_bytes: usize,
    pub clock: Clock,
    pub sessions: SessionPolicy,
    /// Verified against when a user name is unknown, so that answer takes as long as a
    /// wrong password.
    pub decoy_hash: Arc<tokio::sync::OnceCell<String>>,
    /// API answers given again while the database is unchanged.
    pub answers: crate::web::cache::Answers,
}

impl AppState {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let dir = DataDir::new(&config.data_dir);
        let ca = crate::tls::ca_cert(&dir)?;
        let ca_pem =
            std::fs::read_to_string(dir.pki("ca.pem")).context("cannot read the CA certificate")?;
        let db = Db::open(&dir.database())
            .with_context(|| format!("cannot open the database {}", dir.database().display()))?;
        Ok(Self {
            db,
            verifier: Arc::new(
                shared::Verifier::new(ca).context("the CA certificate is unusable")?,
            ),
            ca: Arc::new(Ca::load(&dir)?),
            probe_validity: time::Duration::days(config.ingest.probe_certificate_days.into()),
            enroll_limiter: enroll::limiter(config.ingest.enroll_per_minute),
            ca_pem: ca_pem.into(),
            max_body_bytes: config.ingest.max_body_bytes,
            web_max_body_bytes: config.web.max_body_bytes,
            clock: Clock::default(),
            sessions: SessionPolicy {
                idle: config.web.session_idle.try_into()?,
                absolute: config.web.session_lifetime.try_into()?,
            },
            decoy_hash: Arc::default(),
            answers: Default::default(),
        })
    }
}
