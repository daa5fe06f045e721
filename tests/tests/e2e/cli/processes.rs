//! The real binaries: a nester and a harvester process delivering reports, and the demo.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Method;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::harness::{closed_port, https, write_harvester_config};
use crate::process::{Daemon, run, stderr};

/// Polls the probe list until a probe has a report with at least `open` open ports (30 s at most).
async fn wait_for_report(
    dashboard: &str,
    ca_pem: &Path,
    api_token: &str,
    open: u64,
) -> serde_json::Value {
    let bearer = format!("Bearer {api_token}");
    let addr = dashboard
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let ca = CertificateDer::from_pem_file(ca_pem).unwrap();
    let delivered = || async {
        let probes = https(
            addr,
            &ca,
            None,
            Method::GET,
            "/api/v1/probes",
            &[("authorization", &bearer)],
            Vec::new(),
        )
        .await
        .unwrap()
        .json();
        let open_ports = probes[0]["last_report"]["open_ports"].as_u64();
        match open_ports.is_some_and(|n| n >= open) {
            true => Ok(probes),
            false => Err(format!("no report: {probes}")),
        }
    };
    crate::harness::until(Duration::from_secs(30), delivered).await
}

#[tokio::test]
async fn nester_and_harvester_processes_deliver_reports() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    let data_str = data.to_str().unwrap();
    let out = run("nester", &["init", "--data-dir", data_str]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("pki/ca.key")), 0o600);

    let config = temp.path().join("nester.toml");
    let nester_toml = |public: &str| {
        format!(
            "data_dir = {data_str:?}\n[ingest]\nlisten = \"127.0.0.1:0\"\n{public}[web]\nlisten = \"127.0.0.1:0\"\n"
        )
    };
    std::fs::write(&config, nester_toml("")).unwrap();
    let nester = Daemon::spawn("nester", &["serve", "--config", config.to_str().unwrap()]);
    let dashboard = nester.field("dashboard");
    let ingest = nester.field("ingest");

    // An administrator makes a token; it names the address harvesters should dial.
    let admin_config = temp.path().join("admin.toml");
    std::fs::write(
        &admin_config,
        nester_toml(&format!("public_address = {ingest:?}\n")),
    )
    .unwrap();
    let out = run(
        "nester",
        &[
            "token",
            "create",
            "--config",
            admin_config.to_str().unwrap(),
            "--site",
            "process-test",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(token.starts_with("SHK1."), "{token}");
    assert_eq!(
        token.lines().count(),
        1,
        "the token alone on stdout: {token}"
    );
    // People are told where harvesters will dial, and what to do next.
    let told = stderr(&out);
    assert!(
        told.contains(&format!("will dial {ingest}")) && told.contains("harvester enroll"),
        "{told}"
    );
    let token_file = temp.path().join("token");
    std::fs::write(&token_file, &token).unwrap();

    let state = temp.path().join("harvester");
    let out = run(
        "harvester",
        &[
            "enroll",
            "--token-file",
            token_file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&state.join("identity.pem")), 0o600);
    let probe_id = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("probe id: ", "");
    let out = run(
        "nester",
        &["token", "list", "--config", admin_config.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("used up"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ports = format!("{},{}", service.local_addr().unwrap().port(), closed_port());
    let harvester_toml = temp.path().join("harvester.toml");
    write_harvester_config(&harvester_toml, &state, "1s", &ports);
    let harvester = Daemon::spawn(
        "harvester",
        &["run", "--config", harvester_toml.to_str().unwrap()],
    );

    // Nothing without a token; `nester api-token create` makes one for the admin `init` made.
    let ca = CertificateDer::from_pem_file(data.join("pki/ca.pem")).unwrap();
    let web_addr = dashboard
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let anonymous = https(
        web_addr,
        &ca,
        None,
        Method::GET,
        "/api/v1/probes",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(anonymous.status, 401);
    let admin_cli = |args: &[&str]| {
        let mut all = vec!["api-token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", admin_config.to_str().unwrap()]);
        let out = run("nester", &all);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let api_token = admin_cli(&["create", "--user", "admin", "--name", "ci", "--ttl", "1d"]);
    let api_token = api_token.trim();
    assert!(api_token.starts_with("shk_"), "{api_token}");
    let listed = admin_cli(&["list"]);
    assert!(
        listed.contains("ci") && listed.contains("read ") && listed.contains("active"),
        "{listed}"
    );
    let probes = wait_for_report(&dashboard, &data.join("pki/ca.pem"), api_token, 1).await;
    assert_eq!(probes[0]["probe_id"], probe_id);
    assert_eq!(probes[0]["site"], "process-test");
    // A healthy site and nester log no warning or error.
    assert_eq!(harvester.warnings(), Vec::<String>::new());
    assert_eq!(nester.warnings(), Vec::<String>::new());
    harvester.stop("-INT");
    let out = run(
        "harvester",
        &["status", "--config", harvester_toml.to_str().unwrap()],
    );
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && status.contains(&probe_id) && status.contains("site process-test"),
        "{status}{}",
        stderr(&out)
    );
    nester.stop("-TERM");
    // The database is whole after a clean stop.
    let db = rusqlite::Connection::open(data.join("nester.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test]
async fn demo_prints_where_to_look_and_cleans_up() {
    let demo = Daemon::spawn("nester", &["demo", "--interval-secs", "1"]);
    let dashboard = demo.field("dashboard");
    let login = demo.field("login");
    let totp = demo.field("totp");
    let api_token = demo.field("api token");
    let ingest = demo.field("ingest");
    let data_dir = PathBuf::from(demo.field("data dir"));
    // A generated login with its TOTP secret, and a token: nothing fixed in the source.
    let (user, password) = login.split_once(" / ").unwrap();
    assert_eq!(user, "admin");
    assert!(
        nester::auth::credentials::check_password(password).is_ok(),
        "{login}"
    );
    assert!(totp.starts_with("otpauth://totp/Seahawks:admin?"), "{totp}");
    let api_token = api_token.split_whitespace().next().unwrap();
    assert!(api_token.starts_with("shk_"), "{api_token}");
    assert!(
        dashboard.starts_with("https://127.0.0.1:") && dashboard.ends_with('/'),
        "{dashboard}"
    );
    assert!(ingest.starts_with("127.0.0.1:"), "{ingest}");
    // The demo opens three services with banners for its harvester to find.
    let ca_path = data_dir.join("pki/ca.pem");
    let probes = wait_for_report(&dashboard, &ca_path, api_token, 3).await;
    assert_eq!(probes[0]["site"], "demo");
    // A newcomer's first run warns of nothing (it once said nobody could sign in).
    assert_eq!(demo.warnings(), Vec::<String>::new());
    // ...and reads what each one says.
    let addr = dashboard
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let path = format!(
        "/api/v1/reports/{}",
        probes[0]["last_report"]["report_id"].as_str().unwrap()
    );
    let ca = CertificateDer::from_pem_file(&ca_path).unwrap();
    let bearer = format!("Bearer {api_token}");
    let report = https(
        addr,
        &ca,
        None,
        Method::GET,
        &path,
        &[("authorization", &bearer)],
        Vec::new(),
    )
    .await
    .unwrap()
    .json();
    let banners: Vec<&str> = report["hosts"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["banner"].as_str())
        .collect();
    assert!(
        banners.contains(&"SSH-2.0-OpenSSH_9.2p1 Seahawks-demo"),
        "{banners:?}"
    );
    assert!(banners.iter().any(|b| b.starts_with("220 ")), "{banners:?}");
    demo.stop("-INT");
    assert!(
        !data_dir.exists(),
        "the demo left {} behind",
        data_dir.display()
    );
}
