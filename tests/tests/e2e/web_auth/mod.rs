//! Signing in, over real HTTPS: cookie flags, expiry under a moved clock, TOTP setup, replay
//! and recovery codes, CSRF, throttling, identical refusals, sessions and API tokens. Who may
//! call which route is `access_matrix.rs`.

mod account;
mod cookies;
mod csrf;
mod throttle;
mod two_factor;
mod users_page;

use crate::harness::{Response, TestNester};

/// The secrets a notice page shows once (new password, API token, recovery codes).
fn shown_once(page: &Response) -> Vec<String> {
    String::from_utf8_lossy(&page.body)
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect()
}

fn now_secs(nester: &TestNester) -> u64 {
    u64::try_from(nester.clock().now().unix_timestamp()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Form fields or headers.
type Fields = Vec<(&'static str, String)>;
