//! A real browser (Debian's headless Chromium through chromedriver, driven over WebDriver):
//! sign in with a password and a TOTP code computed here, see the overview, sign out, and the
//! back button shows no data; then the dashboard's pages against a seeded database.
//! Screenshots of each page go to `target/test-artifacts/browser/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, Locator};
use nester::auth::totp;
use nester::db::Role;

use seahawks_tests::synthetic::{self, Rng, SimHost, SimProbe};
use time::OffsetDateTime;

use crate::harness::{TestNester, closed_port};

/// chromedriver on a loopback port, stopped on drop.
pub(crate) struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("`{program}` is not installed: run the suite with `tests/run`, which installs chromium and chromium-driver")
        })
}

pub(crate) async fn browser() -> (Driver, Client) {
    let chromium = which("chromium");
    // chromedriver takes a port number, not a socket: a free one, released for it to bind.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(which("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    crate::harness::within(
        Duration::from_secs(20),
        "chromedriver did not listen within 20 s",
        || {
            std::future::ready(
                TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(()),
            )
        },
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let caps: Capabilities = serde_json::from_value(serde_json::json!({
        "browserName": "chrome",
        // The nester's certificate comes from the test's own CA, new for each run.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--no-first-run",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    }))
    .unwrap();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = Client::with_capabilities_and_connector(
        &format!("http://127.0.0.1:{port}"),
        &caps,
        connector,
    )
    .await
    .expect("a Chromium session");
    let driver = Driver {
        child,
        _profile: profile,
    };
    (driver, client)
}

/// chromedriver's browser console log (entries since the last call).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        (hyper::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

pub(crate) async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("the console log");
    log.as_array()
        .expect("a list of entries")
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .map(|e| e["message"].to_string())
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// The element `css` finds on the current page; the test fails, naming it, if there is none.
pub(crate) async fn element(client: &Client, css: &str) -> Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
}

/// The element `css` finds once it appears (fantoccini's default wait, 30 s).
pub(crate) async fn appears(client: &Client, css: &str) -> Element {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` never appeared: {e}"))
}

pub(crate) async fn click(client: &Client, css: &str) {
    element(client, css).await.click().await.unwrap();
}

pub(crate) async fn type_into(client: &Client, css: &str, text: &str) {
    element(client, css).await.send_keys(text).await.unwrap();
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    element(client, css).await.text().await.unwrap()
}

pub(crate) async fn wait_for_path(client: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap();
        if url.path() == path {
            return;
        }
        if Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("still at {url}, expected {path}: {source}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in through the pages as a new admin with TOTP: password, then a code computed here.
/// With `screenshots`, saves the sign-in page. Returns the admin's TOTP secret.
pub(crate) async fn sign_in(
    nester: &TestNester,
    client: &Client,
    base: &str,
    screenshots: bool,
) -> Vec<u8> {
    let (name, password) = nester.add_user("chrome-admin", Role::Admin).await;
    let secret = totp::new_secret().unwrap();
    let user = nester.user_id(&name).await;
    nester
        .db()
        .enable_totp(
            nester::db::audit::Actor::cli(),
            user,
            secret.clone(),
            0,
            Vec::new(),
        )
        .await
        .unwrap();

    client.goto(&format!("{base}/")).await.unwrap();
    wait_for_path(client, "/login").await;
    if screenshots {
        screenshot(client, "login").await;
    }
    type_into(client, "input[name=username]", &name).await;
    type_into(client, "input[name=password]", &password).await;
    click(client, "#login button[type=submit]").await;
    wait_for_path(client, "/login/mfa").await;
    let now = u64::try_from(nester.clock().now().unix_timestamp()).unwrap();
    type_into(client, "input[name=code]", &totp::code_at(&secret, now)).await;
    click(client, "#code button[type=submit]").await;
    wait_for_path(client, "/").await;
    secret
}

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
