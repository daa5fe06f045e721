//! The SSH trust and host certificate a harvester keeps on its box: the user CA and KRL
//! installed each cycle (a revocation refused one cycle later), the box's host key
//! certified so that `ssh -o StrictHostKeyChecking=yes` with only the `@cert-authority`
//! line connects while a box with an unsigned host key is refused, and no second box
//! certified for the names and addresses of the first.

use super::*;

#[tokio::test]
async fn the_harvester_installs_the_ssh_trust_and_a_revocation_reaches_the_box_next_cycle() {
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "hal", Role::Support, true).await;
    // The box trusts no CA until its harvester installs the nester's.
    let (sshd, mut agent, config, _probe) = harvested_box(&nester, false).await;

    let keys = tempfile::tempdir().unwrap();
    let serial = certificate_for(&nester, &support, &secret, keys.path(), "hal").await;
    assert!(
        !login(&sshd, keys.path(), "hal").0,
        "the box trusted a CA before its harvester ran"
    );

    agent.cycle().await.unwrap();
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    assert_eq!(
        std::fs::read_to_string(sshd.box_file("trusted_user_ca")).unwrap(),
        format!("{}\n", ca.json()["user_ca"].as_str().unwrap())
    );
    let (ok, err) = login(&sshd, keys.path(), "hal");
    assert!(ok, "{err}");

    let revoked = revoke(&nester, &support, serial).await;
    assert_eq!(revoked.status, 200);
    // Until the harvester's next cycle the box knows nothing of it; after it, sshd refuses.
    assert!(login(&sshd, keys.path(), "hal").0);
    agent.cycle().await.unwrap();
    let (ok, _) = login(&sshd, keys.path(), "hal");
    assert!(
        !ok,
        "a revoked certificate still logs in after a harvester cycle"
    );
    // The version the box holds: in the harvester's status, and known to the nester.
    let version = nester.db().ssh_revocations().await.unwrap().version;
    assert_eq!(version, 1, "one revocation");
    let status = harvester::status::Status::read(&config).unwrap();
    assert_eq!(status.ssh_trust_version, Some(version));
    let text = status.render(time::OffsetDateTime::now_utc());
    assert!(
        text.contains(&format!("ssh trust:    version {version}\n")),
        "{text}"
    );
    agent.cycle().await.unwrap();
    let holders = nester.db().ssh_trust_holders().await.unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(
        (holders[0].served_version, holders[0].held_version),
        (version, Some(version))
    );
}

#[tokio::test]
async fn a_certified_box_is_trusted_through_the_cert_authority_line_and_no_other_is() {
    let nester = nester_for_boxes(|_| {}).await;
    let (support, secret) = user(&nester, "hana", Role::Support, true).await;
    let (sshd, _, mut config, probe) = harvested_box(&nester, true).await;
    let ssh = config.ssh.as_mut().unwrap();
    ssh.host_names = vec!["box-1".into(), "mail.example.com".into()];
    let mut agent = harvester::Agent::new(config).unwrap();
    agent.refresh_ssh_trust().await.unwrap();
    // What a systemd path unit does on a box when the certificate file changes.
    sshd.reload();

    let keys = tempfile::tempdir().unwrap();
    certificate_for(&nester, &support, &secret, keys.path(), "hana").await;
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    let known_hosts = ca.json()["known_hosts"].as_str().unwrap().to_string();
    // The CA is trusted for the operator's patterns alone, never for every host.
    assert!(
        known_hosts.starts_with("@cert-authority [127.0.0.1]:*,box-* ssh-ed25519 "),
        "{known_hosts}"
    );
    let (ok, err) = login_knowing(&sshd, keys.path(), "hana", &known_hosts);
    assert!(ok, "the certified box was not trusted: {err}");

    // What the nester signed: the box's key, for the address it came from, recorded.
    let cert = nester
        .db()
        .latest_host_certificate(probe.id.to_string())
        .await
        .unwrap()
        .unwrap();
    // ...those of its names in the operator's patterns: not a name it merely claims.
    for (name, certified) in [
        ("127.0.0.1", true),
        ("box-1", true),
        ("mail.example.com", false),
    ] {
        assert_eq!(
            cert.principals.contains(&name.to_string()),
            certified,
            "{cert:?}"
        );
    }
    assert_eq!(cert.public_key, sshd.host_key());
    let installed = std::fs::read_to_string(sshd.box_file("host_ed25519-cert.pub")).unwrap();
    assert_eq!(installed, format!("{}\n", cert.certificate));
    // The next cycle hands back the same certificate: nothing signed, nothing rewritten.
    agent.refresh_ssh_trust().await.unwrap();
    let again = nester
        .db()
        .latest_host_certificate(probe.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.serial, cert.serial);

    // A box whose host key the nester never signed: refused with only the CA line.
    let unsigned =
        Sshd::start_box(&std::fs::read_to_string(sshd.box_file("trusted_user_ca")).unwrap());
    std::fs::write(unsigned.box_file("principals"), "support\n").unwrap();
    let (ok, err) = login_knowing(&unsigned, keys.path(), "hana", &known_hosts);
    assert!(!ok, "a box with an unsigned host key was trusted");
    assert!(err.contains("Host key verification failed"), "{err}");
    // Pinned, the same box lets the same certificate in: only its host key was wrong.
    assert!(login(&unsigned, keys.path(), "hana").0);

    // Another enrolled harvester, on the same machine, asking for the same names and
    // address: not certified as the first box.
    let other = nester.probe().await;
    let mut config = nester.agent_config(&other, "9");
    config.ssh = Some(box_config(&unsigned, true));
    let mut impostor = harvester::Agent::new(config).unwrap();
    let err = format!("{:#}", impostor.refresh_ssh_trust().await.unwrap_err());
    assert!(err.contains("another box's host certificate"), "{err}");
    assert!(!unsigned.box_file("host_ed25519-cert.pub").exists());

    // The first box's probe revoked (it reported once, so the nester knows it): its host key
    // is `@revoked` for clients, who then refuse the box whatever certificate it shows; its
    // names are free for another box; its host key is never certified again.
    agent.cycle().await.unwrap();
    assert!(
        nester
            .db()
            .revoke_probe(nester::db::audit::Actor::cli(), probe.id)
            .await
            .unwrap()
    );
    let ca = call(&nester, &support, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    let with_revoked = ca.json()["known_hosts"].as_str().unwrap().to_string();
    assert!(
        with_revoked.contains(&format!("@revoked * {}", sshd.host_key())),
        "{with_revoked}"
    );
    let (ok, err) = login_knowing(&sshd, keys.path(), "hana", &with_revoked);
    assert!(!ok, "a revoked probe's box was trusted");
    assert!(err.contains("REVOKED"), "{err}");
    impostor.refresh_ssh_trust().await.unwrap();
    assert!(unsigned.box_file("host_ed25519-cert.pub").exists());
    let third = nester.probe().await;
    let mut config = nester.agent_config(&third, "9");
    config.ssh = Some(box_config(&sshd, true));
    let err = format!(
        "{:#}",
        harvester::Agent::new(config)
            .unwrap()
            .refresh_ssh_trust()
            .await
            .unwrap_err()
    );
    assert!(err.contains("new host keys"), "{err}");
}

#[tokio::test]
async fn hostile_host_certificate_requests_are_refused_and_sign_nothing() {
    let nester = nester_for_boxes(|c| c.ingest.max_body_bytes = 64 * 1024).await;
    let probe = nester.probe().await;
    let client = probe.client_cert();
    let sshd = Sshd::start_box("");
    let host_key = sshd.host_key();
    let request = |names: Vec<String>, key: &str| {
        serde_json::to_vec(&serde_json::json!({
            "host_key": key, "names": names, "addresses": [], "trust_version": null
        }))
        .unwrap()
    };
    let path = shared::protocol::SSH_HOST_CERTIFICATE_PATH;
    let json = Some("application/json");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not JSON", b"{".to_vec(), 400, "bad_json"),
        (
            "unknown field",
            br#"{"host_key":"x","names":[],"addresses":[],"trust_version":null,"extra":1}"#
                .to_vec(),
            400,
            "bad_json",
        ),
        (
            "not a key",
            request(vec![], "ssh-ed25519 AAAA"),
            400,
            "bad_host_key_request",
        ),
        (
            "a private key",
            request(vec![], "-----BEGIN OPENSSH PRIVATE KEY-----"),
            400,
            "bad_host_key_request",
        ),
        (
            "a wildcard name",
            request(vec!["*.example".into()], &host_key),
            400,
            "bad_host_key_request",
        ),
        (
            "localhost",
            request(vec!["localhost".into()], &host_key),
            400,
            "bad_host_key_request",
        ),
        (
            "too many names",
            request((0..40).map(|i| format!("h{i}")).collect(), &host_key),
            400,
            "bad_host_key_request",
        ),
        (
            "oversized",
            request(vec!["a".repeat(70 * 1024)], &host_key),
            413,
            "payload_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let response = nester
            .post_ingest(Some(&client), path, json, body)
            .await
            .unwrap();
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_str()),
            (status, code),
            "{what}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
    // Without a client certificate: no certificate, and told to enroll.
    let anonymous = nester
        .post_ingest(None, path, json, request(vec![], &host_key))
        .await
        .unwrap();
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.error_code().as_str()),
        (401, shared::protocol::code::CLIENT_CERTIFICATE_REQUIRED)
    );
    assert!(
        nester
            .db()
            .latest_host_certificate(probe.id.to_string())
            .await
            .unwrap()
            .is_none(),
        "nothing signed"
    );
    // The good request still works after all that.
    let good = nester
        .post_ingest(
            Some(&client),
            path,
            json,
            request(vec!["box-1".into()], &host_key),
        )
        .await
        .unwrap();
    assert_eq!(
        good.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&good.body)
    );

    // A nester whose operator named no hosts signs none.
    let plain = TestNester::start().await;
    let client = plain.probe().await.client_cert();
    let off = plain
        .post_ingest(
            Some(&client),
            path,
            json,
            request(vec!["box-1".into()], &host_key),
        )
        .await
        .unwrap();
    assert_eq!(
        (off.status.as_u16(), off.error_code().as_str()),
        (403, "host_certificates_off")
    );
}

#[tokio::test]
async fn a_box_that_does_not_install_its_trust_is_alerted_until_it_does() {
    let nester =
        TestNester::start_with(|c| c.alerts.every = std::time::Duration::from_millis(100)).await;
    let (sshd, _, mut config, probe) = harvested_box(&nester, false).await;
    // The harvester cannot write where sshd reads (a directory that is not there yet).
    let missing = sshd.box_file("seahawks");
    let ssh = config.ssh.as_mut().unwrap();
    ssh.trusted_user_ca_keys = missing.join("user_ca.pub");
    ssh.revoked_keys = missing.join("revoked.krl");
    let mut agent = harvester::Agent::new(config).unwrap();
    let subject = format!("probe:{}", probe.id);
    for _ in 0..2 {
        let err = format!("{:#}", agent.refresh_ssh_trust().await.unwrap_err());
        assert!(err.contains("cannot write"), "{err}");
    }
    // Given version 0 at its first fetch, it says at its second that it holds nothing.
    let (severity, _, _) = eventually(&format!("ssh.trust_behind on {subject}"), || {
        nester.open_alert("ssh.trust_behind", &subject)
    })
    .await;
    assert_eq!(severity, "critical");
    let text = nester::cli::ssh::report(&nester.dir, nester.db(), nester.clock().now_ms())
        .await
        .unwrap();
    assert!(text.contains("did not install what it was given"), "{text}");
    // And the admin's SSH page shows the box as not installed.
    nester.add_user("ava", Role::Admin).await;
    let admin = nester.user_id("ava").await;
    let session = crate::sessions::session_for(&nester, admin, nester::db::Stage::Full).await;
    let boxes = || async {
        let page = nester
            .as_session(&session, Method::GET, "/account/ssh", &[], Vec::new())
            .await;
        assert_eq!(page.status, 200);
        page.text()
    };
    let page = boxes().await;
    assert!(
        page.contains(&format!(
            "data-probe=\"{}\" class=\"trust-failing\"",
            probe.id
        )),
        "{page}"
    );

    // Fixed on the box: the next cycle installs, the one after says so, and it resolves.
    std::fs::create_dir(&missing).unwrap();
    agent.refresh_ssh_trust().await.unwrap();
    assert!(
        nester.open_alert("ssh.trust_behind", &subject).is_some(),
        "not yet said"
    );
    agent.refresh_ssh_trust().await.unwrap();
    eventually(&format!("ssh.trust_behind on {subject} resolved"), || {
        nester
            .open_alert("ssh.trust_behind", &subject)
            .is_none()
            .then_some(())
    })
    .await;
    assert!(boxes().await.contains("class=\"trust-current\""));
}
