//! Alert notifications against real receivers started here: a webhook receiver that checks
//! every HMAC signature and counts deliveries by key, and a real SMTP server (Python's
//! aiosmtpd, with STARTTLS and a certificate from a CA of the test's own). Probes of one site
//! going offline together are one message; a receiver down for a while gets every message
//! exactly once when it is back, and the channel's failure is an alert of its own meanwhile;
//! 100 occurrences of one condition are one alert and one message.

mod restart;
mod smtp;
mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use nester::config::{Channel, ChannelKind};
use seahawks_tests::synthetic::SimProbe;
use serde_json::Value;

use crate::harness::{Probe, TestNester};

const SECRET: &[u8] = b"webhook secret of this test, 32+ bytes long";

/// A webhook receiver: answers 503 while `down`, else checks the signature and keeps the
/// message.
#[derive(Clone, Default)]
struct Receiver {
    down: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    bad_signatures: Arc<AtomicU64>,
    /// Accepted messages: delivery key → (how many times, the body).
    got: Arc<Mutex<BTreeMap<String, (u32, Value)>>>,
}

impl Receiver {
    async fn start(&self) -> SocketAddr {
        let this = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let this = this.clone();
                async move { this.receive(&headers, &body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn receive(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        // The receiver's check, as documented: HMAC-SHA256 of `timestamp.body`, hex.
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        let mut signed = header("x-seahawks-timestamp").into_bytes();
        signed.push(b'.');
        signed.extend_from_slice(body);
        let want: String = hmac::sign(&key, &signed)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if header("x-seahawks-signature") != format!("sha256={want}") {
            self.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return StatusCode::UNAUTHORIZED;
        }
        let message: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            message["id"].as_str(),
            Some(header("x-seahawks-delivery").as_str())
        );
        let mut got = self.got.lock().unwrap();
        let entry = got
            .entry(header("x-seahawks-delivery"))
            .or_insert((0, message));
        entry.0 += 1;
        StatusCode::NO_CONTENT
    }

    fn messages(&self) -> Vec<(u32, Value)> {
        self.got.lock().unwrap().values().cloned().collect()
    }

    /// The messages once `want` holds for them (at most 20 s).
    async fn wait_for(
        &self,
        what: &str,
        want: impl Fn(&[(u32, Value)]) -> bool,
    ) -> Vec<(u32, Value)> {
        let arrived = || {
            let all = self.messages();
            let why = format!("{what}: {all:#?}");
            std::future::ready(if want(&all) { Ok(all) } else { Err(why) })
        };
        crate::harness::until(Duration::from_secs(20), arrived).await
    }
}

fn channel(kind: ChannelKind) -> Channel {
    Channel {
        kind,
        severities: Vec::new(),
        sites: Vec::new(),
        url: None,
        secret_file: None,
        ca_file: None,
        server: None,
        port: None,
        tls: None,
        from: None,
        to: Vec::new(),
        username: None,
        password_file: None,
    }
}

/// A Slack- or Mattermost-style receiver: keeps each `text` it is posted.
async fn chat_receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let texts = Arc::new(Mutex::new(Vec::new()));
    let kept = texts.clone();
    let app = axum::Router::new().route(
        "/chat",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                kept.lock()
                    .unwrap()
                    .push(v["text"].as_str().unwrap().to_string());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, texts)
}

/// A nester whose alerts are evaluated every 100 ms and grouped after 1 s, with `channels`.
async fn nester(channels: Vec<(&str, Channel)>) -> TestNester {
    TestNester::start_with(move |c| {
        c.alerts.every = Duration::from_millis(100);
        c.notify.group_wait = Duration::from_secs(1);
        c.notify.retry_max = Duration::from_secs(1);
        c.notify.channel_alert_after = Duration::from_secs(2);
        for (name, ch) in channels {
            c.notify.channels.insert(name.into(), ch);
        }
    })
    .await
}

/// `n` probes of `test-site`, each having delivered its first report.
async fn probes(nester: &TestNester, n: usize) -> Vec<(Probe, SimProbe)> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(nester.reporting_probe().await);
    }
    all
}
