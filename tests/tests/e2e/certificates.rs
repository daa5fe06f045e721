//! The nester's own certificates: with the clock moved past two thirds of their life, the
//! web and ingest certificates renew themselves and are served at once, without a restart,
//! while a connection made before keeps working; the new ones are on disk for the next start,
//! and every renewal is audited. An operator's web certificate replaced on disk is served
//! within seconds; a broken replacement is refused and the last good one kept.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::{Method, StatusCode};
use nester::datadir::{DataDir, Listener};
use nester::pki::Ca;

use crate::client::Connection;
use crate::harness::TestNester;
use crate::process::run;

/// The nester's (moved) clock, for a client that checks certificates at the nester's time,
/// as a real client would at the real time the clock stands for.
struct At(nester::clock::Clock);

impl std::fmt::Debug for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "At({})", self.0.now())
    }
}

impl rustls::time_provider::TimeProvider for At {
    fn current_time(&self) -> Option<rustls_pki_types::UnixTime> {
        Some(nester::clock::unix_time(self.0.now()))
    }
}

/// The SHA-256 of the certificate a new TLS connection to `addr` is shown.
async fn served(nester: &TestNester, addr: SocketAddr) -> String {
    let at = std::sync::Arc::new(At(nester.clock().clone()));
    let stream = crate::client::tls_at(addr, &nester.ca, at).await.unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    shared::identity::fingerprint(&leaf)
}

/// `served` once it differs from `old` (at most 10 s).
async fn served_other_than(nester: &TestNester, addr: SocketAddr, old: &str) -> String {
    let other = || async {
        let now = served(nester, addr).await;
        (now != old).then_some(now)
    };
    let what = format!("{addr} serving another certificate than {old}");
    crate::harness::within(Duration::from_secs(10), &what, other).await
}

#[tokio::test]
async fn listener_certificates_renew_at_two_thirds_while_serving() {
    let mut nester =
        TestNester::start_with(|c| c.certificates.check_every = Duration::from_millis(100)).await;
    let (web, ingest) = (
        served(&nester, nester.web).await,
        served(&nester, nester.ingest).await,
    );
    let mut kept = Connection::open(nester.web, &nester.ca, None)
        .await
        .unwrap();
    assert_eq!(
        kept.send(Method::GET, "/ca.pem", &[], vec![])
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );

    // 59 of 90 days: not yet.
    nester.clock().advance(time::Duration::days(59));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served(&nester, nester.web).await, web);
    // Past 60: both renew, no restart.
    nester.clock().advance(time::Duration::days(2));
    let new_web = served_other_than(&nester, nester.web, &web).await;
    let new_ingest = served_other_than(&nester, nester.ingest, &ingest).await;
    // The connection made before still works.
    let r = kept
        .send(Method::GET, "/ca.pem", &[], vec![])
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    // Issued for 90 days from the (moved) clock, by the same CA (the client above trusts it).
    let dir = DataDir::new(nester.dir.root());
    let pem = std::fs::read(dir.listener_cert(Listener::Web)).unwrap();
    let der: rustls_pki_types::CertificateDer =
        rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    let life = nester::pki::renew::Life::of(&der).unwrap();
    let days = (life.end - nester.clock().now_ms()) / 86_400_000;
    assert!((89..=90).contains(&days), "{days} days left");
    assert_eq!(shared::identity::fingerprint(&der), new_web, "on disk");
    // (Audited just after the swap: wait for the second entry.)
    crate::harness::eventually("both renewals audited", || {
        (nester.scalar("SELECT count(*) FROM audit_log WHERE action = 'certificate.renew'") == 2)
            .then_some(())
    })
    .await;
    // Restarted, the nester serves the renewed ones.
    nester.restart().await;
    // (A restarted test nester starts from the real time again.)
    nester.clock().advance(time::Duration::days(61));
    assert_eq!(served(&nester, nester.web).await, new_web);
    assert_eq!(served(&nester, nester.ingest).await, new_ingest);

    // `nester certs status` says so.
    let config = nester.dir.root().join("status.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[ingest]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n",
            nester.dir.root()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        run(
            "nester",
            &["certs", "status", "--config", config.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", crate::process::stderr(&out));
    assert!(
        text.contains(&new_web[..16]) && text.contains("renews itself"),
        "{text}"
    );
}

/// A certificate for 127.0.0.1 from the nester's own CA (so the test's client trusts it),
/// written to `cert` and `key` by renaming, as ACME clients do.
fn operator_files(root: &std::path::Path, cert: &std::path::Path, key: &std::path::Path) {
    let ca = Ca::load(&DataDir::new(root)).unwrap();
    let issued = ca
        .issue_server(
            &["127.0.0.1".into()],
            time::Duration::days(30),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    for (path, text) in [(key, &issued.key_pem), (cert, &issued.cert_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

#[tokio::test]
async fn an_operator_certificate_replaced_on_disk_is_served_within_seconds() {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("web.pem"), files.path().join("web.key"));
    let nester = TestNester::start_with(|c| {
        operator_files(&c.data_dir, &cert, &key);
        c.web.cert = Some(cert.clone());
        c.web.key = Some(key.clone());
    })
    .await;
    let first = served(&nester, nester.web).await;
    let leaf = |p: &std::path::Path| {
        let pem = std::fs::read(p).unwrap();
        let der: rustls_pki_types::CertificateDer =
            rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        shared::identity::fingerprint(&der)
    };
    assert_eq!(first, leaf(&cert));

    operator_files(nester.dir.root(), &cert, &key);
    let second = served_other_than(&nester, nester.web, &first).await;
    assert_eq!(second, leaf(&cert));

    // A certificate whose key does not fit: refused, the last good pair still served.
    let other = files.path().join("other");
    std::fs::create_dir(&other).unwrap();
    operator_files(
        nester.dir.root(),
        &other.join("c.pem"),
        &other.join("k.pem"),
    );
    std::fs::copy(other.join("c.pem"), &cert).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(served(&nester, nester.web).await, second);
    // Put right: served.
    std::fs::copy(other.join("k.pem"), &key).unwrap();
    let third = served_other_than(&nester, nester.web, &second).await;
    assert_eq!(third, leaf(&cert));
}
