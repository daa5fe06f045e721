//! The nester's Prometheus metrics: every name with its help text, the middleware timing each
//! route, and the `/metrics` listener, which reads the gauges that are cheaper to compute at
//! scrape time (database size, probes by status) than to keep current. No label names a
//! client, a host or a probe: their number would grow with the fleet.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::db::ProbeStatus;
use crate::db::writer::{COMMIT_DURATION as DB_COMMIT_DURATION, COMMIT_JOBS as DB_COMMIT_JOBS};
use crate::net::listener::{CONNECTIONS_ACTIVE, TLS_HANDSHAKE_FAILURES};
use crate::state::AppState;

pub const REPORTS_RECEIVED: &str = "seahawks_nester_reports_received_total";
pub const WAN_SAMPLES: &str = "seahawks_nester_wan_samples_received_total";
pub const REQUEST_DURATION: &str = "seahawks_nester_http_request_duration_seconds";
pub const DB_SIZE: &str = "seahawks_nester_db_size_bytes";
pub const PROBES: &str = "seahawks_nester_probes";
pub const BANS: &str = "seahawks_nester_bans_active";
pub const BANS_IN_KERNEL: &str = "seahawks_nester_bans_in_kernel";
pub const BUILD_INFO: &str = "seahawks_nester_build_info";
pub const SSH_CERTIFICATES: &str = "seahawks_nester_ssh_certificates_issued_total";
pub const SSH_TRUST_VERSION: &str = "seahawks_nester_ssh_trust_version";
pub const SSH_HARVESTERS: &str = "seahawks_nester_ssh_harvesters";

/// Installs the recorder and says what each metric means; call once at start.
pub fn install() {
    shared::metrics::recorder();
    describe_counter!(
        REPORTS_RECEIVED,
        "Reports posted to the ingest listener, by result: stored, duplicate, or the refusal code"
    );
    describe_counter!(WAN_SAMPLES, "WAN latency samples in stored reports");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer a request, by listener and route (the route's pattern, not its path)"
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES,
        "TLS handshakes that failed, by listener and reason"
    );
    describe_gauge!(CONNECTIONS_ACTIVE, "Open client connections, by listener");
    describe_histogram!(
        DB_COMMIT_JOBS,
        Unit::Count,
        "Writes (reports and others) per group commit of the database writer"
    );
    describe_histogram!(
        DB_COMMIT_DURATION,
        Unit::Seconds,
        "Time to run and commit one group commit"
    );
    describe_gauge!(DB_SIZE, Unit::Bytes, "Size of the SQLite database file");
    describe_gauge!(
        PROBES,
        "Enrolled probes, by status (revoked probes count as revoked)"
    );
    describe_gauge!(BANS, "Client addresses or networks banned now");
    describe_gauge!(
        BANS_IN_KERNEL,
        "Banned addresses or networks whose flood the kernel drops (a socket filter)"
    );
    describe_counter!(
        crate::net::access_log::DROPPED,
        "Access log lines dropped because the writer fell behind"
    );
    describe_counter!(
        SSH_CERTIFICATES,
        "SSH certificates signed, by kind: user (support engineers) or host (harvester boxes)"
    );
    describe_gauge!(
        SSH_TRUST_VERSION,
        "Version of the SSH trust (CAs and KRL); it rises with every revocation and rotation"
    );
    describe_gauge!(
        SSH_HARVESTERS,
        "Harvesters keeping their box's SSH trust, by what they hold: current, behind (not yet \
         fetched), failing (could not install what they were given)"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels say which nester this is");
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Times every request that matched a route of `listener` (a `route_layer`).
pub async fn track(State(listener): State<&'static str>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let mut response = next.run(request).await;
    histogram!(REQUEST_DURATION, "listener" => listener, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    // For the access log, which wraps the router and sees no matched path.
    response
        .extensions_mut()
        .insert(crate::net::access_log::Matched(route));
    response
}

/// One report posted: `result` is `stored`, `duplicate` or the refusal's code.
pub fn report_received(result: &str) {
    counter!(REPORTS_RECEIVED, "result" => result.to_string()).increment(1);
}

/// A report stored with `n` WAN samples.
pub fn wan_samples_stored(n: usize) {
    counter!(WAN_SAMPLES).increment(n as u64);
}

/// An SSH certificate signed: `kind` is `user` or `host`.
pub fn ssh_certificate_issued(kind: &'static str) {
    counter!(SSH_CERTIFICATES, "kind" => kind).increment(1);
}

/// The metrics listener: `GET /metrics` in Prometheus's text format.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    match state.db.file_bytes().await {
        Ok(bytes) => gauge!(DB_SIZE).set(bytes as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the database size"),
    }
    match state.db.probes(None, state.clock.now()).await {
        Ok(probes) => {
            for (label, status) in [
                ("online", Some(ProbeStatus::Online)),
                ("stale", Some(ProbeStatus::Stale)),
                ("offline", Some(ProbeStatus::Offline)),
                ("revoked", None),
            ] {
                let n = probes
                    .iter()
                    .filter(|p| match status {
                        Some(s) => !p.revoked && p.status == s,
                        None => p.revoked,
                    })
                    .count();
                gauge!(PROBES, "status" => label).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the probes"),
    }
    match state.db.active_bans().await {
        Ok(bans) => gauge!(BANS).set(bans.len() as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the bans"),
    }
    gauge!(BANS_IN_KERNEL).set(state.threats.kernel_banned() as f64);
    match (
        state.db.ssh_trust_version().await,
        state.db.ssh_trust_holders().await,
    ) {
        (Ok(version), Ok(holders)) => {
            gauge!(SSH_TRUST_VERSION).set(version as f64);
            let count = |f: &dyn Fn(&crate::db::ssh_trust::Holder) -> bool| {
                holders.iter().filter(|h| f(h)).count() as f64
            };
            let current = |h: &crate::db::ssh_trust::Holder| h.held_version == Some(version);
            gauge!(SSH_HARVESTERS, "holds" => "current").set(count(&current));
            gauge!(SSH_HARVESTERS, "holds" => "failing").set(count(&|h| h.behind));
            gauge!(SSH_HARVESTERS, "holds" => "behind").set(count(&|h| !h.behind && !current(h)));
        }
        _ => tracing::warn!("metrics: cannot read the SSH trust"),
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared::metrics::render(),
    )
        .into_response()
}
