//! `harvester scan`: its table and JSON, progress on a terminal, a tight file limit, discovery by
//! ICMP or TCP, privileged or not.

use seahawks_tests::netns::Netns;

use crate::harness::closed_port;
use crate::process::{run, stderr};

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
