//! kill -9 of the real harvester while it uploads, and of the real nester while it ingests:
//! afterwards no acknowledged report is missing, none is stored twice, the database is whole.

use std::path::Path;
use std::time::Duration;

use harvester::backoff::random_unit;

use crate::harness::{TestNester, closed_port, harvester_toml, write_harvester_config};
use crate::process::{Daemon, run, stderr};

/// Every sequence from 1 to the harvester's last, once, and the database whole.
fn assert_complete(db: &Path, state: &Path) {
    let last: i64 = std::fs::read_to_string(state.join("sequence"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let db = rusqlite::Connection::open(db).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = db
        .prepare("SELECT sequence FROM reports ORDER BY sequence")
        .unwrap();
    let got: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(last > 5, "too few reports to mean anything: {last}");
    assert_eq!(
        got,
        (1..=last).collect::<Vec<_>>(),
        "missing or duplicated reports"
    );
    let gaps: i64 = db
        .query_row("SELECT count(*) FROM sequence_gaps", [], |r| r.get(0))
        .unwrap();
    assert_eq!(gaps, 0);
}

fn pause(min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(min_ms + ((max_ms - min_ms) as f64 * random_unit()) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_harvester_mid_upload_loses_and_duplicates_nothing() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (_temp, config) = harvester_toml(&probe, "100ms");

    for _ in 0..20 {
        let harvester = Daemon::spawn("harvester", &["run", "--config", config.to_str().unwrap()]);
        tokio::time::sleep(pause(150, 450)).await;
        harvester.kill9();
    }
    // Restart once more and let it finish what is spooled.
    let mut agent = harvester::Agent::new(harvester::Config::load(&config).unwrap()).unwrap();
    agent.drain().await.unwrap();
    assert_eq!(agent.spool().usage().unwrap().reports, 0);
    assert_complete(&nester.dir.database(), &probe.state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_nester_mid_ingest_loses_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("nester");
    assert!(
        run("nester", &["init", "--data-dir", data.to_str().unwrap()])
            .status
            .success()
    );
    // Fixed ports, so the harvester finds the nester again after each restart.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (ingest, web) = (free(), free());
    let config = temp.path().join("nester.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[ingest]\nlisten = {ingest:?}\n[web]\nlisten = {web:?}\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let serve = || {
        let nester = Daemon::spawn("nester", &["serve", "--config", config.to_str().unwrap()]);
        nester.field("ingest");
        nester
    };
    let mut nester = serve();

    let out = run(
        "nester",
        &[
            "token",
            "create",
            "--config",
            config.to_str().unwrap(),
            "--site",
            "crash",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let state = temp.path().join("harvester");
    harvester::enroll::enroll(&String::from_utf8(out.stdout).unwrap(), &state)
        .await
        .unwrap();
    let harvester_toml = temp.path().join("harvester.toml");
    write_harvester_config(&harvester_toml, &state, "100ms", &closed_port().to_string());
    let harvester = Daemon::spawn(
        "harvester",
        &["run", "--config", harvester_toml.to_str().unwrap()],
    );

    for _ in 0..6 {
        tokio::time::sleep(pause(300, 700)).await;
        nester.kill9();
        tokio::time::sleep(pause(50, 200)).await;
        nester = serve();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    harvester.stop("-INT");
    // Whatever the harvester still holds goes out now, to the restarted nester.
    let mut agent =
        harvester::Agent::new(harvester::Config::load(&harvester_toml).unwrap()).unwrap();
    agent.drain().await.unwrap();
    nester.stop("-TERM");
    assert_complete(&data.join("nester.db"), &state);
}
