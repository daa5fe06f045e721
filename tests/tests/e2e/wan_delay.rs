//! WAN latency rounds across a link with a known added delay, by ICMP and, once the far end
//! drops echo requests, by TCP connect.

use seahawks_tests::netns::DelayedLink;

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

/// A round trip crosses the relay twice: 40 ms, plus a little for the relay itself.
fn assert_round_trip(m: &serde_json::Value) {
    let expected = f64::from(2 * DELAY_MS);
    let median = m["median_ms"].as_f64().unwrap();
    assert!(
        (expected..expected + 15.0).contains(&median),
        "median {median} ms, expected about {expected} ms: {m}"
    );
    assert!(m["min_ms"].as_f64().unwrap() >= expected, "{m}");
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
