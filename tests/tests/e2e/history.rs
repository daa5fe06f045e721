//! What the nester keeps of reports over time, through the client API: probe status, port
//! timelines, host search, WAN series, the change feed; paging, filters and bad parameters.
//! What it lets go of is `retention.rs`.

use hyper::StatusCode;
use nester::db::SignedReport;
use seahawks_tests::synthetic::{SimHost, SimProbe, wan};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::harness::{Probe, TestNester};

pub(crate) fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

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

pub(crate) async fn get_ok(nester: &TestNester, path: &str) -> Value {
    let response = nester.get(path).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&response.body)
    );
    response.json()
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

/// Stores a report signed by the test straight through the database, past the listener.
pub(crate) async fn store(
    db: &nester::db::Db,
    report: shared::Report,
    jws: String,
) -> nester::db::Inserted {
    let signed = SignedReport::own(report, "kid".into(), jws.into_bytes()).unwrap();
    db.insert_report(signed, db.expect_write()).await.unwrap()
}

async fn get_all(nester: &TestNester, paths: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for path in paths {
        all.push(get_ok(nester, path).await);
    }
    all
}

/// Whether this report key is still staged. A fold is one transaction and only ever moves
/// keys out, so if it is, every step since the report was stored saw the staged tables.
fn still_staged(nester: &TestNester, probe: &Probe, sequence: u64) -> bool {
    nester.scalar(&format!(
        "SELECT count(*) FROM report_sequences_staged
          WHERE probe_id = '{}' AND sequence = {sequence}",
        probe.id
    )) == 1
}

/// The writer folds after a pause of [`nester::db::FOLD_IDLE`], and a loaded machine can
/// pause a test that long between two steps. A step that must see staged keys checks
/// [`still_staged`] after it and is tried again, this many times in all.
const STAGED_ATTEMPTS: usize = 4;

fn history_reads(probe: &Probe, times: &[OffsetDateTime]) -> Vec<String> {
    vec![
        format!("/api/v1/probes/{}/reports?limit=3", probe.id),
        format!(
            "/api/v1/probes/{}/reports?from={}&to={}",
            probe.id,
            at(times[1]),
            at(times[3])
        ),
        format!(
            "/api/v1/probes/{}/wan?from={}&to={}",
            probe.id,
            at(times[0] - Duration::hours(1)),
            at(times[3] + Duration::hours(1))
        ),
        format!("/api/v1/probes/{}", probe.id),
    ]
}

/// New report keys and WAN samples are staged in small tables and folded into the large
/// ones (nester/src/db/staging.rs): every read answers the same from either, a sequence is
/// refused when taken in either, and a pause in ingest folds.
#[tokio::test]
async fn reads_are_the_same_before_and_after_keys_are_folded() {
    let staged = |n: &TestNester| {
        (
            n.count("report_sequences_staged"),
            n.count("wan_samples_staged"),
        )
    };
    let folded = |n: &TestNester| (n.count("report_sequences"), n.count("wan_samples"));

    // Reads while all four reports' keys are staged.
    let mut attempt = 0;
    let (mut nester, probe, mut sim, times, before) = loop {
        attempt += 1;
        let nester = TestNester::start().await;
        let probe = nester.probe().await;
        let (sim, times) = four_reports(&nester, &probe).await;
        assert_eq!(folded(&nester).0 + staged(&nester).0, 4);
        let before = get_all(&nester, &history_reads(&probe, &times)).await;
        if staged(&nester) == (4, 4) {
            break (nester, probe, sim, times, before);
        }
        assert!(
            attempt < STAGED_ATTEMPTS,
            "ingest writes staged keys, which stay until a pause (or a pause came in every attempt)"
        );
    };
    let reads = history_reads(&probe, &times);
    assert_eq!(folded(&nester), (0, 0));
    assert_eq!(before[0]["items"].as_array().unwrap().len(), 3);
    assert_eq!(before[2]["points"].as_array().unwrap().len(), 4);

    nester.restart().await;
    assert_eq!(staged(&nester), (0, 0), "opening the database folds");
    assert_eq!(folded(&nester), (4, 4));
    let after = get_all(&nester, &reads).await;
    for (path, (b, a)) in reads.iter().zip(before.iter().zip(&after)) {
        assert_eq!(b, a, "{path}");
    }

    // A sequence is taken whether its key is folded (2) or staged (the newest report's).
    let refused = |sim: &mut SimProbe, sequence: u64| {
        let mut again = sim.report(ms(OffsetDateTime::now_utc()), vec![]);
        again.sequence = sequence;
        let jws = probe.signer().sign_report(&again).unwrap();
        let db = nester.db();
        async move {
            let outcome = store(db, again, jws).await;
            assert_eq!(
                outcome,
                nester::db::Inserted::ConflictingSequence,
                "sequence {sequence}"
            );
        }
    };
    refused(&mut sim, 2).await;
    let sample = || vec![wan("192.0.2.1", 10, 10, Some((20.0, 21.0, 22.0)))];
    let mut newest = 0;
    for attempt in 1..=STAGED_ATTEMPTS {
        let fresh = sim.report(ms(OffsetDateTime::now_utc()), sample());
        newest = fresh.sequence;
        nester.deliver(&probe, &fresh).await;
        refused(&mut sim, newest).await;
        if still_staged(&nester, &probe, newest) {
            break;
        }
        assert!(attempt < STAGED_ATTEMPTS, "a pause came in every attempt");
    }
    let latest = get_ok(&nester, &format!("/api/v1/probes/{}/reports", probe.id)).await;
    assert_eq!(latest["items"][0]["sequence"], newest);

    // A late report with the time of the second: stored, but its WAN sample is one the
    // folded table has, so it stays out of the staged one.
    let late_sample = || {
        nester.scalar(&format!(
            "SELECT count(*) FROM wan_samples_staged WHERE at_ms = {}",
            times[1].unix_timestamp_nanos() / 1_000_000
        ))
    };
    let mut lates = 0;
    for attempt in 1..=STAGED_ATTEMPTS {
        let late = sim.report(times[1], sample());
        nester.deliver(&probe, &late).await;
        lates += 1;
        if still_staged(&nester, &probe, late.sequence) {
            assert_eq!(
                late_sample(),
                0,
                "the late report's WAN sample is already kept"
            );
            break;
        }
        assert!(attempt < STAGED_ATTEMPTS, "a pause came in every attempt");
    }

    // Nothing more arrives: the writer folds on its own within a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while staged(&nester) != (0, 0) {
        assert!(std::time::Instant::now() < deadline, "a pause folds");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(late_sample(), 0);
    let (sequences, samples) = folded(&nester);
    assert_eq!(
        samples,
        sequences - lates,
        "one WAN sample per report but the {lates} late ones"
    );
}

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

/// A nester and one probe that sees one host (10.0.0.1, port 22 open); `at(m)` is m
/// minutes after a start ten minutes ago.
async fn gateway_probe() -> (TestNester, Probe, SimProbe, impl Fn(i64) -> OffsetDateTime) {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let sim = SimProbe::new(
        probe.id,
        &probe.identity().site,
        vec![SimHost::new("10.0.0.1", Some("gw"), &[(22, None)])],
    );
    let start = ms(OffsetDateTime::now_utc() - Duration::minutes(10));
    (nester, probe, sim, move |minutes| {
        start + Duration::minutes(minutes)
    })
}

/// The writer remembers each probe's hosts and open ports between reports; what another
/// connection (the CLI, a repair by hand) or one of the nester's own exclusive writes changes
/// in the history tables, the next report sees.
#[tokio::test]
async fn history_follows_changes_made_behind_the_writer() {
    let (nester, probe, mut sim, at) = gateway_probe().await;
    // (open intervals, all intervals) of port 22.
    let intervals = |n: &TestNester| -> (i64, i64) {
        n.sqlite()
            .query_row(
                "SELECT count(*) FILTER (WHERE closed_ms IS NULL), count(*) FROM port_intervals
                 WHERE port = 22",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    for minutes in [0, 1] {
        nester
            .deliver(&probe, &sim.report(at(minutes), vec![]))
            .await;
    }
    assert_eq!(intervals(&nester), (1, 1));

    // Another connection closes the interval: the port, still open in the next report,
    // opens a new one.
    let other = nester.other_connection();
    other
        .execute(
            "UPDATE port_intervals SET closed_ms = ?1 WHERE closed_ms IS NULL",
            [nester::clock::to_ms(at(1))],
        )
        .unwrap();
    nester.deliver(&probe, &sim.report(at(2), vec![])).await;
    assert_eq!(intervals(&nester), (1, 2));

    // The same through the nester's own exclusive write.
    let closed = nester::clock::to_ms(at(2));
    nester
        .db()
        .write(move |c| {
            c.execute(
                "UPDATE port_intervals SET closed_ms = ?1 WHERE closed_ms IS NULL",
                [closed],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    nester.deliver(&probe, &sim.report(at(3), vec![])).await;
    assert_eq!(intervals(&nester), (1, 3));

    // Untouched, the memo and the tables agree: a fifth report changes nothing.
    nester.deliver(&probe, &sim.report(at(4), vec![])).await;
    assert_eq!(intervals(&nester), (1, 3));
}

/// Rows of the history tables that this build cannot read (written by hand, or by another
/// version) neither stop a probe's ingest nor get lost: they are left out and left alone,
/// and a guess that cannot be read is written again from the next report.
#[tokio::test]
async fn unreadable_history_rows_leave_ingest_running() {
    let (nester, probe, mut sim, at) = gateway_probe().await;
    nester.deliver(&probe, &sim.report(at(0), vec![])).await;

    let other = nester.other_connection();
    other
        .execute_batch(&format!(
            "UPDATE hosts SET os = 'not json';
             INSERT INTO port_intervals (host_id, protocol, port, opened_ms)
                 SELECT host_id, 'sctp', 9, 1 FROM hosts;
             INSERT INTO hosts (probe_id, address, os, first_seen_ms, up)
                 VALUES ('{id}', 'not-an-address', '{{}}', 1, 1),
                        ('{id}', '0:0::1', '{{}}', 1, 1);",
            id = probe.id
        ))
        .unwrap();
    // `deliver` asserts the report is accepted; debug builds also check the writer's memo
    // against the tables after it.
    nester.deliver(&probe, &sim.report(at(1), vec![])).await;
    nester.deliver(&probe, &sim.report(at(2), vec![])).await;

    let os: String = other
        .query_row("SELECT os FROM hosts WHERE address = '10.0.0.1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    serde_json::from_str::<shared::report::OsGuess>(&os).expect("the guess is written again");
    let untouched: (i64, i64) = other
        .query_row(
            "SELECT (SELECT count(*) FROM hosts WHERE up AND address IN ('not-an-address', '0:0::1')),
                    (SELECT count(*) FROM port_intervals WHERE protocol = 'sctp' AND closed_ms IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        untouched,
        (2, 1),
        "rows it cannot read are left as they were"
    );
    // The readable history went on: port 22 is still one open interval.
    let open_22: i64 = other
        .query_row(
            "SELECT count(*) FROM port_intervals WHERE port = 22 AND closed_ms IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open_22, 1);
}
