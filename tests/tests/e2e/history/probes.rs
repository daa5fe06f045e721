//! Probes over the client API: status, filters and detail; gzip for clients that accept it; reports
//! paged and filtered by time.

use hyper::StatusCode;
use serde_json::Value;
use time::Duration;

use super::*;
use crate::harness::TestNester;

#[tokio::test]
async fn probes_status_filters_and_detail() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let site = probe.identity().site;
    let _quiet = nester.probe().await; // enrolled, never reported
    four_reports(&nester, &probe).await;
    let id = probe.id.to_string();

    let all = get_ok(&nester, "/api/v1/probes").await;
    let ours = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe_id"] == id.as_str())
        .unwrap();
    assert_eq!(ours["status"], "online");
    assert_eq!(ours["interval_s"], 300);
    assert_eq!(ours["wan"][0]["target"], "192.0.2.1");
    assert_eq!(ours["wan"][0]["median_ms"], 23.0);
    assert_eq!(ours["wan"][0]["loss_pct"], 30.0);
    let online = get_ok(&nester, "/api/v1/probes?status=online").await;
    assert_eq!(online.as_array().unwrap().len(), 1, "{online}");
    assert_eq!(online[0]["probe_id"], id.as_str());
    let offline = get_ok(&nester, "/api/v1/probes?status=offline").await;
    assert_eq!(
        offline.as_array().unwrap().len(),
        1,
        "the probe that never reported: {offline}"
    );
    assert_ne!(offline[0]["probe_id"], id.as_str());
    let by_site = get_ok(
        &nester,
        &format!("/api/v1/probes?site={site}&status=online"),
    )
    .await;
    assert_eq!(by_site.as_array().unwrap().len(), 1);
    let elsewhere = get_ok(&nester, "/api/v1/probes?site=nowhere").await;
    assert_eq!(elsewhere, serde_json::json!([]));
    bad_query(&nester, "/api/v1/probes?status=asleep").await;
    bad_query(&nester, "/api/v1/probes?colour=red").await;

    // The last report is a minute old; the interval is 5 minutes. Stale past 10 minutes,
    // offline past 30.
    nester.clock().advance(Duration::minutes(15));
    assert_eq!(
        get_ok(&nester, &format!("/api/v1/probes/{id}")).await["status"],
        "stale"
    );
    nester.clock().advance(Duration::minutes(20));
    assert_eq!(
        get_ok(&nester, &format!("/api/v1/probes/{id}")).await["status"],
        "offline"
    );

    let detail = get_ok(&nester, &format!("/api/v1/probes/{id}")).await;
    assert_eq!(detail["site"], site.as_str());
    assert_eq!(detail["hosts_up"], 3);
    assert_eq!(detail["open_ports"], 5, "22, 8080, 80, 443, 3389: {detail}");
    assert_eq!(detail["last_report"]["sequence"], 4);
    assert_eq!(detail["harvester_version"], "0.1.0-sim");
    assert!(detail["certificate_expires_at"].is_string());
    assert_eq!(detail["gaps"], serde_json::json!([]));
    let day = &detail["wan_24h"][0];
    assert_eq!(day["samples"], 4);
    assert_eq!(
        (day["sent"].as_u64(), day["received"].as_u64()),
        (Some(40), Some(34))
    );
    assert_eq!(day["median_ms"], 21.5, "median of 20, 21, 22, 23");
    assert_eq!(
        (day["min_ms"].as_f64(), day["max_ms"].as_f64()),
        (Some(18.0), Some(31.0))
    );
    assert_eq!(
        get_ok(&nester, "/api/v1/sites").await[0]["name"],
        site.as_str()
    );

    not_found(
        &nester,
        "/api/v1/probes/00000000-0000-0000-0000-000000000000",
    )
    .await;
    bad_path(&nester, "/api/v1/probes/not-a-uuid").await;
}

#[tokio::test]
async fn answers_are_gzipped_for_clients_that_accept_it() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    four_reports(&nester, &probe).await;
    let path = format!("/api/v1/probes/{}/hosts", probe.id);
    let ask = |encoding: &'static str| {
        let (nester, path) = (&nester, path.clone());
        async move {
            let bearer = format!("Bearer {}", nester.api_token);
            let headers = [
                ("authorization", bearer.as_str()),
                ("accept-encoding", encoding),
            ];
            let response = nester
                .anonymous(hyper::Method::GET, &path, &headers, Vec::new())
                .await;
            assert_eq!(response.status, StatusCode::OK, "{encoding}");
            assert_eq!(response.header("vary"), "accept-encoding");
            response
        }
    };
    let plain = ask("identity").await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.body.len() > 1_024, "large enough to be compressed");
    // Twice: the first answer is computed, the second one kept.
    for _ in 0..2 {
        let gzipped = ask("br;q=1.0, gzip;q=0.8").await;
        assert_eq!(gzipped.header("content-encoding"), "gzip");
        assert!(gzipped.body.len() < plain.body.len() / 2);
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzipped.body[..]),
            &mut inflated,
        )
        .unwrap();
        assert_eq!(inflated, plain.body);
    }
    let refused = ask("gzip;q=0").await;
    assert!(refused.headers.get("content-encoding").is_none());
    assert_eq!(refused.body, plain.body);
}

#[tokio::test]
async fn reports_page_and_filter_by_time() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (_, times) = four_reports(&nester, &probe).await;
    let base = format!("/api/v1/probes/{}/reports", probe.id);

    let first = get_ok(&nester, &format!("{base}?limit=3")).await;
    let sequences = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["sequence"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(sequences(&first), [4, 3, 2]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_ok(&nester, &format!("{base}?limit=3&cursor={cursor}")).await;
    assert_eq!(sequences(&second), [1]);
    assert!(second["next_cursor"].is_null());

    let from = at(times[1]);
    let to = at(times[3]);
    let window = get_ok(&nester, &format!("{base}?from={from}&to={to}")).await;
    assert_eq!(sequences(&window), [3, 2], "from inclusive, to exclusive");
    let report_id = window["items"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed = get_ok(&nester, &format!("/api/v1/reports/{report_id}")).await;
    assert_eq!(parsed["sequence"], 3);
    let signed = nester
        .get(&format!("/api/v1/reports/{report_id}/signed"))
        .await;
    assert_eq!(signed.header("content-type"), "application/jose");
    assert_eq!(signed.body.iter().filter(|&&b| b == b'.').count(), 2);

    for bad in [
        "?limit=0",
        "?limit=501",
        "?limit=many",
        "?cursor=abc",
        "?from=yesterday",
        "?from=2026-11-21T10:00:00Z&to=2026-11-21T09:00:00Z",
        "?sort=asc",
    ] {
        bad_query(&nester, &format!("{base}{bad}")).await;
    }
    not_found(
        &nester,
        "/api/v1/probes/00000000-0000-0000-0000-000000000000/reports",
    )
    .await;
    not_found(
        &nester,
        "/api/v1/reports/00000000-0000-0000-0000-000000000000",
    )
    .await;
}
