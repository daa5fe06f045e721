//! What both listeners share: the database, the one clock, the CA certificate and the report
//! verifier built from it. State only one router reads lives with that router
//! ([`IngestState`](crate::ingest::IngestState), the web's answer cache and guard).

use std::sync::Arc;

use anyhow::Context;

use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::db::Db;
use crate::pki::CaCert;
use crate::threat::{ThreatConfig, Threats};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The database's clock: everything reads "now" here, and tests move it.
    pub clock: Clock,
    /// Served at `/ca.pem` and handed to enrolling probes; reports must chain to it.
    pub ca: CaCert,
    pub verifier: Arc<shared::Verifier>,
    /// The data directory, for what lives beside the database (the audit checkpoints).
    pub dir: DataDir,
    /// The ban list and the rules that fill it.
    pub threats: Arc<Threats>,
}

impl AppState {
    pub fn new(dir: &DataDir, db: Db, ca: CaCert, threats: ThreatConfig) -> anyhow::Result<Self> {
        Ok(Self {
            dir: dir.clone(),
            threats: Threats::new(threats, db.clone()),
            clock: db.clock().clone(),
            db,
            verifier: Arc::new(
                shared::Verifier::new(ca.der.clone()).context("the CA certificate is unusable")?,
            ),
            ca,
        })
    }
}
