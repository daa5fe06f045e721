//! The admin pages in a real browser: make an enrollment token, enroll a real harvester (the
//! binary, given the token on standard input as the page says) and see it report, then revoke
//! the probe through the confirmation page; its next delivery is refused.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::harness::{Probe, TestNester, closed_port};
use crate::process::binary;
use crate::webdriver::{
    appears, browser, click, console_errors, screenshot, sign_in, text_of, type_into, wait_for_path,
};

/// `harvester enroll --token-file - --state-dir DIR`, the token written to its standard input.
async fn enroll_with_binary(token: &str, state_dir: &std::path::Path) -> String {
    let mut child = tokio::process::Command::new(binary("harvester"))
        .args(["enroll", "--token-file", "-", "--state-dir"])
        .arg(state_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{token}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("harvester enroll finishes within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "harvester enroll failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn an_admin_makes_a_token_in_the_browser_enrolls_a_harvester_and_revokes_it() {
    let nester = TestNester::start().await;
    let (_driver, client) = browser().await;
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    sign_in(&nester, &client, &base, false).await;

    // The nav leads to the tokens page; a token is made from its form.
    click(&client, "nav a[href='/admin/enrollment']").await;
    wait_for_path(&client, "/admin/enrollment").await;
    type_into(&client, "#create-token input[name=site]", "kc-north").await;
    click(&client, "#create-token button[type=submit]").await;
    let token = appears(&client, "#token").await.text().await.unwrap();
    let command = text_of(&client, "#command").await;
    assert!(command.contains("--token-file -"), "{command}");
    click(&client, "button[data-copy=token]").await;
    let copied = appears(&client, "button[data-copy=token][data-copied=true]")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        ["Copied", "Press Ctrl-C"].contains(&copied.as_str()),
        "{copied}"
    );
    screenshot(&client, "token-created").await;

    // Shown once: the list has the token's id and state, never the token itself.
    client
        .goto(&format!("{base}/admin/enrollment"))
        .await
        .unwrap();
    let listed = appears(&client, "#tokens").await.text().await.unwrap();
    assert!(
        listed.contains("kc-north") && listed.contains("usable"),
        "{listed}"
    );
    assert!(!client.source().await.unwrap().contains(&token));

    // A real harvester enrolls with it, as the page says, and reports.
    let temp = tempfile::tempdir().unwrap();
    let state_dir = temp.path().join("h");
    let told = enroll_with_binary(&token, &state_dir).await;
    assert!(told.contains("site: kc-north"), "{told}");
    let probe_id: uuid::Uuid = told
        .lines()
        .find_map(|l| l.strip_prefix("probe id: "))
        .unwrap()
        .parse()
        .unwrap();
    let probe = Probe {
        id: probe_id,
        state_dir,
        _temp: temp,
    };
    let mut agent = nester.agent(&probe, &closed_port().to_string());
    agent.cycle().await.unwrap();
    client
        .goto(&format!("{base}/admin/enrollment"))
        .await
        .unwrap();
    let listed = appears(&client, "#tokens").await.text().await.unwrap();
    assert!(listed.contains("used up"), "{listed}");

    // The probes page lists it; revoking goes through a confirmation page.
    click(&client, "nav a[href='/admin/probes']").await;
    wait_for_path(&client, "/admin/probes").await;
    let row = format!("#admin-probes tr[data-probe-id='{probe_id}']");
    let text = appears(&client, &row).await.text().await.unwrap();
    assert!(
        text.contains("kc-north") && text.contains("online"),
        "{text}"
    );
    screenshot(&client, "admin-probes").await;
    click(&client, &format!("{row} a.danger")).await;
    wait_for_path(&client, &format!("/admin/probes/{probe_id}/revoke")).await;
    // Not revoked by opening the confirmation page.
    agent.cycle().await.unwrap();
    screenshot(&client, "revoke-probe").await;
    click(&client, "#revoke-probe button[type=submit]").await;
    wait_for_path(&client, "/admin/probes").await;
    let text = appears(&client, &format!("{row}.revoked"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("revoked"), "{text}");
    assert_eq!(
        client
            .find_all(fantoccini::Locator::Css(&format!("{row} a.danger")))
            .await
            .unwrap()
            .len(),
        0
    );

    let err = format!("{:#}", agent.cycle().await.unwrap_err());
    assert!(err.contains("probe_revoked"), "{err}");
    assert_eq!(nester.count("reports"), 2);
    assert_eq!(
        console_errors(&client).await,
        Vec::<String>::new(),
        "console errors"
    );
    client.close().await.unwrap();
}

/// The alerts in a real browser: the count in the navigation bar and the site's badge lead
/// to the Alerts page, where the alert is acknowledged with a comment; the count goes.
#[tokio::test]
async fn alerts_are_counted_in_the_navigation_and_acknowledged_from_their_page() {
    let nester =
        TestNester::start_with(|c| c.alerts.every = std::time::Duration::from_millis(100)).await;
    let probe = nester.probe().await;
    let mut sim = seahawks_tests::synthetic::SimProbe::new(
        probe.id,
        "test-site",
        vec![seahawks_tests::synthetic::SimHost::new(
            "10.0.0.1",
            None,
            &[],
        )],
    );
    sim.interval_s = 60;
    nester
        .deliver(&probe, &sim.report(nester.clock().now(), Vec::new()))
        .await;
    nester.clock().advance(time::Duration::minutes(5));
    crate::harness::within(std::time::Duration::from_secs(10), "no alert", || {
        std::future::ready(
            (nester.scalar("SELECT count(*) FROM alerts WHERE rule = 'probe.offline'") != 0)
                .then_some(()),
        )
    })
    .await;

    let (_driver, client) = browser().await;
    let base = format!("https://127.0.0.1:{}", nester.web.port());
    sign_in(&nester, &client, &base, false).await;
    assert_eq!(text_of(&client, "#alerts-firing").await, "1");
    let badge = text_of(&client, ".site[data-site='test-site'] .badge.firing").await;
    assert_eq!(badge, "1");
    click(&client, ".site[data-site='test-site'] .badge.firing").await;
    wait_for_path(&client, "/alerts").await;
    let row = appears(
        &client,
        "#alerts tr[data-rule='probe.offline'][data-state='firing']",
    )
    .await;
    assert!(row.text().await.unwrap().contains("silent"), "the summary");
    screenshot(&client, "alerts").await;
    type_into(
        &client,
        "#alerts tr[data-rule='probe.offline'] input[name=comment]",
        "site manager called: power cut",
    )
    .await;
    click(
        &client,
        "#alerts tr[data-rule='probe.offline'] form.ack button",
    )
    .await;
    appears(
        &client,
        "#alerts tr[data-rule='probe.offline'][data-state='acknowledged']",
    )
    .await;
    let acked = text_of(&client, "#alerts tr[data-rule='probe.offline'] small.ack").await;
    assert!(
        acked.contains("power cut") && acked.contains("chrome-admin"),
        "{acked}"
    );
    assert!(
        client
            .find(fantoccini::Locator::Css("#alerts-firing"))
            .await
            .is_err(),
        "still counted as firing"
    );
    assert_eq!(console_errors(&client).await, Vec::<String>::new());
}
