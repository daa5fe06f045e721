//! The harvester's Prometheus metrics, on `[metrics] listen` (plain HTTP, `GET /metrics`):
//! what the agent records as it goes (scans, WAN, deliveries) and what is read from the state
//! directory at scrape time (spool, unsent reports, certificate expiry), as `harvester status`
//! reads it. Labels name WAN targets (a handful, from the config) and never a scanned host.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use shared::report::Report;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::status::Status;
use crate::uplink::UplinkError;

const SCAN_DURATION: &str = "seahawks_harvester_scan_duration_seconds";
const HOSTS_UP: &str = "seahawks_harvester_hosts_up";
const OPEN_PORTS: &str = "seahawks_harvester_open_ports";
const WAN_RTT: &str = "seahawks_harvester_wan_rtt_median_seconds";
const WAN_LOSS: &str = "seahawks_harvester_wan_loss_ratio";
const REPORTS_SPOOLED: &str = "seahawks_harvester_reports_spooled_total";
const REPORTS_DELIVERED: &str = "seahawks_harvester_reports_delivered_total";
const REPORTS_LOST: &str = "seahawks_harvester_reports_lost_total";
const UPLOAD_FAILURES: &str = "seahawks_harvester_upload_failures_total";
const SPOOL_REPORTS: &str = "seahawks_harvester_spool_reports";
const SPOOL_BYTES: &str = "seahawks_harvester_spool_bytes";
const SPOOL_OLDEST: &str = "seahawks_harvester_spool_oldest_age_seconds";
const UNSENT: &str = "seahawks_harvester_unsent_reports";
const REJECTED: &str = "seahawks_harvester_rejected_reports";
const CERT_EXPIRY: &str = "seahawks_harvester_certificate_expiry_timestamp_seconds";
const LAST_UPLOAD: &str = "seahawks_harvester_last_upload_timestamp_seconds";
const BUILD_INFO: &str = "seahawks_harvester_build_info";

/// Installs the recorder and says what each metric means; call once at start.
pub fn install() {
    shared::metrics::recorder();
    describe_histogram!(
        SCAN_DURATION,
        Unit::Seconds,
        "Time to scan the site, per cycle"
    );
    describe_gauge!(HOSTS_UP, "Hosts found up by the last scan");
    describe_gauge!(
        OPEN_PORTS,
        "Open ports found by the last scan, on all hosts"
    );
    describe_gauge!(
        WAN_RTT,
        Unit::Seconds,
        "Median round trip to each WAN target, last measurement"
    );
    describe_gauge!(
        WAN_LOSS,
        "Share of WAN probes lost (0 to 1), per target, last measurement"
    );
    describe_counter!(REPORTS_SPOOLED, "Reports signed and written to the spool");
    describe_counter!(REPORTS_DELIVERED, "Reports the nester acknowledged");
    describe_counter!(
        REPORTS_LOST,
        "Reports lost on purpose, by reason: not produced or dropped (spool full), rejected by the nester for good"
    );
    describe_counter!(
        UPLOAD_FAILURES,
        "Failed deliveries (retried later), by reason"
    );
    describe_gauge!(SPOOL_REPORTS, "Reports waiting in the spool");
    describe_gauge!(SPOOL_BYTES, Unit::Bytes, "Bytes waiting in the spool");
    describe_gauge!(
        SPOOL_OLDEST,
        Unit::Seconds,
        "Age of the oldest report in the spool (0 when empty)"
    );
    describe_gauge!(
        UNSENT,
        "Reports never produced or dropped, in total since enrollment"
    );
    describe_gauge!(
        REJECTED,
        "Reports the nester refused for good, kept in rejected/"
    );
    describe_gauge!(
        CERT_EXPIRY,
        Unit::Seconds,
        "When the probe certificate expires (Unix time)"
    );
    describe_gauge!(
        LAST_UPLOAD,
        Unit::Seconds,
        "When the nester last acknowledged a report (Unix time)"
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say which harvester this is"
    );
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// A scan cycle's report, spooled after `took`.
pub fn spooled(report: &Report, took: Duration) {
    histogram!(SCAN_DURATION).record(took.as_secs_f64());
    gauge!(HOSTS_UP).set(f64::from(report.hosts_up));
    let open = report
        .hosts
        .iter()
        .flat_map(|h| &h.ports)
        .filter(|p| p.state == shared::report::PortState::Open)
        .count();
    gauge!(OPEN_PORTS).set(open as f64);
    for w in &report.wan {
        if let Some(ms) = w.median_ms {
            gauge!(WAN_RTT, "target" => w.target.clone()).set(ms / 1000.0);
        }
        gauge!(WAN_LOSS, "target" => w.target.clone()).set(w.loss_pct / 100.0);
    }
    counter!(REPORTS_SPOOLED).increment(1);
}

pub fn delivered() {
    counter!(REPORTS_DELIVERED).increment(1);
}

/// `n` reports lost on purpose: `not_produced`, `dropped_oldest` or `rejected`.
pub fn lost(reason: &'static str, n: u64) {
    counter!(REPORTS_LOST, "reason" => reason).increment(n);
}

pub fn upload_failed(e: &UplinkError) {
    let reason = match e {
        UplinkError::Connect { .. } => "connect",
        UplinkError::Tls { .. } | UplinkError::UntrustedNester(_) => "tls",
        UplinkError::Timeout(_) => "timeout",
        UplinkError::Http(_) => "http",
        UplinkError::BadAddress(_) => "bad_address",
        UplinkError::Refused { status, .. } if status.is_server_error() => "server_error",
        UplinkError::Refused { .. } => "refused",
    };
    counter!(UPLOAD_FAILURES, "reason" => reason).increment(1);
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Config) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let config = config.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let config = config.clone();
                async move { Ok::<_, Infallible>(answer(&req, &config)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn answer<B>(req: &Request<B>, config: &Config) -> Response<Full<Bytes>> {
    let reply = |status, content_type, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "see /metrics\n".into());
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match Status::read(config) {
        Ok(status) => {
            gauge!(SPOOL_REPORTS).set(status.spool_reports as f64);
            gauge!(SPOOL_BYTES).set(status.spool_bytes as f64);
            gauge!(SPOOL_OLDEST).set(status.oldest_report_age_secs.unwrap_or(0) as f64);
            gauge!(UNSENT).set(status.unsent_reports as f64);
            gauge!(REJECTED).set(status.rejected_reports as f64);
            gauge!(CERT_EXPIRY).set(status.certificate_expires_at.unix_timestamp() as f64);
            if let Some(at) = status.last_upload {
                gauge!(LAST_UPLOAD).set(at.unix_timestamp() as f64);
            }
        }
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "metrics: cannot read the state directory"
        ),
    }
    reply(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        shared::metrics::render(),
    )
}
