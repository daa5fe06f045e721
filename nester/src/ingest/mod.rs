//! The ingest listener: harvesters enroll (`enroll.rs`), renew their certificate, fetch the
//! CAs to trust, fetch their box's SSH trust (`ssh_trust.rs`) and host certificate
//! (`ssh_host.rs`) and post signed reports
//! (`reports.rs`) here. [`ProbeIdentity`] (`identity.rs`) is the extractor for
//! "which enrolled, unrevoked probe is this"; every route but enrollment takes it.

mod enroll;
mod identity;
mod reports;
mod ssh_host;
mod ssh_trust;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use shared::protocol::{
    ENROLL_PATH, RENEW_PATH, REPORTS_PATH, SSH_HOST_CERTIFICATE_PATH, SSH_TRUST_PATH, TRUST_PATH,
};

pub use enroll::EnrollLimiter;
pub use identity::ProbeIdentity;
pub use reports::MAX_CLOCK_SKEW;

use crate::config::IngestConfig;
use crate::error::{method_not_allowed, not_found};
use crate::state::AppState;

/// What the ingest routes read: the shared state and the ingest settings.
#[derive(Clone)]
pub struct IngestState {
    pub app: AppState,
    probe_validity: time::Duration,
    enroll_limiter: EnrollLimiter,
    max_body_bytes: usize,
}

impl IngestState {
    pub fn new(app: AppState, config: &IngestConfig) -> Self {
        Self {
            app,
            probe_validity: time::Duration::days(config.probe_certificate_days.into()),
            enroll_limiter: enroll::limiter(config.enroll_per_minute),
            max_body_bytes: config.max_body_bytes,
        }
    }
}

pub fn router(state: IngestState) -> Router {
    Router::new()
        .route(REPORTS_PATH, post(reports::receive))
        .route(ENROLL_PATH, post(enroll::enroll))
        .route(RENEW_PATH, post(enroll::renew))
        .route(TRUST_PATH, get(enroll::trust))
        .route(SSH_TRUST_PATH, get(ssh_trust::ssh_trust))
        .route(SSH_HOST_CERTIFICATE_PATH, post(ssh_host::host_certificate))
        .route_layer(axum::middleware::from_fn_with_state(
            "ingest",
            crate::metrics::track,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}
