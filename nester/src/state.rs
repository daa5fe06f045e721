//! The one `Clone` application state both routers share.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::datadir::DataDir;
use crate::db::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub verifier: Arc<shared::Verifier>,
    /// The CA certificate, PEM, as served at `/ca.pem`.
    pub ca_pem: Arc<str>,
    pub max_body_bytes: usize,
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
            ca_pem: ca_pem.into(),
            max_body_bytes: config.ingest.max_body_bytes,
        })
    }
}
