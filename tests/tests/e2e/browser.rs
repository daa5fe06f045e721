//! A real browser (Debian's headless Chromium through chromedriver, driven over WebDriver):
//! sign in with a password and a TOTP code computed here, see the overview, sign out, and the
//! back button shows no data; then the dashboard's pages against a seeded database.
//! Screenshots of each page go to `target/test-artifacts/browser/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, Locator};

use seahawks_tests::synthetic::{self, Rng, SimHost, SimProbe};
use time::OffsetDateTime;

use crate::harness::{TestNester, closed_port};
use crate::webdriver::{
    appears, artifacts, browser, click, console_errors, element, screenshot, sign_in, text_of,
    type_into, wait_for_path,
};

#[tokio::test]
async fn sign_in_with_totp_see_the_overview_sign_out_and_go_back() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    nester
        .agent(&probe, &closed_port().to_string())
        .cycle()
        .await
        .unwrap();
    let (_driver, client) = browser().await;
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    sign_in(&nester, &client, &base, true).await;
    let table = appears(&client, "#probes").await.text().await.unwrap();
    assert!(
        table.contains(&probe.id.to_string()[..8]) && table.contains("test-site"),
        "{table}"
    );
    let who = text_of(&client, "#account").await;
    assert!(who.contains("chrome-admin"), "{who}");
    screenshot(&client, "overview").await;
    assert_eq!(
        console_errors(&client).await,
        Vec::<String>::new(),
        "console errors"
    );

    click(&client, "#logout").await;
    wait_for_path(&client, "/login").await;
    client.back().await.unwrap();
    // The overview is not shown from the cache: the browser asks again and is sent to sign in.
    wait_for_path(&client, "/login").await;
    let source = client.source().await.unwrap();
    assert!(
        !source.contains(&probe.id.to_string()),
        "data after sign-out: {source}"
    );
    screenshot(&client, "after-logout-back").await;
    assert_eq!(
        console_errors(&client).await,
        Vec::<String>::new(),
        "console errors"
    );
    client.close().await.unwrap();
}

/// Half a day of reports from a site of a dozen hosts: latency that rises and falls, a lossy
/// hour, a host that leaves for an hour, a port that opens. Returns the id of the last report.
async fn seed(nester: &TestNester, probe: &crate::harness::Probe) -> (SimProbe, uuid::Uuid) {
    let mut rng = Rng::new(42);
    let mut sim = SimProbe::new(
        probe.id,
        &probe.identity().site,
        synthetic::site_hosts(7, 12, &mut rng),
    );
    let steps = 12 * 12;
    let start = OffsetDateTime::now_utc() - Duration::from_secs(5 * 60 * steps);
    let mut last = uuid::Uuid::nil();
    for i in 0..steps {
        let at = start + Duration::from_secs(5 * 60 * i);
        match i {
            40 => sim.host_mut("10.7.0.4").up = false,
            52 => sim.host_mut("10.7.0.4").up = true,
            90 => sim
                .host_mut("10.7.0.2")
                .open_port(8443, Some("HTTP/1.1 200 OK")),
            _ => {}
        }
        let wave = 25.0 + 10.0 * (i as f64 / 20.0).sin() + rng.unit() * 4.0;
        let (received, rtt) = match i {
            70..82 => (7, Some((wave, wave + 15.0, wave + 60.0))),
            100 => (0, None),
            _ => (10, Some((wave - 3.0, wave, wave + 6.0 + rng.unit() * 8.0))),
        };
        let report = sim.report(at, vec![synthetic::wan("192.0.2.1", 10, received, rtt)]);
        last = report.report_id;
        nester.deliver(probe, &report).await;
    }
    (sim, last)
}

async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

/// The dashboard against a seeded database: the overview lists the probes and refreshes in
/// place, the probe page draws the latency chart and the port timeline, search finds a host
/// by name, the host and report pages show their history and signature; no console errors.
#[tokio::test]
async fn dashboard_overview_probe_search_host_and_report_pages() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let quiet = nester.probe().await;
    let (mut sim, last_report) = seed(&nester, &probe).await;
    let (_driver, client) = browser().await;
    client.set_window_size(1440, 1600).await.unwrap();
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    sign_in(&nester, &client, &base, false).await;

    // Overview: both probes, with their status.
    let row = |id: uuid::Uuid| format!("#probes tr[data-probe-id='{id}']");
    let ours = appears(&client, &row(probe.id)).await;
    assert_eq!(
        ours.attr("data-status").await.unwrap().as_deref(),
        Some("online")
    );
    let theirs = element(&client, &row(quiet.id)).await;
    assert_eq!(
        theirs.attr("data-status").await.unwrap().as_deref(),
        Some("offline")
    );
    assert!(
        count(&client, "#changes tr.change").await > 0,
        "recent changes listed"
    );
    screenshot(&client, "overview").await;
    save_for_docs("overview");

    // A new report arrives; the page refreshes its live part without reloading.
    client
        .execute("window.notReloaded = true; return 0", vec![])
        .await
        .unwrap();
    sim.hosts.push(SimHost::new(
        "10.7.0.99",
        Some("fresh-arrival.example"),
        &[(22, None)],
    ));
    let report = sim.report(OffsetDateTime::now_utc(), Vec::new());
    nester.deliver(&probe, &report).await;
    client
        .execute("return window.seahawksRefresh().then(() => 0)", vec![])
        .await
        .unwrap();
    let changes = text_of(&client, "#changes").await;
    assert!(changes.contains("fresh-arrival.example"), "{changes}");
    let kept = client
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!(true), "the page was not reloaded");
    // And on its own: the page's timer refreshes it within its period (30 s).
    sim.hosts.push(SimHost::new(
        "10.7.0.98",
        Some("timer-arrival.example"),
        &[(22, None)],
    ));
    let report = sim.report(OffsetDateTime::now_utc(), Vec::new());
    nester.deliver(&probe, &report).await;
    crate::harness::within(
        Duration::from_secs(40),
        "the page did not refresh itself within 40 s",
        || async {
            text_of(&client, "#changes")
                .await
                .contains("timer-arrival.example")
                .then_some(())
        },
    )
    .await;

    // The probe page: a chart with a median line and a band, and the port timeline.
    click(&client, &format!("{} a[href^='/probes/']", row(probe.id))).await;
    wait_for_path(&client, &format!("/probes/{}", probe.id)).await;
    let chart = appears(&client, "svg.latency").await;
    let points: usize = chart
        .attr("data-points")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 140, "{points} points drawn");
    let line = element(&client, "svg.latency path.median").await;
    let d = line.attr("d").await.unwrap().unwrap();
    assert!(d.matches('L').count() > 50, "a median line: {d}");
    assert!(count(&client, "svg.latency polygon.band").await >= 1);
    assert!(
        count(&client, "svg.latency rect.loss").await >= 12,
        "the lossy hour is marked"
    );
    assert!(
        count(&client, "svg.timeline rect.open").await >= 10,
        "port bars"
    );
    assert!(
        count(&client, "svg.timeline rect.up").await >= 13,
        "a host that left and came back has two bars"
    );
    let hosts = text_of(&client, "#hosts").await;
    assert!(hosts.contains("host-3.site7.example.net"), "{hosts}");
    screenshot(&client, "probe").await;
    save_for_docs("probe");
    click(&client, ".ranges a[href='?range=7d']").await;
    appears(&client, ".ranges a.current[href='?range=7d']").await;
    assert_eq!(count(&client, "svg.latency path.median").await, 1);

    // Search from the header: a name, typed in another case.
    type_into(
        &client,
        "header form.search input[name=q]",
        "HOST-3.SITE7\u{E007}",
    )
    .await;
    wait_for_path(&client, "/search").await;
    let results = appears(&client, "#results").await.text().await.unwrap();
    assert!(
        results.contains("host-3.site7.example.net") && results.contains("10.7.0.4"),
        "{results}"
    );
    screenshot(&client, "search").await;

    // The host page: its ports' history.
    click(&client, "#results a[href^='/hosts/']").await;
    let ports = appears(&client, "#ports").await.text().await.unwrap();
    assert!(ports.contains("open"), "{ports}");
    assert!(
        count(&client, "svg.timeline rect.up").await >= 2,
        "down for an hour: two bars"
    );
    screenshot(&client, "host").await;

    // A report: parsed, signature checked, the signed original offered.
    client
        .goto(&format!("{base}/reports/{last_report}"))
        .await
        .unwrap();
    let signature = appears(&client, "#signature.ok")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        signature.contains("valid") && signature.contains(&probe.id.to_string()),
        "{signature}"
    );
    let download = element(&client, "#download")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(download, format!("/api/v1/reports/{last_report}/signed"));
    assert!(count(&client, "#hosts tbody tr").await >= 12);
    screenshot(&client, "report").await;

    assert_eq!(
        console_errors(&client).await,
        Vec::<String>::new(),
        "console errors"
    );
    client.close().await.unwrap();
}

/// With `UPDATE_SCREENSHOTS=1`, the screenshot `name` also replaces the one in `docs/` that
/// the README shows.
fn save_for_docs(name: &str) {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        // CI checks; it never rewrites what the README shows.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "UPDATE_SCREENSHOTS is refused in CI"
        );
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(
            artifacts().join(format!("{name}.png")),
            docs.join(format!("{name}.png")),
        )
        .unwrap();
    }
}
