//! Zero-loss delivery: the spool across outages, gap detection, the full-spool policies.

use harvester::spool::WhenFull;
use hyper::StatusCode;
use serde_json::Value;

use crate::harness::{TestNester, closed_port};

fn sequences(nester: &TestNester) -> Vec<i64> {
    let db = nester.sqlite();
    let mut stmt = db
        .prepare("SELECT sequence FROM reports ORDER BY sequence")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn probe_json(nester: &TestNester) -> Value {
    nester.get("/api/v1/probes").await.json()[0].clone()
}

#[tokio::test]
async fn a_nester_outage_loses_nothing() {
    let mut nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    agent.cycle().await.unwrap();

    nester.stop_listening().await;
    const N: u64 = 6;
    for _ in 0..N {
        agent.produce().await.unwrap().unwrap();
        assert!(
            agent.drain().await.is_err(),
            "delivered while the nester was down"
        );
    }
    assert_eq!(agent.spool().usage().unwrap().reports, N as usize);

    nester.start_listening().await;
    let delivered = agent.drain().await.unwrap();
    let order: Vec<u64> = delivered.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(
        order,
        (2..=N + 1).collect::<Vec<_>>(),
        "not delivered oldest first"
    );
    assert_eq!(agent.spool().usage().unwrap().reports, 0);
    assert_eq!(sequences(&nester), (1..=N as i64 + 1).collect::<Vec<_>>());
    assert_eq!(probe_json(&nester).await["missing_reports"], 0);
}

#[tokio::test]
async fn gaps_are_shown_and_filled_by_late_reports() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    let mut spooled = Vec::new();
    for _ in 0..7 {
        spooled.push(agent.produce().await.unwrap().unwrap());
    }
    let client = probe.client_cert();
    let send = |i: usize| {
        let jws = spooled[i].jws.clone();
        let client = &client;
        let nester = &nester;
        async move {
            let r = nester
                .post_ingest(Some(client), "/v1/reports", Some("application/jose"), jws)
                .await
                .unwrap();
            assert_eq!(r.status, StatusCode::CREATED);
        }
    };
    let gaps = || async {
        nester
            .get(&format!("/api/v1/probes/{}/gaps", probe.id))
            .await
            .json()
    };
    // Sequences 1, 3 and 7 arrive: 2 and 4-6 are missing.
    for i in [0, 2, 6] {
        send(i).await;
    }
    assert_eq!(
        gaps().await,
        serde_json::json!([{"first": 2, "last": 2}, {"first": 4, "last": 6}])
    );
    assert_eq!(probe_json(&nester).await["missing_reports"], 4);
    // A late 5 splits a gap; 2 closes one.
    send(4).await;
    send(1).await;
    assert_eq!(
        gaps().await,
        serde_json::json!([{"first": 4, "last": 4}, {"first": 6, "last": 6}])
    );
    // The harvester's own drain delivers the rest (and repeats the others harmlessly).
    agent.drain().await.unwrap();
    assert_eq!(gaps().await, serde_json::json!([]));
    assert_eq!(sequences(&nester), (1..=7).collect::<Vec<_>>());
    let html = String::from_utf8(nester.get("/").await.body).unwrap();
    assert!(html.contains("data-missing=\"0\""), "{html}");
}

#[tokio::test]
async fn a_full_spool_pauses_and_the_skipped_reports_are_counted() {
    let mut nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut config = nester.agent_config(&probe, &closed_port().to_string());
    config.spool.max_bytes = 64 * 1024;
    let mut agent = harvester::Agent::new(config).unwrap();
    nester.stop_listening().await;

    let (mut spooled, mut skipped) = (0, 0);
    for _ in 0..60 {
        match agent.produce().await.unwrap() {
            Some(_) => spooled += 1,
            None => skipped += 1,
        }
    }
    assert!(
        spooled > 5 && skipped > 5,
        "spooled {spooled}, skipped {skipped}"
    );
    let usage = agent.spool().usage().unwrap();
    assert!(
        usage.bytes <= 64 * 1024 && usage.reports == spooled,
        "{usage:?}"
    );

    nester.start_listening().await;
    // The backlog first, as the daemon delivers it as soon as the nester is back.
    agent.drain().await.unwrap();
    agent.cycle().await.unwrap();
    // Every kept report arrived, in sequence, with no gap: paused reports took no number...
    assert_eq!(
        sequences(&nester),
        (1..=spooled as i64 + 1).collect::<Vec<_>>()
    );
    assert_eq!(probe_json(&nester).await["missing_reports"], 0);
    // ...and the ones never produced are counted at the nester.
    assert_eq!(probe_json(&nester).await["unsent_reports"], skipped);
}

#[tokio::test]
async fn drop_oldest_makes_room_and_counts_what_it_dropped() {
    let mut nester = TestNester::start().await;
    let probe = nester.probe().await;
    let mut config = nester.agent_config(&probe, &closed_port().to_string());
    config.spool.max_bytes = 64 * 1024;
    config.spool.when_full = WhenFull::DropOldest;
    let mut agent = harvester::Agent::new(config).unwrap();
    nester.stop_listening().await;
    for _ in 0..60 {
        assert!(
            agent.produce().await.unwrap().is_some(),
            "drop-oldest never skips a new report"
        );
    }
    let kept = agent.spool().usage().unwrap().reports as i64;
    assert!(kept < 60);

    nester.start_listening().await;
    // The backlog first, as the daemon delivers it as soon as the nester is back.
    agent.drain().await.unwrap();
    agent.cycle().await.unwrap();
    // The newest reports survive; the dropped oldest show as a gap and as unsent.
    let got = sequences(&nester);
    assert_eq!(got, ((60 - kept + 1)..=61).collect::<Vec<_>>());
    let probe = probe_json(&nester).await;
    assert_eq!(probe["missing_reports"], 60 - kept);
    assert_eq!(probe["unsent_reports"], 60 - kept);
}

#[tokio::test]
async fn a_target_outside_the_scope_is_refused_and_never_touched() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = nester.agent_config(&probe, &port.to_string());
    // A host name passes the config check; what it resolves to is checked before scanning.
    config.scan.targets = vec!["localhost".into()];
    config.scan.scope = vec!["192.0.2.0/24".parse().unwrap()];
    let mut agent = harvester::Agent::new(config).unwrap();
    let err = format!("{:#}", agent.produce().await.unwrap_err());
    assert!(
        err.contains("outside the configured scope") && err.contains("localhost"),
        "{err}"
    );
    let touched =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(touched.is_err(), "an out-of-scope target was connected to");
    assert_eq!(agent.spool().usage().unwrap().reports, 0);
}

/// A report the nester refuses for what it is (here, another site than the probe's) leaves
/// the spool for `rejected/`, where an operator can read it, and the reports behind it still
/// go out.
#[tokio::test]
async fn a_report_refused_for_good_moves_to_rejected_and_the_rest_still_go() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let site_file = probe.state_dir.join("site");
    // The harvester's idea of its site, changed behind its back for one report.
    std::fs::write(&site_file, "elsewhere").unwrap();
    let refused = {
        let mut agent = nester.agent(&probe, &closed_port().to_string());
        agent.produce().await.unwrap().unwrap()
    };
    std::fs::write(&site_file, "test-site").unwrap();
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    let good = agent.produce().await.unwrap().unwrap();

    let delivered = agent.drain().await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0, good.sequence);
    assert_eq!(agent.spool().usage().unwrap().reports, 0);
    assert_eq!(agent.spool().rejected().unwrap(), 1);
    let kept = std::fs::read_dir(agent.spool().dir().join("rejected"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        kept,
        vec![refused.jws],
        "the refused report, kept as it was"
    );
    assert_eq!(nester.count("reports"), 1);
}

/// A nester that accepts and then says nothing does not hang the harvester: one that never
/// finishes TLS is given up after the connect timeout (10 s), one that takes the report and
/// never answers after the request timeout (30 s). Both are worth another try, so the agent
/// keeps the report spooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nester_times_out_and_is_tried_again() {
    use harvester::uplink::{Uplink, UplinkError};
    use tokio::io::AsyncReadExt;

    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let identity = probe.identity();
    let jws = probe
        .signer()
        .sign_report(
            &seahawks_tests::synthetic::SimProbe::new(probe.id, "test-site", vec![])
                .report(time::OffsetDateTime::now_utc(), Vec::new()),
        )
        .unwrap();
    // Never starts TLS: accepts and holds the socket.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = mute.accept().await {
            held.push(socket);
        }
    });
    // Finishes TLS with the nester's own ingest configuration, reads, never answers.
    let ca = nester::pki::CaCert::load(&nester.dir).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        nester::net::tls::ingest(&nester.dir, &[ca.der])
            .unwrap()
            .0
            .config,
    );
    let deaf = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let deaf_addr = deaf.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = deaf.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    let mut buf = vec![0u8; 1 << 16];
                    while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });

    let attempt = |addr: std::net::SocketAddr| {
        let (identity, jws) = (&identity, jws.clone());
        async move {
            let tls = harvester::tls::mtls(identity).unwrap();
            let mut uplink = Uplink::new(&addr.to_string(), Some("localhost"), tls).unwrap();
            let started = std::time::Instant::now();
            let result = uplink.send(jws).await;
            (result, started.elapsed())
        }
    };
    let ((to_mute, after_mute), (to_deaf, after_deaf)) =
        tokio::join!(attempt(mute_addr), attempt(deaf_addr));
    let secs = |from: u64, to: u64| {
        std::time::Duration::from_secs(from)..std::time::Duration::from_secs(to)
    };
    assert!(
        matches!(to_mute, Err(UplinkError::Timeout(_))),
        "{to_mute:?}"
    );
    assert!(
        secs(9, 15).contains(&after_mute),
        "no TLS: gave up after {after_mute:?}"
    );
    assert!(
        matches!(to_deaf, Err(UplinkError::Timeout(_))),
        "{to_deaf:?}"
    );
    assert!(
        secs(29, 36).contains(&after_deaf),
        "no answer: gave up after {after_deaf:?}"
    );
    // A timeout is worth retrying: the agent keeps the report for the next attempt.
    assert!(!to_deaf.unwrap_err().is_permanent());
}
