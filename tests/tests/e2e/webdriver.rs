//! The browser the dashboard's tests drive: Debian's headless Chromium through chromedriver,
//! over WebDriver (what `tests/run` installs), with the page helpers every browser test
//! uses (wait for an element, click, type, read, sign in with TOTP, screenshots).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, Locator};
use nester::auth::totp;
use nester::db::Role;

use crate::harness::TestNester;

/// chromedriver on a loopback port, stopped on drop.
pub struct Driver {
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

pub async fn browser() -> (Driver, Client) {
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

pub async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("the console log");
    log.as_array()
        .expect("a list of entries")
        .iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .map(|e| e["message"].to_string())
        .collect()
}

pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// The element `css` finds on the current page; the test fails, naming it, if there is none.
pub async fn element(client: &Client, css: &str) -> Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
}

/// The element `css` finds once it appears (fantoccini's default wait, 30 s).
pub async fn appears(client: &Client, css: &str) -> Element {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("`{css}` never appeared: {e}"))
}

pub async fn click(client: &Client, css: &str) {
    element(client, css).await.click().await.unwrap();
}

pub async fn type_into(client: &Client, css: &str, text: &str) {
    element(client, css).await.send_keys(text).await.unwrap();
}

pub async fn text_of(client: &Client, css: &str) -> String {
    element(client, css).await.text().await.unwrap()
}

pub async fn wait_for_path(client: &Client, path: &str) {
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
pub async fn sign_in(
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
