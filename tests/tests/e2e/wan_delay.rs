//! WAN latency rounds across a link with a known added delay, by ICMP and, once the far end
//! drops echo requests, by TCP connect.

use seahawks_tests::netns::{DelayedLink, spawn_ready};

use crate::process::{binary, stderr};

const DELAY_MS: u32 = 20;

fn wan(link: &DelayedLink) -> serde_json::Value {
    let out = link.near.exec(
        &binary("harvester"),
        &[
            "wan",
            DelayedLink::FAR,
            "--probes",
            "10",
            "--timeout-ms",
            "1000",
            "--tcp-port",
            "9",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let measured: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    measured[0].clone()
}

/// A round trip crosses the relay twice: 40 ms, plus a little for the relay itself. A little
/// less is possible on a busy machine: surge-ping starts its clock after the send returns, so
/// time the sender waited for a CPU is not counted. The relay is a Python process: on a
/// machine busy with the rest of the suite it can add tens of milliseconds, so the upper
/// bound only rules out the delay counted twice (80 ms) or a timeout, not a slow relay.
fn assert_round_trip(m: &serde_json::Value) {
    let expected = f64::from(2 * DELAY_MS);
    let median = m["median_ms"].as_f64().unwrap();
    assert!(
        (expected - 5.0..expected * 1.75).contains(&median),
        "median {median} ms, expected about {expected} ms: {m}"
    );
    assert!(m["min_ms"].as_f64().unwrap() >= expected - 10.0, "{m}");
    assert_eq!(m["loss_pct"].as_f64(), Some(0.0), "{m}");
}

#[test]
fn wan_rounds_measure_an_added_delay_by_icmp_then_by_tcp() {
    let link = DelayedLink::new(DELAY_MS);

    let m = wan(&link);
    assert_eq!(
        (m["method"].as_str(), m["received"].as_u64()),
        (Some("icmp"), Some(10)),
        "{m}"
    );
    assert_round_trip(&m);

    // The far end stops answering echo requests: TCP connect takes over (port 9 is closed,
    // and its reset answers as well as a handshake would).
    link.far.sysctl("net.ipv4.icmp_echo_ignore_all=1");
    let m = wan(&link);
    assert_eq!(
        (m["method"].as_str(), m["received"].as_u64()),
        (Some("tcp"), Some(10)),
        "{m}"
    );
    assert!(
        m["note"].as_str().unwrap().contains("ICMP unanswered"),
        "{m}"
    );
    assert_round_trip(&m);
}

/// A host 150 ms away scanned together with 30 loopback addresses, which answer in
/// microseconds: the scan's timeout shrinks to the floor (100 ms), yet the far host is found
/// and its ports read right, because each host's timeout follows its own round trips.
#[test]
fn a_slow_host_among_fast_ones_keeps_its_own_timeouts() {
    let link = DelayedLink::new(75);
    link.far.nft(
        "table inet filter {\n chain input {\n type filter hook input priority 0;\n tcp dport 23 drop;\n }\n}\n",
    );
    let mut services = spawn_ready(
        link.far
            .command(binary("fake-services"))
            .arg("22=greet:SSH-2.0-OpenSSH_9.6 FreeBSD-20240104"),
        "fake-services",
    );
    let out = link.near.exec(
        &binary("harvester"),
        &[
            "scan",
            "--json",
            "-n",
            "--ports",
            "22-24,30-60",
            "127.0.0.0/27",
            DelayedLink::FAR,
        ],
    );
    let _ = services.kill();
    let _ = services.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = shared::Report::from_json(&out.stdout).unwrap();
    let far = report
        .hosts
        .iter()
        .find(|h| h.address.to_string() == DelayedLink::FAR)
        .unwrap();
    let discovery = far.discovery.as_ref().expect("the far host is up");
    assert!(discovery.rtt_ms.unwrap() >= 140.0, "{discovery:?}");
    let states: Vec<_> = far.ports.iter().map(|p| (p.port, p.state)).collect();
    use shared::report::PortState::{Closed, Filtered, Open};
    assert_eq!(states[..3], [(22, Open), (23, Filtered), (24, Closed)]);
    assert!(states[3..].iter().all(|s| s.1 == Closed), "{states:?}");
    assert!(far.ports[0].banner.as_deref().unwrap().contains("FreeBSD"));
    assert_eq!(far.os.family, shared::report::OsFamily::Bsd, "{:?}", far.os);
    let local: Vec<_> = report
        .hosts
        .iter()
        .filter(|h| h.address.is_loopback())
        .collect();
    assert_eq!(local.len(), 30);
    assert!(
        local
            .iter()
            .flat_map(|h| &h.ports)
            .all(|p| p.state == Closed),
        "{local:?}"
    );
}
