//! The real binaries, as an operator runs them: `nester init|serve|token|demo`,
//! `harvester enroll|run|status|scan`, and the errors they give for bad input.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::Method;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::harness::{closed_port, https, write_harvester_config, write_nester_config};
use crate::process::{Daemon, run, stderr};
use seahawks_tests::netns::Netns;

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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
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
        if probes[0]["last_report"]["open_ports"]
            .as_u64()
            .is_some_and(|n| n >= open)
        {
            return probes;
        }
        assert!(Instant::now() < deadline, "no report within 30 s: {probes}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

#[test]
fn harvester_scan_prints_a_table_or_the_report_json() {
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = service.local_addr().unwrap().port();
    let ports = format!("{open},{}", closed_port());
    let out = run("harvester", &["scan", "127.0.0.1", "--ports", &ports]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("{open}/tcp")) && table.contains("1 closed"),
        "{table}"
    );

    let out = run(
        "harvester",
        &["scan", "127.0.0.1", "--ports", &ports, "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report = shared::Report::from_json(&out.stdout).unwrap();
    let port = report.hosts[0]
        .ports
        .iter()
        .find(|p| p.port == open)
        .unwrap();
    assert_eq!(port.state, shared::report::PortState::Open);
    // Not a terminal: no progress bar, nothing on standard error at all.
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

/// On a terminal (a pseudo-terminal from script(1)), a progress bar with hosts, ports and
/// ETA, cleared at the end so the table stands alone.
#[test]
fn harvester_scan_draws_progress_on_a_terminal() {
    let harvester = crate::process::binary("harvester");
    let command = format!(
        "{} scan 127.0.0.1 -n --ports 1-3000 --rate 4000",
        harvester.display()
    );
    let out = std::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("hosts ") && screen.contains("ports") && screen.contains("ETA"),
        "no progress bar on a terminal: {screen}"
    );
    assert!(screen.contains("127.0.0.1"), "{screen}");
}

#[test]
fn bad_input_gets_a_clear_error_and_a_failing_exit_code() {
    let temp = tempfile::tempdir().unwrap();
    let broken = temp.path().join("broken.toml");
    std::fs::write(
        &broken,
        "data_dir = \"/x\"\n[ingest]\nlisten = \"not an address\"\n",
    )
    .unwrap();
    let data = temp.path().join("data");
    assert!(
        run("nester", &["init", "--data-dir", data.to_str().unwrap()])
            .status
            .success()
    );

    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "harvester",
            vec!["scan", "127.0.0.1", "--ports", "0-5"],
            "port 0 cannot be scanned",
        ),
        (
            "harvester",
            vec!["scan", "10.0.0.0/8", "--ports", "22"],
            "narrow the range",
        ),
        (
            "harvester",
            vec!["run", "--config", "/nonexistent/harvester.toml"],
            "`harvester default-config > /nonexistent/harvester.toml`",
        ),
        (
            "nester",
            vec!["db", "stats", "--config", "/nonexistent/nester.toml"],
            "`nester default-config > /nonexistent/nester.toml`",
        ),
        (
            "nester",
            vec!["serve", "--config", broken.to_str().unwrap()],
            "line 3",
        ),
        (
            "nester",
            vec!["init", "--data-dir", data.to_str().unwrap()],
            "already initialised",
        ),
        (
            "harvester",
            vec!["enroll", "--token", "SHK1.abc", "--state-dir", "/tmp/x"],
            "refusing a token on the command line",
        ),
        (
            "harvester",
            vec![
                "enroll",
                "--token-file",
                "/nonexistent/token",
                "--state-dir",
                "/tmp/x",
            ],
            "/nonexistent/token",
        ),
        (
            "harvester",
            vec![
                "enroll",
                "--token-file",
                broken.to_str().unwrap(),
                "--state-dir",
                "/tmp/x",
            ],
            "not a Seahawks enrollment token",
        ),
        (
            "nester",
            vec![
                "token",
                "create",
                "--config",
                "/nonexistent/n.toml",
                "--site",
                "x",
            ],
            "/nonexistent/n.toml",
        ),
    ];
    for (bin, args, message) in cases {
        let out = run(bin, &args);
        assert!(!out.status.success(), "{bin} {args:?} succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(message),
            "{bin} {args:?}: expected `{message}` in: {err}"
        );
    }
}

#[test]
fn a_scan_under_a_tight_file_limit_waits_instead_of_failing() {
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = service.local_addr().unwrap().port();
    let (lo, hi) = (open.saturating_sub(1000).max(1), open.saturating_add(1000));
    // 1,000 connects in flight against 64 file descriptors: EMFILE all the way.
    let out = std::process::Command::new("prlimit")
        .args(["--nofile=64:64", "--"])
        .arg(crate::process::binary("harvester"))
        .args([
            "scan",
            "127.0.0.1",
            "--ports",
            &format!("{lo}-{hi}"),
            "--concurrency",
            "1000",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = shared::Report::from_json(&out.stdout).unwrap();
    let ports = &report.hosts[0].ports;
    assert_eq!(ports.len(), usize::from(hi - lo + 1));
    assert_eq!(
        ports.iter().find(|p| p.port == open).unwrap().state,
        shared::report::PortState::Open
    );
}

#[test]
fn discovery_finds_hosts_by_icmp_or_tcp_and_leaves_absent_ones_unscanned() {
    let ns = Netns::new();
    // A veth pair inside the namespace: 10.99.0.1 on one end, nobody on the other, so no
    // other address of 10.99.0.0/24 ever answers (ARP goes unanswered).
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "v0"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns.ip(&["link", "set", "v1", "up"]);
    let harvester = crate::process::binary("harvester");
    let scan = |args: &[&str]| {
        let mut all = vec![
            "scan",
            "--json",
            "--timeout",
            "300ms",
            "--retries",
            "0",
            "--banner-timeout-ms",
            "0",
        ];
        all.extend_from_slice(args);
        let out = ns.exec(&harvester, &all);
        assert!(out.status.success(), "{}", stderr(&out));
        shared::Report::from_json(&out.stdout).unwrap()
    };
    let host = |r: &shared::Report, ip: &str| {
        r.hosts
            .iter()
            .find(|h| h.address.to_string() == ip)
            .unwrap()
            .clone()
    };
    use shared::report::{DiscoveryMethod, HostState, PortState};

    let report = scan(&["127.0.0.1", "10.99.0.2", "--ports", "1-3"]);
    let up = host(&report, "127.0.0.1");
    assert_eq!(
        (up.state, up.discovery.map(|d| d.method)),
        (HostState::Up, Some(DiscoveryMethod::Icmp))
    );
    assert!(up.ports.iter().all(|p| p.state == PortState::Closed) && up.ports.len() == 3);
    let absent = host(&report, "10.99.0.2");
    assert_eq!(
        (absent.state, absent.discovery, absent.ports.len()),
        (HostState::Down, None, 0),
        "an absent host was scanned"
    );

    // Like nmap -Pn: scanned anyway, and silence reads as filtered.
    let report = scan(&["10.99.0.2", "--ports", "1-3", "--skip-discovery"]);
    let absent = host(&report, "10.99.0.2");
    assert!(
        absent.ports.len() == 3 && absent.ports.iter().all(|p| p.state == PortState::Filtered),
        "{absent:?}"
    );

    // An unreachable (here a route that says so) is news about the host, not its ports:
    // even scanned like nmap -Pn, the host is down and no port gets a state.
    ns.ip(&["route", "add", "unreachable", "10.55.0.0/24"]);
    let report = scan(&["10.55.0.7", "--ports", "1-3", "--skip-discovery"]);
    let unreachable = host(&report, "10.55.0.7");
    assert_eq!(
        (unreachable.state, unreachable.ports.len()),
        (HostState::Down, 0),
        "{unreachable:?}"
    );

    // Where echo requests go unanswered, a reset on a discovery port still proves the host.
    ns.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    let report = scan(&["127.0.0.1", "--ports", "1"]);
    assert_eq!(
        host(&report, "127.0.0.1").discovery.map(|d| d.method),
        Some(DiscoveryMethod::Tcp)
    );
}

/// Without root, ICMP needs a datagram socket, which `ping_group_range` allows per network
/// namespace. Outside the range: a clear log line and discovery by TCP; inside: ICMP. Only
/// our namespace's setting changes; the host's stays as it was.
#[test]
fn unprivileged_discovery_uses_datagram_icmp_where_allowed_and_tcp_otherwise() {
    let host_setting = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let ns = Netns::new();
    let harvester = crate::process::binary("harvester");
    let scan_as_nobody = || {
        let out = ns
            .command("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&harvester)
            .args(["scan", "--json", "-n", "--ports", "1", "127.0.0.1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let report = shared::Report::from_json(&out.stdout).unwrap();
        let method = report.hosts[0].discovery.as_ref().map(|d| d.method);
        (method, stderr(&out))
    };
    use shared::report::DiscoveryMethod;

    // A new namespace starts with "1 0": nobody may open a datagram ICMP socket.
    let (method, log) = scan_as_nobody();
    assert_eq!(method, Some(DiscoveryMethod::Tcp), "{log}");
    assert!(
        log.contains("ICMP unavailable") && log.contains("TCP only"),
        "no clear log line: {log}"
    );

    ns.sysctl("net.ipv4.ping_group_range=0 2147483647");
    let (method, log) = scan_as_nobody();
    assert_eq!(method, Some(DiscoveryMethod::Icmp), "{log}");
    assert!(!log.contains("ICMP unavailable"), "{log}");

    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(),
        host_setting,
        "the host's own setting changed"
    );
}

/// The web listener serves the operator's certificate when the config names one (here from
/// another CA), refuses half a pair or a key that does not fit, and otherwise serves the one
/// `nester init` issued.
#[tokio::test]
async fn the_web_listener_serves_the_operators_certificate() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    nester::cli::init::init(&nester::datadir::DataDir::new(&data), &[]).unwrap();
    // "The operator's CA": another data directory, whose web certificate we borrow.
    let other = temp.path().join("operator");
    nester::cli::init::init(&nester::datadir::DataDir::new(&other), &[]).unwrap();
    let pem = |dir: &Path, file: &str| dir.join("pki").join(file);
    let ca = |dir: &Path| CertificateDer::from_pem_file(pem(dir, "ca.pem")).unwrap();
    let config = |web: &str| {
        let path = temp.path().join("nester.toml");
        write_nester_config(&path, &data, web);
        path
    };

    let own = config(&format!(
        "cert = {:?}\nkey = {:?}\n",
        pem(&other, "web.pem"),
        pem(&other, "web.key")
    ));
    let nester = Daemon::spawn("nester", &["serve", "--config", own.to_str().unwrap()]);
    let web: std::net::SocketAddr = nester
        .field("dashboard")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let get = |trusted: CertificateDer<'static>| async move {
        https(web, &trusted, None, Method::GET, "/ca.pem", &[], Vec::new()).await
    };
    assert_eq!(get(ca(&other)).await.unwrap().status, 200);
    let err = get(ca(&data)).await.unwrap_err();
    assert!(
        err.contains("tls"),
        "the nester CA's certificate was served: {err}"
    );
    drop(nester);

    for (web, why) in [
        (
            format!("cert = {:?}\n", pem(&other, "web.pem")),
            "needs both `cert` and `key`",
        ),
        (
            format!(
                "cert = {:?}\nkey = {:?}\n",
                pem(&other, "web.pem"),
                pem(&data, "web.key")
            ),
            "does not fit the certificate",
        ),
        (
            format!(
                "cert = {:?}\nkey = {:?}\n",
                "/nonexistent/web.pem",
                pem(&data, "web.key")
            ),
            "cannot read the certificate chain /nonexistent/web.pem",
        ),
    ] {
        let path = config(&web);
        let out = run("nester", &["serve", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(why), "{why}: {}", stderr(&out));
    }
}

/// One plain-HTTP request on `addr`, answered in full (the listener closes after it).
async fn plain_http(addr: &str, request_line: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{request_line}\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response.to_ascii_lowercase()
}

/// The optional plain-HTTP listener only redirects, to the configured (or derived) HTTPS
/// address and never to the request's `Host`; the path and query follow, foreign targets
/// do not.
#[tokio::test]
async fn plain_http_only_redirects_to_https() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    nester::cli::init::init(&nester::datadir::DataDir::new(&data), &[]).unwrap();
    let path = temp.path().join("nester.toml");
    write_nester_config(&path, &data, "redirect_http = \"127.0.0.1:0\"\n");
    let nester = Daemon::spawn("nester", &["serve", "--config", path.to_str().unwrap()]);
    // "redirect: http://ADDR/ (to HTTPS)" gives ADDR.
    let plain_addr = |nester: &Daemon| {
        let field = nester.field("redirect");
        let addr = field.trim_start_matches("http://").split('/').next();
        addr.unwrap().to_string()
    };
    let web = nester.field("dashboard");
    let plain = plain_addr(&nester);
    let location = |response: &str| {
        response
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_else(|| panic!("no location: {response}"))
            .trim()
            .to_string()
    };

    let response = plain_http(&plain, "GET /api/v1/probes?limit=5 HTTP/1.1").await;
    assert!(response.starts_with("http/1.1 308"), "{response}");
    assert_eq!(location(&response), format!("{web}api/v1/probes?limit=5"));
    assert!(
        response.contains("x-content-type-options: nosniff"),
        "{response}"
    );
    for foreign in [
        "GET //evil.example/x HTTP/1.1",
        "POST http://evil.example HTTP/1.1",
    ] {
        let response = plain_http(&plain, foreign).await;
        assert!(response.starts_with("http/1.1 308"), "{response}");
        assert_eq!(location(&response), web.to_ascii_lowercase(), "{foreign}");
    }
    drop(nester);

    write_nester_config(
        &path,
        &data,
        "redirect_http = \"127.0.0.1:0\"\npublic_url = \"https://nester.example.net:8443\"\n",
    );
    let nester = Daemon::spawn("nester", &["serve", "--config", path.to_str().unwrap()]);
    let response = plain_http(&plain_addr(&nester), "GET /ca.pem HTTP/1.1").await;
    assert_eq!(
        location(&response),
        "https://nester.example.net:8443/ca.pem"
    );
    drop(nester);

    write_nester_config(&path, &data, "public_url = \"http://nester.example.net\"\n");
    let out = run("nester", &["serve", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("public_url"), "{}", stderr(&out));
}
