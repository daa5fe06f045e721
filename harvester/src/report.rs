//! Turning a scan into a report.

use shared::report::{HostState, Report, SCHEMA_VERSION, WanMeasurement};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::scan::ScanResult;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn build(
    probe_id: Uuid,
    site: &str,
    sequence: u64,
    unsent_reports: u64,
    interval: std::time::Duration,
    scan: ScanResult,
    wan: Vec<WanMeasurement>,
) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        report_id: Uuid::now_v7(),
        probe_id,
        site: site.to_string(),
        harvester_version: VERSION.to_string(),
        sequence,
        unsent_reports,
        generated_at: OffsetDateTime::now_utc(),
        interval_s: interval.as_secs(),
        scan: scan.parameters,
        hosts_up: u32::try_from(
            scan.hosts
                .iter()
                .filter(|h| h.state == HostState::Up)
                .count(),
        )
        .unwrap_or(u32::MAX),
        hosts: scan.hosts,
        wan,
    }
}
