//! The monitoring rules on real reports, delivered over mTLS and stored by ingest, evaluated
//! by the nester's own job: a probe's first report is its baseline; a new host and a new port
//! fire once each; WAN latency fires after N bad reports and resolves after M good ones
//! (hysteresis); lost reports, reports the harvester could not keep, an unrenewed
//! certificate, a closed port on an important host, and a probe silent for three intervals
//! each fire and (conditions) resolve.
//! Then the lifecycle: acknowledging (noc yes, support no, audited) until it expires,
//! silences, and the navigation bar's count.

use std::time::Duration;

use hyper::{Method, StatusCode};
use nester::db::Role;
use seahawks_tests::synthetic::{SimHost, SimProbe, wan};
use serde_json::json;

use crate::harness::{Probe, TestNester, eventually};

/// The open alert of `rule` about `subject` once the job has raised it: severity, state and
/// count.
async fn open(nester: &TestNester, rule: &str, subject: &str) -> (String, String, i64) {
    eventually(&format!("{rule} on {subject} raised"), || {
        nester.open_alert(rule, subject)
    })
    .await
}

/// Waits until the alert of `rule` about `subject` is resolved.
async fn resolved(nester: &TestNester, rule: &str, subject: &str) {
    eventually(&format!("{rule} on {subject} resolved"), || {
        nester.open_alert(rule, subject).is_none().then_some(())
    })
    .await;
}

/// Lets the job run a few evaluations (every 100 ms here).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

struct Site<'a> {
    nester: &'a TestNester,
    probe: Probe,
    sim: SimProbe,
}

impl Site<'_> {
    /// The next report, a minute after the last, with this WAN measurement and backlog.
    async fn report(&mut self, wan_ms: Option<f64>, unsent: u64) {
        self.nester.clock().advance(time::Duration::minutes(1));
        let measurement = wan("198.51.100.1", 5, 5, wan_ms.map(|m| (m, m, m)));
        let mut report = self
            .sim
            .report(self.nester.clock().now(), vec![measurement]);
        report.unsent_reports = unsent;
        self.nester.deliver(&self.probe, &report).await;
    }
}

#[tokio::test]
async fn every_rule_fires_on_real_reports_and_conditions_resolve() {
    let nester = TestNester::start_with(|c| {
        c.alerts.every = Duration::from_millis(100);
        c.alerts.rules.wan_bad_reports = 2;
        c.alerts.rules.wan_good_reports = 2;
        c.alerts.rules.important_hosts = vec!["10.0.0.1".into()];
    })
    .await;
    let probe = nester.probe().await;
    let mut sim = SimProbe::new(
        probe.id,
        "test-site",
        vec![
            SimHost::new("10.0.0.1", Some("gw"), &[(22, Some("SSH-2.0-OpenSSH_9.2"))]),
            SimHost::new("10.0.0.2", None, &[(80, None)]),
        ],
    );
    sim.interval_s = 60;
    let mut site = Site {
        nester: &nester,
        probe,
        sim,
    };
    let id = site.probe.id;

    // The first report is the baseline: two hosts, nothing new.
    site.report(Some(20.0), 0).await;
    settle().await;
    assert_eq!(nester.count("alerts"), 0);

    // A new host (its ports come with it) and a port newly open on a known host.
    site.sim
        .hosts
        .push(SimHost::new("10.0.0.3", None, &[(3389, None)]));
    site.sim.host_mut("10.0.0.2").open_port(443, None);
    site.report(Some(20.0), 0).await;
    assert_eq!(
        open(&nester, "host.new", "host:test-site/10.0.0.3").await,
        ("warning".into(), "firing".into(), 1)
    );
    open(&nester, "port.new", "port:test-site/10.0.0.2/443/tcp").await;
    settle().await;
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'port.new'"),
        1,
        "the new host's own port is part of its alert"
    );

    // WAN: one bad report changes nothing, two fire; one good changes nothing, two resolve.
    let wan_subject = format!("wan:{id}/198.51.100.1");
    site.report(Some(400.0), 0).await;
    settle().await;
    assert_eq!(
        nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'wan.degraded'"),
        0
    );
    site.report(Some(400.0), 0).await;
    open(&nester, "wan.degraded", &wan_subject).await;
    site.report(Some(20.0), 0).await;
    settle().await;
    open(&nester, "wan.degraded", &wan_subject).await;
    site.report(Some(20.0), 0).await;
    resolved(&nester, "wan.degraded", &wan_subject).await;

    // Reports the harvester could not keep (its running total): one alert, counting on.
    let probe_subject = format!("probe:{id}");
    site.report(Some(20.0), 25).await;
    open(&nester, "reports.unsent", &probe_subject).await;
    site.report(Some(20.0), 25).await;
    settle().await;
    site.report(Some(20.0), 30).await;
    crate::harness::within(
        Duration::from_secs(10),
        "the second loss was not counted",
        || async { (open(&nester, "reports.unsent", &probe_subject).await.2 == 2).then_some(()) },
    )
    .await;

    // Three reports lost for good (the sequence jumps).
    site.sim.sequence += 3;
    site.report(Some(20.0), 0).await;
    open(&nester, "reports.lost", &probe_subject).await;
    let details: String = nester
        .sqlite()
        .query_row(
            "SELECT details FROM alerts WHERE rule = 'reports.lost'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(details.contains("\"total\":3"), "{details}");

    // A port closes on an important host.
    site.sim.host_mut("10.0.0.1").close_port(22);
    site.report(Some(20.0), 0).await;
    open(&nester, "port.closed", "port:test-site/10.0.0.1/22/tcp").await;

    // The probe's certificate near its end, not renewed.
    nester
        .other_connection()
        .execute(
            "UPDATE probes SET cert_expires_ms = ?1 WHERE probe_id = ?2",
            rusqlite::params![nester.clock().now_ms() + 86_400_000, id.to_string()],
        )
        .unwrap();
    open(&nester, "probe.certificate_expiring", &probe_subject).await;

    // Silent for more than three intervals: offline (critical); reporting again resolves it.
    nester.clock().advance(time::Duration::minutes(4));
    assert_eq!(
        open(&nester, "probe.offline", &probe_subject).await.0,
        "critical"
    );
    site.report(Some(20.0), 0).await;
    resolved(&nester, "probe.offline", &probe_subject).await;
    // Conditions fire once: still one row for each, whatever the evaluations since.
    for rule in ["probe.offline", "reports.unsent", "wan.degraded"] {
        assert_eq!(
            nester.scalar(&format!(
                "SELECT count(*) FROM alerts WHERE rule = '{rule}'"
            )),
            1,
            "{rule}"
        );
    }
}

#[tokio::test]
async fn noc_acknowledges_until_it_expires_and_silences_are_audited() {
    let nester = TestNester::start_with(|c| c.alerts.every = Duration::from_millis(100)).await;
    let (probe, _) = nester.reporting_probe().await;
    nester.clock().advance(time::Duration::minutes(5));
    let subject = format!("probe:{}", probe.id);
    open(&nester, "probe.offline", &subject).await;
    let alert_id = nester.scalar("SELECT id FROM alerts WHERE rule = 'probe.offline'");

    // The count in the navigation bar, on every page.
    let (noc, noc_password) = nester.add_user("watch", Role::Noc).await;
    let session = nester.login(&noc, &noc_password).await.unwrap();
    let page = nester
        .as_session(&session, Method::GET, "/", &[], vec![])
        .await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains(r#"id="alerts-firing" title="alerts firing">1</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/alerts?site=test-site""#),
        "no site badge: {html}"
    );

    // Support may not acknowledge; noc may, with a comment, from the page.
    let (support, support_password) = nester.add_user("helper", Role::Support).await;
    let helper = nester.login(&support, &support_password).await.unwrap();
    let path = format!("/alerts/{alert_id}/acknowledge");
    let fields = [("comment", "site manager called"), ("for", "1h")];
    let refused = nester
        .as_session(&helper, Method::POST, &path, &fields, vec![])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let no_comment = nester
        .as_session(
            &session,
            Method::POST,
            &path,
            &[("comment", " "), ("for", "1h")],
            vec![],
        )
        .await;
    assert_eq!(no_comment.status, StatusCode::BAD_REQUEST);
    let done = nester
        .as_session(&session, Method::POST, &path, &fields, vec![])
        .await;
    assert_eq!(
        done.status,
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(&done.body)
    );
    assert_eq!(
        open(&nester, "probe.offline", &subject).await.1,
        "acknowledged"
    );
    let audited = nester.scalar(&format!(
        "SELECT count(*) FROM audit_log WHERE action = 'alert.acknowledge'
         AND target = 'alert:{alert_id}' AND actor = 'user:watch'"
    ));
    assert_eq!(audited, 1);
    let page = nester
        .as_session(&session, Method::GET, "/alerts", &[], vec![])
        .await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("by user:watch until") && html.contains("site manager called"),
        "{html}"
    );

    // The hour is up: firing again, audited.
    nester.clock().advance(time::Duration::minutes(61));
    crate::harness::within(
        Duration::from_secs(10),
        "the acknowledgement never expired",
        || async { (open(&nester, "probe.offline", &subject).await.1 == "firing").then_some(()) },
    )
    .await;
    assert_eq!(
        nester.scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'alert.acknowledgement_expired'"
        ),
        1
    );

    // Silences through the API (the harness token is read-only: a session, as a script would
    // use a read-write token).
    let session = nester.login(&noc, &noc_password).await.unwrap();
    let post = |path: &'static str, body: serde_json::Value| {
        let session = session.clone();
        let nester = &nester;
        async move {
            let headers = vec![
                ("content-type", "application/json"),
                ("x-csrf-token", session.csrf.as_str()),
                ("origin", "https://127.0.0.1"),
                ("sec-fetch-site", "same-origin"),
                ("cookie", session.cookie.as_str()),
            ];
            nester
                .anonymous(Method::POST, path, &headers, body.to_string().into_bytes())
                .await
        }
    };
    let everything = post("/api/v1/silences", json!({"comment": "x", "for": "1h"})).await;
    assert_eq!(
        everything.status,
        StatusCode::BAD_REQUEST,
        "a silence must match something"
    );
    let made = post(
        "/api/v1/silences",
        json!({"site": "test-site", "rule": "probe.offline", "comment": "power cut", "for": "2h"}),
    )
    .await;
    assert_eq!(
        made.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&made.body)
    );
    let listed = nester.get("/api/v1/silences").await.json();
    assert_eq!(listed[0]["site"], "test-site");
    assert_eq!(listed[0]["comment"], "power cut");
    nester.clock().advance(time::Duration::hours(3));
    crate::harness::within(Duration::from_secs(10), "the silence never expired", || {
        std::future::ready(
            (nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'silence.expire'") != 0)
                .then_some(()),
        )
    })
    .await;
    assert_eq!(nester.get("/api/v1/silences").await.json(), json!([]));
    assert_eq!(
        nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'silence.add'"),
        1
    );
}
