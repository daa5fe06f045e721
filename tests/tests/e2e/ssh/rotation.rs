//! Rotating the SSH CAs with `nester ssh rotate`: the new user CA reaches the box before it
//! signs, certificates from both CAs log in during the overlap, only the new one's after it,
//! and at no moment is a valid new certificate refused; the host CA likewise for
//! `@cert-authority` lines.

use super::*;

use nester::ssh_ca::ca::Purpose;

/// The `@cert-authority` lines and user CAs `/api/v1/ssh/ca` gives now.
async fn authorities(nester: &TestNester, auth: &str) -> (Vec<String>, String) {
    let ca = call(nester, auth, Method::GET, "/api/v1/ssh/ca", Vec::new()).await;
    assert_eq!(ca.status, 200);
    let users = ca.json()["user_cas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    (
        users,
        ca.json()["known_hosts"].as_str().unwrap().to_string(),
    )
}

/// Starts a rotation of `purpose` as `nester ssh rotate` does, switching in 60 s and
/// retiring in 120 s (nester time), and waits until the running nester has taken it up.
async fn rotate(
    nester: &TestNester,
    auth: &str,
    purpose: Purpose,
) -> nester::ssh_ca::rotation::Rotation {
    let now = nester.clock().now_ms();
    let rotation =
        nester::ssh_ca::rotation::rotate(&nester.dir, purpose, now, now + 60_000, now + 120_000)
            .unwrap();
    let taken_up = || async {
        let (users, hosts) = authorities(nester, auth).await;
        let taken = match purpose {
            Purpose::User => users.len() == 2,
            Purpose::Host => hosts.lines().count() == 2,
        };
        taken.then_some(())
    };
    let ten_s = std::time::Duration::from_secs(10);
    crate::harness::within(ten_s, "the rotation taken up", taken_up).await;
    rotation
}

/// The CA fingerprint of certificate `serial`.
async fn signer(nester: &TestNester, serial: u64) -> String {
    nester
        .db()
        .ssh_certificate(serial)
        .await
        .unwrap()
        .unwrap()
        .0
        .ca
}

// The nester's clock moves 125 s in all: under the certificates' 5-minute backdating, so the
// real sshd (on the real clock) takes them as valid now.
#[tokio::test]
async fn user_certificates_of_both_cas_log_in_during_the_overlap_and_the_new_ones_from_the_switch()
{
    let nester = TestNester::start().await;
    let (support, secret) = user(&nester, "rhea", Role::Support, true).await;
    let (sshd, mut agent, _, _probe) = harvested_box(&nester, false).await;
    agent.refresh_ssh_trust().await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let old_a = certificate_for(&nester, &support, &secret, dir, "a").await;

    let rotation = rotate(&nester, &support, Purpose::User).await;
    // Before the switch the old CA still signs: what it signs works on boxes that have not
    // cycled yet.
    nester.clock().advance(time::Duration::seconds(30));
    let old_b = certificate_for(&nester, &support, &secret, dir, "b").await;
    assert_eq!(signer(&nester, old_b).await, rotation.previous);
    assert!(login(&sshd, dir, "b").0);
    // The box learns the new CA at its next cycle, before the switch; `nester ssh status`
    // names it as behind until then.
    let report = || nester::cli::ssh::report(&nester.dir, nester.db(), nester.clock().now_ms());
    let text = report().await.unwrap();
    assert!(text.contains("0 of 1 harvester(s) hold it"), "{text}");
    agent.refresh_ssh_trust().await.unwrap();
    let trusted = std::fs::read_to_string(sshd.box_file("trusted_user_ca")).unwrap();
    assert_eq!(trusted.lines().count(), 2, "{trusted}");
    // (It says which version it holds at its next fetch.)
    agent.refresh_ssh_trust().await.unwrap();
    let text = report().await.unwrap();
    assert!(text.contains("1 of 1 harvester(s) hold it"), "{text}");

    // Across the switch: the first certificate of the new CA logs in at once, with no
    // harvester cycle in between; the old CA's still do.
    nester.clock().advance(time::Duration::seconds(35));
    let new_c = certificate_for(&nester, &support, &secret, dir, "c").await;
    assert_eq!(signer(&nester, new_c).await, rotation.next);
    for name in ["a", "b", "c"] {
        let (ok, err) = login(&sshd, dir, name);
        assert!(ok, "{name} refused during the overlap: {err}");
    }
    // A revocation under the old CA still reaches the box during the overlap.
    assert_eq!(revoke(&nester, &support, old_b).await.status, 200);
    agent.refresh_ssh_trust().await.unwrap();
    assert!(!login(&sshd, dir, "b").0, "revoked under the old CA");
    assert!(login(&sshd, dir, "a").0);

    // After the retirement: only the new CA, from the box's next cycle.
    nester.clock().advance(time::Duration::seconds(60));
    let (users, _) = authorities(&nester, &support).await;
    assert_eq!(users.len(), 1);
    agent.refresh_ssh_trust().await.unwrap();
    assert!(
        !login(&sshd, dir, "a").0,
        "the retired CA's certificate still logs in"
    );
    assert!(login(&sshd, dir, "c").0);
    let new_d = certificate_for(&nester, &support, &secret, dir, "d").await;
    assert_eq!(signer(&nester, new_d).await, rotation.next);
    assert!(login(&sshd, dir, "d").0);
    let _ = old_a;
}

#[tokio::test]
async fn boxes_present_the_new_host_ca_from_the_switch_and_both_lines_trust_them_meanwhile() {
    let nester = nester_for_boxes(|_| {}).await;
    let (support, secret) = user(&nester, "hugo", Role::Support, true).await;
    let (sshd, mut agent, _, _probe) = harvested_box(&nester, true).await;
    agent.refresh_ssh_trust().await.unwrap();
    sshd.reload();
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    certificate_for(&nester, &support, &secret, dir, "h").await;
    let (_, old_line) = authorities(&nester, &support).await;
    assert!(login_knowing(&sshd, dir, "h", &old_line).0);

    rotate(&nester, &support, Purpose::Host).await;
    let (_, both) = authorities(&nester, &support).await;
    let new_line = both.lines().find(|l| *l != old_line).unwrap().to_string();
    let installed = || std::fs::read_to_string(sshd.box_file("host_ed25519-cert.pub")).unwrap();
    let before = installed();
    // Before the switch the box keeps the old CA's certificate.
    agent.refresh_ssh_trust().await.unwrap();
    assert_eq!(installed(), before);
    assert!(login_knowing(&sshd, dir, "h", &both).0);

    // From the switch, its next cycle brings the new CA's; both lines trust it, the old
    // line alone no longer does.
    nester.clock().advance(time::Duration::seconds(65));
    let report = || nester::cli::ssh::report(&nester.dir, nester.db(), nester.clock().now_ms());
    let text = report().await.unwrap();
    assert!(
        text.contains("host certificates: 0 of 1 box(es)") && text.contains("from another host CA"),
        "{text}"
    );
    agent.refresh_ssh_trust().await.unwrap();
    assert_ne!(installed(), before);
    let text = report().await.unwrap();
    assert!(text.contains("host certificates: 1 of 1 box(es)"), "{text}");
    sshd.reload();
    let (ok, err) = login_knowing(&sshd, dir, "h", &both);
    assert!(ok, "{err}");
    assert!(login_knowing(&sshd, dir, "h", &new_line).0);
    assert!(!login_knowing(&sshd, dir, "h", &old_line).0);
    // After the retirement the API gives the new line alone.
    nester.clock().advance(time::Duration::seconds(60));
    assert_eq!(authorities(&nester, &support).await.1, new_line);
}

#[tokio::test]
async fn nester_ssh_rotates_shows_and_retires_through_the_binary() {
    let temp = tempfile::tempdir().unwrap();
    let files = crate::process::NesterFiles::new(temp.path());
    let dir = nester::datadir::DataDir::new(&files.data);
    let nester = move |args: &[&str]| files.run(&[&["ssh"], args].concat());
    let steps = tokio::task::spawn_blocking(move || {
        [
            nester(&["status"]),
            nester(&["rotate", "user-ca", "--overlap", "soon"]),
            nester(&["retire", "user-ca"]),
            nester(&["rotate", "user-ca"]),
            nester(&["rotate", "user-ca"]),
            nester(&["status"]),
            nester(&["retire", "user-ca"]),
            nester(&["rotate", "host-ca", "--overlap", "0s"]),
            nester(&["status"]),
        ]
    })
    .await
    .unwrap();
    let [
        first,
        bad,
        nothing,
        rotated,
        again,
        during,
        retired,
        at_once,
        after,
    ] = steps;
    let user_ca = |text: &str| {
        text.lines()
            .skip_while(|l| *l != "SSH user CA")
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string()
    };
    assert!(first.0 && first.1.contains("signing"), "{}", first.1);
    let old = user_ca(&first.1);
    assert!(!bad.0 && bad.1.contains("soon"), "{}", bad.1);
    assert!(
        !nothing.0 && nothing.1.contains("no rotation"),
        "{}",
        nothing.1
    );
    assert!(rotated.0 && rotated.1.contains(&old), "{}", rotated.1);
    assert!(!again.0 && again.1.contains("in progress"), "{}", again.1);
    let new = rotated.1.split_whitespace().nth(4).unwrap().to_string();
    assert!(new.starts_with("SHA256:") && new != old, "{}", rotated.1);
    let db = rusqlite::Connection::open(dir.database()).unwrap();
    // Default: the old CA signs for two harvester intervals (5 minutes each, none reported),
    // then stays trusted for the longest user certificate (8 h).
    let (at_ms, details): (i64, String) = db
        .query_row(
            "SELECT at_ms, details FROM audit_log WHERE action = 'ssh.ca_rotate' ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    let (switch, retire) = (
        details["switch_ms"].as_i64().unwrap(),
        details["retire_ms"].as_i64().unwrap(),
    );
    assert!((switch - at_ms - 10 * 60_000).abs() < 5_000, "{details}");
    assert_eq!(retire - switch, 8 * 3_600_000);
    assert!(
        during.0
            && during.1.contains(&format!("signing  {old}"))
            && during.1.contains(&format!("trusted  {new}"))
            && during.1.contains("rotation started"),
        "{}",
        during.1
    );
    assert!(retired.0 && retired.1.contains(&old), "{}", retired.1);
    assert!(
        at_once.0 && at_once.1.contains("known_hosts"),
        "{}",
        at_once.1
    );
    assert_eq!(user_ca(&after.1), new);
    assert!(!after.1.contains(&old), "{}", after.1);
    assert!(
        after.1.contains("host certificates: 0 of 0 box(es)"),
        "{}",
        after.1
    );
    assert!(
        after.1.contains("SSH trust version 3: 0 of 0"),
        "{}",
        after.1
    );
    let actions: Vec<String> = db
        .prepare("SELECT action FROM audit_log WHERE action LIKE 'ssh.ca%' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["ssh.ca_rotate", "ssh.ca_retire", "ssh.ca_rotate"]);
}
