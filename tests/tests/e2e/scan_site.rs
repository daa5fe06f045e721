//! The scanner against a small site built from network namespaces: a scanner and hosts on
//! one bridge, with real services, closed ports, ports nftables drops, a host that ignores
//! ICMP, a host that drops everything, and an address nobody answers. Every answer is
//! checked, then compared with nmap's view of the same site.

use std::collections::BTreeMap;
use std::net::IpAddr;

use seahawks_tests::netns::{HostSpec, Site};
use seahawks_tests::nmap;
use shared::report::{DiscoveryMethod, Host, HostState, OsFamily, PortState, Report};

use crate::process::{binary, stderr};

const PORTS: &str = "22,25,80,443,8080,8081,9999";
const SSH: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3";
const SMTP: &str = "220 bravo.site.test ESMTP Postfix";

fn site() -> Site {
    let rules = |body: &str| {
        Some(format!(
            "table inet filter {{\n chain input {{\n type filter hook input priority 0;\n {body}\n }}\n}}\n"
        ))
    };
    let specs = [
        HostSpec {
            octet: 11,
            name: Some("alpha.site.test".into()),
            services: vec![
                format!("22=greet:{SSH}"),
                "80=http:Apache/2.4.57 (Debian)".into(),
            ],
            // 8080 silently dropped; 8081 refused with an ICMP "host prohibited", which nmap
            // also reports as filtered (and which does not make the host unreachable).
            nft: rules(
                "policy accept; tcp dport 8080 drop; tcp dport 8081 reject with icmp type host-prohibited;",
            ),
        },
        HostSpec {
            octet: 12,
            name: Some("bravo.site.test".into()),
            services: vec![format!("25=greet:{SMTP}"), "443=silent".into()],
            nft: rules("policy accept; icmp type echo-request drop;"),
        },
        HostSpec {
            octet: 13,
            name: Some("charlie.site.test".into()),
            services: vec!["22=silent".into()],
            nft: rules("policy drop;"),
        },
    ];
    Site::new("10.77.0", &specs, (&binary("fake-services"), &[]))
}

fn targets(site: &Site) -> Vec<String> {
    [11, 12, 13, 14]
        .map(|octet| site.address(octet).to_string())
        .to_vec()
}

fn harvester_scan(site: &Site, args: &[&str]) -> Report {
    let mut all = vec!["scan", "--json", "--timeout", "500ms"];
    all.extend_from_slice(args);
    let out = site.scanner().exec(&binary("harvester"), &all);
    assert!(out.status.success(), "{}", stderr(&out));
    Report::from_json(&out.stdout).unwrap()
}

/// Per address: `None` when down, else each port's state (nmap's shape).
fn states(report: &Report) -> BTreeMap<IpAddr, Option<BTreeMap<u16, PortState>>> {
    report
        .hosts
        .iter()
        .map(|h| {
            let ports = (h.state == HostState::Up)
                .then(|| h.ports.iter().map(|p| (p.port, p.state)).collect());
            (h.address, ports)
        })
        .collect()
}

fn ports_in(host: &Host, state: PortState) -> Vec<u16> {
    host.ports
        .iter()
        .filter(|p| p.state == state)
        .map(|p| p.port)
        .collect()
}

fn banner(host: &Host, port: u16) -> Option<&str> {
    host.ports
        .iter()
        .find(|p| p.port == port)?
        .banner
        .as_deref()
}

#[test]
fn every_host_port_banner_and_name_of_a_site_and_nmap_agrees() {
    let site = site();
    let mut args: Vec<&str> = vec!["--ports", PORTS];
    let targets = targets(&site);
    args.extend(targets.iter().map(String::as_str));
    let report = harvester_scan(&site, &args);
    let host = |octet| {
        let ip = IpAddr::V4(site.address(octet));
        report.hosts.iter().find(|h| h.address == ip).unwrap()
    };

    let alpha = host(11);
    assert_eq!(alpha.state, HostState::Up);
    assert_eq!(alpha.hostname.as_deref(), Some("alpha.site.test"));
    assert_eq!(
        alpha.discovery.as_ref().map(|d| d.method),
        Some(DiscoveryMethod::Icmp)
    );
    assert_eq!(ports_in(alpha, PortState::Open), [22, 80]);
    assert_eq!(ports_in(alpha, PortState::Closed), [25, 443, 9999]);
    assert_eq!(ports_in(alpha, PortState::Filtered), [8080, 8081]);
    assert_eq!(banner(alpha, 22), Some(SSH));
    let http = banner(alpha, 80).unwrap_or_default();
    assert!(
        http.starts_with("HTTP/1.0 200") && http.contains("Server: Apache/2.4.57 (Debian)"),
        "{http}"
    );
    // TTL 64 and a Debian banner: Linux, with both pieces of evidence named.
    assert_eq!(alpha.os.family, OsFamily::Linux, "{:?}", alpha.os);
    assert_eq!(alpha.os.evidence.len(), 3, "{:?}", alpha.os);
    assert!(alpha.os.evidence[0].contains("TTL 64"), "{:?}", alpha.os);

    let bravo = host(12);
    assert_eq!(bravo.hostname.as_deref(), Some("bravo.site.test"));
    assert_eq!(
        bravo.discovery.as_ref().map(|d| d.method),
        Some(DiscoveryMethod::Tcp),
        "ICMP is dropped: found by TCP"
    );
    assert_eq!(ports_in(bravo, PortState::Open), [25, 443]);
    assert_eq!(
        ports_in(bravo, PortState::Closed),
        [22, 80, 8080, 8081, 9999]
    );
    assert_eq!(banner(bravo, 25), Some(SMTP));
    assert_eq!(banner(bravo, 443), None, "a silent service has no banner");
    assert_eq!(
        bravo.os.family,
        OsFamily::Unknown,
        "no evidence: {:?}",
        bravo.os
    );
    assert!(bravo.os.evidence.is_empty());

    let charlie = host(13);
    assert_eq!(
        (charlie.state, charlie.discovery.as_ref().map(|d| d.method)),
        (HostState::Up, Some(DiscoveryMethod::Arp)),
        "drops everything but answers ARP"
    );
    assert_eq!(charlie.ports.len(), 7);
    assert_eq!(ports_in(charlie, PortState::Filtered).len(), 7);
    assert_eq!(charlie.hostname.as_deref(), Some("charlie.site.test"));

    let nobody = host(14);
    assert_eq!(
        (nobody.state, nobody.ports.len(), nobody.hostname.as_deref()),
        (HostState::Down, 0, None)
    );
    assert_eq!(report.hosts_up, 3);

    // nmap's connect scan of the same site, from the same namespace: the same hosts up and
    // the same state for every port.
    let mut command = site.scanner().command("nmap");
    command
        .args(["-sT", "-n", "-T4", "-p", PORTS])
        .args(&targets);
    let reference = nmap::run(command);
    assert_eq!(states(&report), reference.hosts);
}

#[test]
fn top_ports_are_nmaps_and_loopback_states_agree() {
    let site = site();
    let report = harvester_scan(&site, &["--ports", "top1000", "-n", "127.0.0.1"]);
    let mut command = site.scanner().command("nmap");
    command.args(["-sT", "-n", "-Pn", "--top-ports", "1000", "127.0.0.1"]);
    let reference = nmap::run(command);
    let mut ours: Vec<u16> = report.hosts[0].ports.iter().map(|p| p.port).collect();
    let mut theirs = reference.scanned.clone();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours.len(), 1000);
    assert_eq!(ours, theirs, "top1000 is not the list nmap scans");
    assert_eq!(states(&report), reference.hosts);
}
