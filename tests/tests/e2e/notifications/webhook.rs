//! A site going dark: one signed webhook message, delivered once through an outage.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::Method;
use nester::config::ChannelKind;

use super::*;

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
    crate::harness::within(Duration::from_secs(10), "never tried", || {
        std::future::ready((receiver.refused.load(Ordering::SeqCst) >= 2).then_some(()))
    })
    .await;
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'probe.offline'"),
        5
    );
    // Failing for 2 s: the channel's own alert.
    crate::harness::within(
        Duration::from_secs(10),
        "the failing channel raised nothing",
        || {
            std::future::ready(
                (nester.scalar(
                    "SELECT count(*) FROM alerts WHERE rule = 'notify.channel_failing'
         AND subject = 'channel:noc' AND state = 'firing'",
                ) != 0)
                    .then_some(()),
            )
        },
    )
    .await;

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
    crate::harness::within(
        Duration::from_secs(10),
        "the channel's alert never resolved",
        || {
            std::future::ready((nester.scalar(
        "SELECT count(*) FROM alerts WHERE rule = 'notify.channel_failing' AND state != 'resolved'",
    ) <= 0).then_some(()))
        },
    )
    .await;

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
    crate::harness::within(
        Duration::from_secs(10),
        "the occurrences were not counted",
        || {
            std::future::ready(
                (nester
                    .scalar("SELECT max(count) FROM alerts WHERE rule = 'security.revoked_probe'")
                    >= 100)
                    .then_some(()),
            )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.messages().len(), before + 1, "{got:#?}");
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'security.revoked_probe'"),
        1
    );
}
