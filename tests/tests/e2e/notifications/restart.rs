//! A message owed when the nester is killed is delivered once after the restart.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hyper::Method;
use rustls_pki_types::pem::PemObject;

use super::*;

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
    crate::harness::within(Duration::from_secs(20), "nothing was ever tried", || {
        std::future::ready((receiver.refused.load(Ordering::SeqCst) != 0).then_some(()))
    })
    .await;
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
