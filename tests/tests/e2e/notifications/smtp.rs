//! E-mail through a real SMTP server over STARTTLS, and `nester alerts test`.

use std::time::{Duration, Instant};

use nester::config::{ChannelKind, SmtpTls};

use super::*;

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
    let python = crate::interop::python();
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
