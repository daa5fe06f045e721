//! A real browser (Debian's headless Chromium through chromedriver, driven over WebDriver):
//! sign in with a password and a TOTP code computed here, see the overview, sign out, and the
//! back button shows no data. Screenshots of each page go to `target/test-artifacts/browser/`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, Locator};
use nester::auth::totp;
use nester::users::Role;

use crate::harness::{TestNester, closed_port};

/// chromedriver on a loopback port, stopped on drop.
struct Driver {
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

async fn browser() -> (Driver, Client) {
    let chromium = which("chromium");
    let port = closed_port();
    let child = Command::new(which("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

async fn console_errors(client: &Client) -> Vec<String> {
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

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

async fn wait_for_path(client: &Client, path: &str) {
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

#[tokio::test]
async fn sign_in_with_totp_see_the_overview_sign_out_and_go_back() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    nester
        .agent(&probe, &closed_port().to_string())
        .cycle()
        .await
        .unwrap();
    let (name, password) = nester.add_user("chrome-admin", Role::Admin).await;
    let secret = totp::new_secret().unwrap();
    let user = nester.user_id(&name).await;
    nester
        .db()
        .enable_totp(user, secret.clone(), 0, Vec::new())
        .await
        .unwrap();

    let (_driver, client) = browser().await;
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    client.goto(&format!("{base}/")).await.unwrap();
    wait_for_path(&client, "/login").await;
    screenshot(&client, "login").await;
    client
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(&name)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(&password)
        .await
        .unwrap();
    client
        .find(Locator::Css("#login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&client, "/login/mfa").await;
    let now = u64::try_from(nester.clock().now().unix_timestamp()).unwrap();
    client
        .find(Locator::Css("input[name=code]"))
        .await
        .unwrap()
        .send_keys(&totp::code_at(&secret, now))
        .await
        .unwrap();
    client
        .find(Locator::Css("#code button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_path(&client, "/").await;
    let table = client
        .wait()
        .for_element(Locator::Css("#probes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        table.contains(&probe.id.to_string()) && table.contains("test-site"),
        "{table}"
    );
    let who = client
        .find(Locator::Css("#account"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(who.contains("chrome-admin"), "{who}");
    screenshot(&client, "overview").await;
    assert_eq!(
        console_errors(&client).await,
        Vec::<String>::new(),
        "console errors"
    );

    client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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
