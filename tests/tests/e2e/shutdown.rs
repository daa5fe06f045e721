//! Stopping cleanly: `harvester run` ends within 2 s of SIGTERM even in the middle of a long
//! scan (systemd gives 30 s, then kills), and leaves nothing half made in its spool.

use std::time::{Duration, Instant};

use crate::harness::TestNester;
use crate::process::Daemon;

/// Every file in the spool directory, temporary ones included.
fn spool_files(state_dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(state_dir.join("spool")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "rejected")
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_full_port_scan_stops_the_harvester_within_two_seconds() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("harvester.toml");
    // 65,535 ports at 2,000 a second: a scan of over 30 s.
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\ninterval = \"1h\"\n[scan]\nscope = [\"127.0.0.0/8\"]\n\
             targets = [\"127.0.0.1\"]\nports = \"1-65535\"\nrate = 2000\nmax_timeout_ms = 200\n\
             discovery = false\nreverse_dns = false\n",
            probe.state_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let harvester = Daemon::spawn("harvester", &["run", "--config", config.to_str().unwrap()]);
    // Well into the scan: it has fetched its trust and renewed nothing, and scans now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        spool_files(&probe.state_dir).is_empty(),
        "the scan finished too soon for this test to mean anything"
    );
    let started = Instant::now();
    harvester.stop("-TERM");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    assert_eq!(
        spool_files(&probe.state_dir),
        Vec::<String>::new(),
        "spooled half a scan"
    );
    let stored: i64 = nester
        .sqlite()
        .query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}
