//! Alert notifications against real receivers started here: a webhook receiver that checks
//! every HMAC signature and counts deliveries by key, and a real SMTP server (Python's
//! aiosmtpd, with STARTTLS and a certificate from a CA of the test's own). Probes of one site
//! going offline together are one message; a receiver down for a while gets every message
//! exactly once when it is back, and the channel's failure is an alert of its own meanwhile;
//! 100 occurrences of one condition are one alert and one message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hyper::Method;
use nester::config::{Channel, ChannelKind, SmtpTls};
use rustls_pki_types::pem::PemObject;
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
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.messages();
            if want(&all) {
                return all;
            }
            assert!(Instant::now() < deadline, "{what}: {all:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

#[tokio::test]
async fn a_site_going_dark_is_one_signed_message_delivered_once_through_an_outage() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let receiver = Receiver::default();
    receiver.down.store(true, Ordering::SeqCst);
    let addr = receiver.start().await;
    let mut hook = channel(ChannelKind::Webhook);
    hook.url = Some(format!("http://{addr}/hook"));
    hook.secret_file = Some(secret_file);
    let (chat_addr, chat) = chat_receiver().await;
    let mut slack = channel(ChannelKind::Slack);
    slack.url = Some(format!("http://{chat_addr}/chat"));
    slack.severities = vec!["critical".into()];
    let nester = nester(vec![("noc", hook), ("chat", slack)]).await;
    let mut fleet = probes(&nester, 5).await;

    // All five go silent: five alerts, one message, held back while the receiver is down.
    nester.clock().advance(time::Duration::minutes(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.refused.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'probe.offline'"),
        5
    );
    // Failing for 2 s: the channel's own alert.
    let deadline = Instant::now() + Duration::from_secs(10);
    while nester.scalar(
        "SELECT count(*) FROM alerts WHERE rule = 'notify.channel_failing'
         AND subject = 'channel:noc' AND state = 'firing'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the failing channel raised nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Back up: the one message, once, signed; the channel's alert resolves.
    receiver.down.store(false, Ordering::SeqCst);
    let got = receiver
        .wait_for("the offline message", |m| !m.is_empty())
        .await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let (times, message) = &got[0];
    assert_eq!(*times, 1);
    // The chat channel, up all along, had the same message as text, once, long before.
    let texts = chat.lock().unwrap().clone();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].starts_with("[Seahawks] test-site: 5 firing"),
        "{}",
        texts[0]
    );
    assert_eq!(
        texts[0].matches("CRITICAL probe.offline").count(),
        5,
        "{}",
        texts[0]
    );
    assert_eq!(message["site"], "test-site");
    assert_eq!(message["firing"], 5);
    assert!(
        message["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["rule"] == "probe.offline" && a["severity"] == "critical"),
        "{message:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while nester.scalar(
        "SELECT count(*) FROM alerts WHERE rule = 'notify.channel_failing' AND state != 'resolved'",
    ) > 0
    {
        assert!(
            Instant::now() < deadline,
            "the channel's alert never resolved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // They report again: one message of five resolutions.
    for (probe, sim) in &mut fleet {
        nester
            .deliver(probe, &sim.report(nester.clock().now(), Vec::new()))
            .await;
    }
    let got = receiver
        .wait_for("the resolution", |m| {
            m.iter().any(|(_, b)| b["resolved"] == 5)
        })
        .await;
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    assert!(
        got.iter().all(|(n, _)| *n == 1),
        "a message twice: {got:#?}"
    );
    // Nothing owed: every message delivered, to both channels.
    crate::harness::eventually("every message delivered", || {
        (nester.scalar("SELECT count(*) FROM notifications WHERE delivered_ms IS NULL") == 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        chat.lock().unwrap().len(),
        2,
        "the offline and the resolved message"
    );

    // One condition a hundred times: one alert counting 100, one message.
    let before = receiver.messages().len();
    let revoked = nester.probe().await;
    let report = {
        let mut agent = nester.agent(&revoked, &crate::harness::closed_port().to_string());
        agent.produce().await.unwrap().unwrap().jws
    };
    nester
        .db()
        .revoke_probe(nester::db::audit::Actor::cli(), revoked.id)
        .await
        .unwrap();
    let mut conn =
        crate::harness::Connection::open(nester.ingest, &nester.ca, Some(&revoked.client_cert()))
            .await
            .unwrap();
    for _ in 0..100 {
        let r = conn
            .send(
                Method::POST,
                shared::protocol::REPORTS_PATH,
                &[("content-type", shared::protocol::JWS_MEDIA_TYPE)],
                report.clone().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(r.error_code(), "probe_revoked");
    }
    let got = receiver
        .wait_for("the security alert", |m| m.len() > before)
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nester.scalar("SELECT max(count) FROM alerts WHERE rule = 'security.revoked_probe'") < 100
    {
        assert!(
            Instant::now() < deadline,
            "the occurrences were not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.messages().len(), before + 1, "{got:#?}");
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'security.revoked_probe'"),
        1
    );
}

/// A CA and a certificate for `localhost` from it, PEM: (ca, cert, key).
fn smtp_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test SMTP CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test]
async fn alerts_reach_a_real_smtp_server_over_starttls_and_the_test_command_works() {
    let python = crate::jose_interop::python();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = smtp_pki();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let maildir = dir.path().join("mail");
    let port = crate::harness::free_port();
    let mut server = tokio::process::Command::new(&python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg("--tlscert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tlskey")
        .arg(dir.path().join("key.pem"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "aiosmtpd never listened");
        assert!(server.try_wait().unwrap().is_none(), "aiosmtpd ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut mail = channel(ChannelKind::Email);
    mail.server = Some("localhost".into());
    mail.port = Some(port);
    mail.tls = Some(SmtpTls::Starttls);
    mail.ca_file = Some(dir.path().join("ca.pem"));
    mail.from = Some("nester@seahawks.test".into());
    mail.to = vec!["noc@seahawks.test".into()];
    mail.severities = vec!["critical".into()];

    // The test command, past the outbox.
    let sender = nester::notify::send::Sender::new(&mail).unwrap();
    nester::notify::Notifier::test("mail", &sender, 1_700_000_000)
        .await
        .unwrap();

    let nester = nester(vec![("mail", mail)]).await;
    let _fleet = probes(&nester, 2).await;
    nester.clock().advance(time::Duration::minutes(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    let texts = loop {
        let texts: Vec<String> = std::fs::read_dir(maildir.join("new"))
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        if texts.len() >= 2 {
            break texts;
        }
        assert!(Instant::now() < deadline, "mails: {texts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Subject: [Seahawks] test message")),
        "{texts:#?}"
    );
    let alert = texts
        .iter()
        .find(|t| t.contains("2 firing"))
        .expect("the alert mail");
    assert!(
        alert.contains("Subject: [Seahawks] test-site: 2 firing"),
        "{alert}"
    );
    assert!(alert.contains("CRITICAL probe.offline"), "{alert}");
    assert!(alert.contains("To: noc@seahawks.test"), "{alert}");
    // A server with another certificate is refused: the CA is pinned.
    let mut other = channel(ChannelKind::Email);
    other.server = Some("localhost".into());
    other.port = Some(port);
    other.from = Some("nester@seahawks.test".into());
    other.to = vec!["noc@seahawks.test".into()];
    let untrusted = nester::notify::send::Sender::new(&other).unwrap();
    let err = nester::notify::Notifier::test("other", &untrusted, 1_700_000_000)
        .await
        .unwrap_err();
    assert!(err.contains("SMTP"), "{err}");
    server.kill().await.unwrap();
}

/// The real binary, killed with SIGKILL while a message is owed to a receiver that is down:
/// after a restart it is delivered, once.
#[tokio::test]
async fn a_message_owed_when_the_nester_is_killed_is_delivered_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = crate::process::NesterFiles::new(dir.path());
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let receiver = Receiver::default();
    receiver.down.store(true, Ordering::SeqCst);
    let addr = receiver.start().await;
    let mut config = std::fs::read_to_string(&files.config).unwrap();
    config.push_str(&format!(
        "[notify]\ngroup_wait = \"1s\"\nretry_max = \"1s\"\n\
         [notify.channels.noc]\nkind = \"webhook\"\nurl = \"http://{addr}/hook\"\nsecret_file = {secret_file:?}\n"
    ));
    std::fs::write(&files.config, config).unwrap();
    let serve =
        || crate::process::Daemon::spawn("nester", &["serve", "--config", files.config_arg()]);
    let nester = serve();

    // An enrollment with a made-up token: a security alert, notified.
    let ca =
        rustls_pki_types::CertificateDer::from_pem_file(files.data.join("pki/ca.pem")).unwrap();
    let body = serde_json::json!({"token_id": "made-up", "secret": "guess", "csr": "none"});
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        match crate::client::https(
            files.ingest,
            &ca,
            None,
            Method::POST,
            shared::protocol::ENROLL_PATH,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(Instant::now() < deadline, "the nester never listened: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.refused.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "nothing was ever tried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nester.kill9();

    receiver.down.store(false, Ordering::SeqCst);
    let _again = serve();
    let got = receiver
        .wait_for("the owed message", |m| !m.is_empty())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got_later = receiver.messages();
    assert_eq!(got_later.len(), 1, "{got_later:#?}");
    assert_eq!(got_later[0].0, 1, "delivered twice");
    assert_eq!(got[0].1["alerts"][0]["rule"], "security.enrollment_token");

    // `nester alerts test`: a test message now, past the outbox; a wrong name is named.
    // (Run off this thread: the receiver answers on it.)
    let config = files.config_arg().to_string();
    let cli = move |channel: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            crate::process::run("nester", &["alerts", "test", channel, "--config", &config])
        })
    };
    let out = cli("noc").await.unwrap();
    assert!(out.status.success(), "{}", crate::process::stderr(&out));
    receiver
        .wait_for("the test message", |m| {
            m.iter().any(|(_, b)| b["test"] == true)
        })
        .await;
    let out = cli("nope").await.unwrap();
    assert!(!out.status.success());
    assert!(
        crate::process::stderr(&out).contains("no channel `nope`"),
        "{}",
        crate::process::stderr(&out)
    );
}
