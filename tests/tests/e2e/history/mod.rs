//! What the nester keeps of reports over time, through the client API: probe status, port
//! timelines, host search, WAN series, the change feed; paging, filters and bad parameters.
//! What it lets go of is `retention.rs`.

mod folding;
mod probes;
mod timelines;
mod writer;

use hyper::StatusCode;
use seahawks_tests::synthetic::{SimHost, SimProbe, wan};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::api::{at, get_ok, store};
use crate::harness::{Probe, TestNester};

/// `t` without sub-millisecond digits, as the nester stores times.
fn ms(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap()
}

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("not a time: {v}")),
        &Rfc3339,
    )
    .unwrap()
}

async fn bad_query(nester: &TestNester, path: &str) {
    let response = nester.get(path).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
    assert_eq!(response.error_code(), "bad_query", "{path}");
}

async fn bad_path(nester: &TestNester, path: &str) {
    let response = nester.get(path).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{path}");
    assert_eq!(response.error_code(), "bad_path", "{path}");
}

async fn not_found(nester: &TestNester, path: &str) {
    let response = nester.get(path).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
    assert_eq!(response.error_code(), "not_found", "{path}");
}

/// Four reports five minutes apart, ending one minute ago:
/// 1. gw (22), NAS-01 (80, 443), a printer (3389);
/// 2. NAS-01 closes 443;
/// 3. NAS-01 reopens 443; the printer goes down;
/// 4. the printer is back; gw opens 8080.
async fn four_reports(nester: &TestNester, probe: &Probe) -> (SimProbe, Vec<OffsetDateTime>) {
    let site = probe.identity().site;
    let mut sim = SimProbe::new(
        probe.id,
        &site,
        vec![
            SimHost::new(
                "10.0.0.1",
                Some("gw.kc.example"),
                &[(22, Some("SSH-2.0-OpenSSH_9.2"))],
            ),
            SimHost::new(
                "10.0.0.2",
                Some("NAS-01.kc.example"),
                &[(80, None), (443, None)],
            ),
            SimHost::new("10.0.0.10", None, &[(3389, None)]),
        ],
    );
    let start = ms(OffsetDateTime::now_utc() - Duration::minutes(16));
    let times: Vec<OffsetDateTime> = (0..4).map(|i| start + Duration::minutes(5 * i)).collect();
    for (i, t) in times.iter().enumerate() {
        match i {
            1 => sim.host_mut("10.0.0.2").close_port(443),
            2 => {
                sim.host_mut("10.0.0.2")
                    .open_port(443, Some("HTTP/1.1 200 OK"));
                sim.host_mut("10.0.0.10").up = false;
            }
            3 => {
                sim.host_mut("10.0.0.10").up = true;
                sim.host_mut("10.0.0.1").open_port(8080, None);
            }
            _ => {}
        }
        let rtt = 20.0 + i as f64;
        let report = sim.report(
            *t,
            vec![wan(
                "192.0.2.1",
                10,
                10 - i as u32,
                Some((rtt - 2.0, rtt, rtt + 8.0)),
            )],
        );
        nester.deliver(probe, &report).await;
    }
    (sim, times)
}
