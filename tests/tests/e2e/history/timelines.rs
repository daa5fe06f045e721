//! A host's port timeline, host search and the change feed; the WAN series raw and rolled up.

use time::Duration;

use super::*;
use crate::harness::TestNester;

#[tokio::test]
async fn port_timeline_search_and_change_feed() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (_, t) = four_reports(&nester, &probe).await;

    // Search: any part of a name or address, any case, across sites.
    let found = get_ok(&nester, "/api/v1/hosts?q=nas-01").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let nas = &found["items"][0];
    assert_eq!(nas["hostname"], "NAS-01.kc.example");
    assert_eq!(nas["up"], true);
    let ports: Vec<u64> = nas["open_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    assert_eq!(nas["open_ports"][1]["banner"], "HTTP/1.1 200 OK");
    let by_ip = get_ok(&nester, "/api/v1/hosts?q=0.0.1").await;
    let addresses: Vec<&str> = by_ip["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, ["10.0.0.1", "10.0.0.10"]);
    let first = get_ok(&nester, "/api/v1/hosts?q=10.0.0&limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let rest = get_ok(
        &nester,
        &format!(
            "/api/v1/hosts?q=10.0.0&limit=2&cursor={}",
            first["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    // LIKE wildcards are text, not patterns.
    assert_eq!(
        get_ok(&nester, "/api/v1/hosts?q=%25").await["items"],
        serde_json::json!([])
    );
    assert_eq!(
        get_ok(&nester, "/api/v1/hosts?q=_").await["items"],
        serde_json::json!([])
    );
    bad_query(&nester, "/api/v1/hosts").await;
    bad_query(&nester, "/api/v1/hosts?q=").await;
    bad_query(&nester, &format!("/api/v1/hosts?q={}", "a".repeat(257))).await;

    // NAS-01's 443: open at 1, closed at 2 (last seen at 1), reopened at 3, open since.
    let host = get_ok(&nester, &format!("/api/v1/hosts/{}", nas["host_id"])).await;
    let https = host["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 443)
        .unwrap();
    assert_eq!(https["open"], true);
    assert_eq!(time_of(&https["first_seen_open"]), t[0]);
    assert_eq!(time_of(&https["last_seen_open"]), t[3]);
    let spans = https["intervals"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{https}");
    assert_eq!(time_of(&spans[0]["from"]), t[0]);
    assert_eq!(time_of(&spans[0]["until"]), t[1]);
    assert_eq!(time_of(&spans[0]["last_seen_at"]), t[0]);
    assert_eq!(time_of(&spans[1]["from"]), t[2]);
    assert!(spans[1]["until"].is_null());
    let http = host["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 80)
        .unwrap();
    assert_eq!(
        http["intervals"].as_array().unwrap().len(),
        1,
        "never closed"
    );

    // The printer: up at 1, down at 3 (last seen at 2), back at 4; its port with it.
    let printer = get_ok(&nester, "/api/v1/hosts?q=10.0.0.10").await["items"][0]["host_id"].clone();
    let printer = get_ok(&nester, &format!("/api/v1/hosts/{printer}")).await;
    let up = printer["up"].as_array().unwrap();
    assert_eq!(up.len(), 2);
    assert_eq!(
        (time_of(&up[0]["until"]), time_of(&up[0]["last_seen_at"])),
        (t[2], t[1])
    );
    assert_eq!(time_of(&up[1]["from"]), t[3]);
    assert_eq!(
        printer["ports"][0]["intervals"].as_array().unwrap().len(),
        2
    );
    not_found(&nester, "/api/v1/hosts/999999").await;
    bad_path(&nester, "/api/v1/hosts/abc").await;

    // The change feed after the first report, oldest first, paged.
    let since = at(t[0] + Duration::seconds(1));
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = get_ok(
            &nester,
            &format!("/api/v1/changes?since={since}&limit=2{cursor}"),
        )
        .await;
        for c in page["items"].as_array().unwrap() {
            let port = c["port"]
                .as_u64()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            seen.push(format!(
                "{} {}{port}",
                c["kind"].as_str().unwrap(),
                c["address"].as_str().unwrap()
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "port_closed 10.0.0.2 443",
            "port_opened 10.0.0.2 443",
            "port_closed 10.0.0.10 3389",
            "host_down 10.0.0.10",
            "port_opened 10.0.0.1 8080",
            "host_up 10.0.0.10",
            "port_opened 10.0.0.10 3389",
        ],
    );
    let everything = get_ok(&nester, "/api/v1/changes?limit=500").await;
    assert_eq!(
        everything["items"].as_array().unwrap().len(),
        3 + 4 + 7,
        "3 hosts up and 4 ports open at first"
    );
    let other_site = get_ok(&nester, "/api/v1/changes?site=nowhere").await;
    assert_eq!(other_site["items"], serde_json::json!([]));
    bad_query(&nester, "/api/v1/changes?since=last-week").await;
    bad_query(&nester, "/api/v1/changes?cursor=-").await;
    bad_query(&nester, "/api/v1/changes?probe_id=42").await;
}

#[tokio::test]
async fn wan_series_raw_and_rolled_up() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (_, t) = four_reports(&nester, &probe).await;
    let base = format!("/api/v1/probes/{}/wan", probe.id);

    let raw = get_ok(&nester, &base).await;
    assert_eq!(raw["resolution"], "raw", "24 h by default");
    let points = raw["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(time_of(&points[0]["at"]), t[0]);
    assert_eq!(points[3]["loss_pct"], 30.0);

    let hourly = get_ok(&nester, &format!("{base}?resolution=hour")).await;
    let sent: u64 = hourly["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sent"].as_u64().unwrap())
        .sum();
    let samples: u64 = hourly["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["samples"].as_u64().unwrap())
        .sum();
    assert_eq!((sent, samples), (40, 4), "every sample in some hour");
    let window = get_ok(
        &nester,
        &format!("{base}?from={}&to={}", at(t[1]), at(t[2])),
    )
    .await;
    assert_eq!(window["points"].as_array().unwrap().len(), 1);
    let long = get_ok(
        &nester,
        &format!("{base}?from={}", at(t[0] - Duration::days(90))),
    )
    .await;
    assert_eq!(long["resolution"], "day");

    bad_query(&nester, &format!("{base}?resolution=minute")).await;
    bad_query(
        &nester,
        &format!("{base}?from={}&to={}", at(t[2]), at(t[1])),
    )
    .await;
    bad_query(&nester, &format!("{base}?from=1700000000")).await;
    not_found(
        &nester,
        "/api/v1/probes/00000000-0000-0000-0000-000000000000/wan",
    )
    .await;
}
