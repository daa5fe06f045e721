//! `nester ca rotate` with real harvesters: before, during and after the overlap every report
//! is delivered and stored once; a harvester that trusts only the old CA still verifies the
//! nester during the overlap (cross-certificate), learns the new CA from the signed trust
//! bundle and renews from it at its next cycle; a token made before the rotation still
//! enrolls; once the old CA is retired, a harvester that slept through the overlap is told to
//! enroll again, and reports signed under either CA still verify offline against `/ca.pem`
//! with the Python verifier.

use std::net::SocketAddr;
use std::time::Duration;

use harvester::uplink::Delivery;
use hyper::StatusCode;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use shared::identity::fingerprint;

use crate::harness::{Probe, TestNester};
use crate::interop::python_verify;

/// The chain a new TLS connection to `addr` is shown by a client trusting only `root`, as
/// fingerprints; an error when the client does not verify it.
async fn chain(addr: SocketAddr, root: &CertificateDer<'static>) -> Result<Vec<String>, String> {
    let stream = crate::client::tls(addr, root, None).await?;
    let certs = stream.get_ref().1.peer_certificates().unwrap();
    Ok(certs.iter().map(|c| fingerprint(c)).collect())
}

/// Waits (10 s at most) until `addr` serves a chain whose CA (second certificate) is `ca`.
async fn until_served_from(addr: SocketAddr, root: &CertificateDer<'static>, ca: &str) {
    let from_ca = || async {
        let served = chain(addr, root).await;
        served
            .is_ok_and(|c| c.get(1).map(String::as_str) == Some(ca))
            .then_some(())
    };
    let what = format!("{addr} serving a certificate from {ca}");
    crate::harness::within(Duration::from_secs(10), &what, from_ca).await;
}

fn reports_of(nester: &TestNester, probe: &Probe) -> i64 {
    nester.scalar(&format!(
        "SELECT count(*) FROM reports WHERE probe_id = '{}'",
        probe.id
    ))
}

async fn signed_report(nester: &TestNester, report_id: uuid::Uuid) -> Vec<u8> {
    let response = nester
        .get(&format!("/api/v1/reports/{report_id}/signed"))
        .await;
    assert_eq!(response.status, StatusCode::OK);
    response.body
}

#[tokio::test]
async fn a_ca_rotation_reaches_every_harvester_and_loses_no_report() {
    let mut nester =
        TestNester::start_with(|c| c.certificates.check_every = Duration::from_millis(200)).await;
    let old = nester.ca.clone();
    let (online, sleeper) = (nester.probe().await, nester.probe().await);
    let mut agent = nester.agent(&online, "1");
    let early_token = nester.token("test-site", time::Duration::hours(1), 1).await;

    // Before.
    let (first, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, Delivery::Stored);
    // The sleeper reports once, then goes offline until the overlap is over.
    nester.agent(&sleeper, "1").cycle().await.unwrap();

    // Rotate, as `nester ca rotate` does, with an overlap of two minutes.
    let rotation = nester::pki::rotation::rotate(
        &nester.dir,
        nester.clock().now(),
        time::Duration::minutes(2),
    )
    .unwrap();
    let new = nester::pki::CaCert::load(&nester.dir).unwrap().der;
    assert_eq!(rotation.issuing_sha256, fingerprint(&new));
    // The running nester takes it up: both listeners serve a certificate from the new CA, and
    // a client that trusts only the old CA still verifies it.
    until_served_from(nester.ingest, &old, &rotation.issuing_sha256).await;
    until_served_from(nester.web, &old, &rotation.issuing_sha256).await;
    assert!(chain(nester.web, &new).await.is_ok());

    // During: the harvester (trusting only the old CA) cycles as ever; on the way it adopts
    // the signed bundle of both CAs and renews from the new one.
    assert_eq!(agent.identity().trust, vec![old.clone()]);
    let (during, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, Delivery::Stored);
    assert_eq!(fingerprint(&agent.identity().ca), rotation.issuing_sha256);
    let mut trusted: Vec<_> = agent
        .identity()
        .trust
        .iter()
        .map(|c| fingerprint(c))
        .collect();
    trusted.sort();
    let mut both = vec![
        rotation.issuing_sha256.clone(),
        rotation.previous_sha256.clone(),
    ];
    both.sort();
    assert_eq!(trusted, both);
    // `harvester status` says so.
    let status = harvester::status::Status::read(&nester.agent_config(&online, "1")).unwrap();
    assert_eq!(status.certificate_issuer, rotation.issuing_sha256);
    assert_eq!(status.trusted_cas.len(), 2);
    assert!(
        status
            .render(time::OffsetDateTime::now_utc())
            .contains(&format!(
                "issued by:    CA {}",
                &rotation.issuing_sha256[..16]
            ))
    );
    // A restart during the overlap changes nothing.
    nester.restart().await;
    let (_, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, Delivery::Stored, "no second renewal needed");
    // A token made before the rotation (pinning the old CA) still enrolls.
    let temp = tempfile::tempdir().unwrap();
    let late_dir = temp.path().join("late");
    let (late_id, _) = harvester::enroll::enroll(&early_token, &late_dir)
        .await
        .unwrap();
    let late = Probe {
        id: late_id,
        state_dir: late_dir,
        _temp: temp,
    };
    let mut late_agent = nester.agent(&late, "1");
    assert_eq!(
        fingerprint(&late_agent.identity().ca),
        rotation.issuing_sha256
    );
    late_agent.cycle().await.unwrap();
    // `nester ca status` can tell who has not moved: the sleeper only.
    let behind = nester
        .db()
        .probes_not_issued_by(rotation.issuing_sha256.clone())
        .await
        .unwrap();
    assert_eq!(
        behind,
        vec![(sleeper.id.to_string(), "test-site".to_string())]
    );

    // After: the overlap ends; the nester retires the old CA by itself (and audits it).
    nester.clock().advance(time::Duration::minutes(3));
    crate::harness::eventually("the old CA retired", || {
        (!nester.dir.previous_ca_cert().exists()).then_some(())
    })
    .await;
    crate::harness::eventually("the retirement audited", || {
        (nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'ca.retire'") == 1)
            .then_some(())
    })
    .await;
    let old_refused = || async { chain(nester.ingest, &old).await.is_err().then_some(()) };
    let what = "no cross-certificate once the old CA is retired";
    crate::harness::within(Duration::from_secs(10), what, old_refused).await;
    let (after, delivery) = agent.cycle().await.unwrap();
    assert_eq!(delivery, Delivery::Stored);
    assert_eq!(
        agent.identity().trust,
        vec![new.clone()],
        "the old CA dropped"
    );

    // The harvester that slept through the whole overlap is told what to do.
    let err = format!(
        "{:#}",
        nester.agent(&sleeper, "1").cycle().await.unwrap_err()
    );
    assert!(err.contains("enroll it again"), "{err}");
    assert!(err.contains("rotated"), "{err}");

    // Clients of the web listener (support scripts) now need the new CA: from `/ca.pem`.
    nester.ca = new.clone();

    // Every report stored exactly once.
    assert_eq!(reports_of(&nester, &online), 4);
    assert_eq!(reports_of(&nester, &sleeper), 1);
    assert_eq!(reports_of(&nester, &late), 1);

    // `/ca.pem` is a bundle of both CAs; reports signed under each verify against it with the
    // Python verifier, and the old one no longer against the new CA alone.
    let bundle = nester.get("/ca.pem").await.body;
    let cas: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&bundle)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(cas, vec![new.clone(), old.clone()]);
    let dir = tempfile::tempdir().unwrap();
    for signed in [&first, &during, &after] {
        let jws = signed_report(&nester, signed.report_id).await;
        let (ok, out) = python_verify(dir.path(), &bundle, &jws);
        assert!(ok, "{out}");
    }
    // So does the dashboard's report page.
    let page = nester.get(&format!("/reports/{}", first.report_id)).await;
    let text = String::from_utf8_lossy(&page.body);
    assert!(text.contains("valid: signed by probe"), "{text}");
    let new_only = shared::trust::pem(&new);
    let (ok, out) = python_verify(
        dir.path(),
        new_only.as_bytes(),
        &signed_report(&nester, first.report_id).await,
    );
    assert!(!ok && out.contains("no CA"), "{out}");
}

/// `nester ca` as an operator runs it, with the refusals a person can act on.
#[tokio::test]
async fn nester_ca_rotates_reports_and_retires_through_the_binary() {
    let temp = tempfile::tempdir().unwrap();
    let files = crate::process::NesterFiles::new(temp.path());
    let dir = nester::datadir::DataDir::new(&files.data);
    let first = nester::pki::CaCert::load(&dir).unwrap().fingerprint();
    let nester = move |args: &[&str]| files.run(&[&["ca"], args].concat());
    let steps = tokio::task::spawn_blocking(move || {
        [
            nester(&["rotate", "--overlap", "soon"]),
            nester(&["rotate", "--overlap", "20years"]),
            nester(&["retire"]),
            nester(&["rotate", "--overlap", "1h"]),
            nester(&["rotate"]),
            nester(&["status"]),
            nester(&["retire"]),
            nester(&["status"]),
        ]
    })
    .await
    .unwrap();
    let [
        bad,
        too_long,
        nothing,
        rotated,
        again,
        during,
        retired,
        after,
    ] = steps;
    assert!(!bad.0 && bad.1.contains("overlap"), "{}", bad.1);
    assert!(
        !too_long.0 && too_long.1.contains("overlap"),
        "{}",
        too_long.1
    );
    assert!(
        !nothing.0 && nothing.1.contains("no CA rotation"),
        "{}",
        nothing.1
    );
    // (The refusals changed nothing: the rotation starts from the first CA.)
    assert!(rotated.0 && rotated.1.contains(&first), "{}", rotated.1);
    let new = nester::pki::CaCert::load(&dir).unwrap().fingerprint();
    assert_ne!(new, first);
    assert!(!again.0 && again.1.contains("in progress"), "{}", again.1);
    assert!(
        during.0 && during.1.contains(&format!("issuing   {new}")),
        "{}",
        during.1
    );
    assert!(
        during.1.contains(&format!("previous  {first}"))
            && during.1.contains("0 probe(s) not yet renewed"),
        "{}",
        during.1
    );
    assert!(retired.0, "{}", retired.1);
    assert!(
        after.1.contains(&format!("retired   {first}")) && !after.1.contains("previous"),
        "{}",
        after.1
    );
    assert!(!dir.previous_ca_key().exists(), "the old key is gone");
    let db = rusqlite::Connection::open(dir.database()).unwrap();
    let actions: Vec<String> = db
        .prepare("SELECT action FROM audit_log WHERE action LIKE 'ca.%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["ca.rotate", "ca.retire"]);
}
