//! One report as stored: its hosts, ports and WAN measurements, and whether its signature
//! still verifies.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::rows::{WanCell, serde_label};
use crate::auth::Caller;
use crate::clock::{rfc3339, unix_time};
use crate::error::{ApiError, ApiPath};
use crate::state::AppState;
use crate::web::view::{Nav, ok};

struct ReportHost {
    address: String,
    hostname: String,
    state: String,
    os: String,
    ports: Vec<ReportPort>,
}

struct ReportPort {
    port: String,
    state: String,
    banner: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    nav: Option<Nav>,
    report_id: String,
    probe_id: String,
    site: String,
    sequence: u64,
    generated_at: String,
    received_at: String,
    signature_ok: bool,
    signature: String,
    scan: String,
    hosts: Vec<ReportHost>,
    wan: Vec<WanCell>,
}

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(report_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("no report {report_id}"));
    let summary = state
        .db
        .report_summary(report_id)
        .await?
        .ok_or_else(missing)?;
    let jws = state.db.report_jws(report_id).await?.ok_or_else(missing)?;
    // Checked again now, against every CA this nester ever had (a report from before a CA
    // rotation still verifies), as of the time the report was made.
    let at = unix_time(summary.generated_at);
    let every_ca = state
        .authorities
        .get()
        .every_ca()
        .into_iter()
        .map(|ca| ca.der.clone())
        .collect();
    let verifier = shared::Verifier::with_roots(every_ca).map_err(ApiError::internal)?;
    let (signature_ok, signature, report) = match verifier.verify(&jws, at) {
        Ok(v) => (
            true,
            format!(
                "valid: signed by probe {} (certificate SHA-256 {}), which chains to this nester's CA",
                v.probe_id, v.kid
            ),
            v.report,
        ),
        Err(e) => {
            let payload = shared::jws::payload_unverified(&jws).map_err(ApiError::internal)?;
            let report = shared::Report::from_json(&payload).map_err(ApiError::internal)?;
            (false, format!("does not verify: {e}"), report)
        }
    };
    let scan = format!(
        "targets {} · ports {} · {} hosts up · {:.1} s",
        report.scan.targets.join(", "),
        report.scan.ports,
        report.hosts_up,
        (report.scan.finished_at - report.scan.started_at).as_seconds_f64()
    );
    let hosts = report
        .hosts
        .iter()
        .map(|h| ReportHost {
            address: h.address.to_string(),
            hostname: h.hostname.clone().unwrap_or_default(),
            state: serde_label(&h.state),
            os: if h.os.evidence.is_empty() {
                "unknown".into()
            } else {
                format!(
                    "{} ({} %): {}",
                    serde_label(&h.os.family),
                    h.os.confidence,
                    h.os.evidence.join("; ")
                )
            },
            ports: h
                .ports
                .iter()
                .map(|p| ReportPort {
                    port: format!("{}/{}", p.port, p.protocol.as_str()),
                    state: serde_label(&p.state),
                    banner: p.banner.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let wan = report
        .wan
        .iter()
        .map(|m| WanCell {
            target: format!("{} ({})", m.target, serde_label(&m.method)),
            median: m.median_ms.map_or("—".into(), |v| format!("{v:.1} ms")),
            loss: format!("{:.0} %", m.loss_pct),
            lossy: m.loss_pct > 0.0,
        })
        .collect();
    ok(&ReportPage {
        nav: Nav::of(&caller),
        report_id: report_id.to_string(),
        probe_id: summary.probe_id.to_string(),
        site: summary.site,
        sequence: summary.sequence,
        generated_at: rfc3339(summary.generated_at),
        received_at: rfc3339(summary.received_at),
        signature_ok,
        signature,
        scan,
        hosts,
        wan,
    })
}
