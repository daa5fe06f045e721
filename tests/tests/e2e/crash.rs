//! kill -9 of the real harvester while it uploads, and of the real nester while it ingests:
//! afterwards no acknowledged report is missing, none is stored twice, the database is whole.
//!
//! The kills land where they matter, not at random moments (after a failed delivery the
//! harvester backs off, so random kills mostly hit an idle server): a relay between the two
//! reads the TLS record layer and stops each round at a chosen point of a report's way in
//! (half its request sent, the whole request in, the answer out), and only then is the
//! process killed. Each test counts the kills that landed at each point and asserts them.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::harness::{TestNester, closed_port, harvester_toml, write_harvester_config};
use crate::process::{Daemon, NesterFiles};

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

/// Where a kill of the harvester lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Forward everything (the final drain).
    Pass,
    /// Half-way through a report's request: the nester has its headers, not its body.
    MidBody,
    /// The whole request is with the nester, its answer not out yet (it is verifying or
    /// committing the report); any answer is held back.
    Received,
    /// The nester answered (it answers once the report is committed, or found stored
    /// before); the answer is held back, and the harvester never sees it.
    AckHeld,
}

/// A TCP relay between the harvester and the nester that stops a report where the test
/// wants it. It reads the TLS record layer, which is not encrypted: after a client's first
/// application-data record (the end of its handshake), a record of 512 bytes or more is a
/// report's request.
struct Relay {
    addr: std::net::SocketAddr,
    phase: Arc<Mutex<Phase>>,
    hits: mpsc::UnboundedReceiver<Phase>,
}

impl Relay {
    async fn start(nester: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let phase = Arc::new(Mutex::new(Phase::Pass));
        let (hit, hits) = mpsc::unbounded_channel();
        let shared = phase.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(nester).await else {
                    continue;
                };
                let phase = *shared.lock().unwrap();
                tokio::spawn(relay(client, server, phase, hit.clone()));
            }
        });
        Self { addr, phase, hits }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap() = phase;
    }
}

/// One connection through the relay, in `phase`.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    phase: Phase,
    hit: mpsc::UnboundedSender<Phase>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let requested = Arc::new(tokio::sync::Notify::new());
    let sent = requested.clone();
    let answered = hit.clone();
    let upstream = async move {
        let (mut pending, mut chunk, mut app_records) = (Vec::new(), vec![0u8; 1 << 16], 0);
        loop {
            let n = match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&chunk[..n]);
            while pending.len() >= 5 {
                let len = 5 + usize::from(u16::from_be_bytes([pending[3], pending[4]]));
                if pending.len() < len {
                    break;
                }
                let record: Vec<u8> = pending.drain(..len).collect();
                app_records += usize::from(record[0] == 0x17);
                let request = record[0] == 0x17 && app_records >= 2 && len >= 512;
                if request && phase == Phase::MidBody {
                    let _ = to_server.write_all(&record[..len / 2]).await;
                    let _ = hit.send(Phase::MidBody);
                    return std::future::pending().await;
                }
                if to_server.write_all(&record).await.is_err() {
                    return;
                }
                if request {
                    sent.notify_one();
                    if phase == Phase::Received {
                        let _ = hit.send(Phase::Received);
                    }
                }
            }
        }
    };
    let downstream = async move {
        let mut chunk = vec![0u8; 1 << 16];
        let mut asked = false;
        loop {
            tokio::select! {
                () = requested.notified(), if !asked => asked = true,
                read = from_server.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    // The answer to a report: held back, for ever.
                    Ok(_) if asked && phase != Phase::Pass => {
                        if phase == Phase::AckHeld {
                            let _ = answered.send(Phase::AckHeld);
                        }
                        return std::future::pending().await;
                    }
                    Ok(n) => {
                        if to_client.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                },
            }
        }
    };
    tokio::join!(upstream, downstream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_harvester_mid_upload_loses_and_duplicates_nothing() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (_temp, config) = harvester_toml(&probe, "100ms");
    let mut relay = Relay::start(nester.ingest).await;
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}[nester]\ningest = \"{}\"\n", relay.addr),
    )
    .unwrap();

    // 24 kills, alternating where they land; each waits for the relay to say it got there.
    let (mut mid_body, mut ack_held) = (0, 0);
    for round in 0..24 {
        let phase = if round % 2 == 0 {
            Phase::MidBody
        } else {
            Phase::AckHeld
        };
        relay.set(phase);
        let harvester = Daemon::spawn("harvester", &["run", "--config", config.to_str().unwrap()]);
        let landed = tokio::time::timeout(Duration::from_secs(10), relay.hits.recv()).await;
        harvester.kill9();
        match landed {
            Ok(Some(Phase::MidBody)) => mid_body += 1,
            Ok(Some(Phase::AckHeld)) => ack_held += 1,
            other => panic!("round {round}: the relay never reached {phase:?}: {other:?}"),
        }
    }
    assert_eq!((mid_body, ack_held), (12, 12));
    // Restart once more and let it finish what is spooled.
    relay.set(Phase::Pass);
    let mut agent = harvester::Agent::new(harvester::Config::load(&config).unwrap()).unwrap();
    agent.drain().await.unwrap();
    assert_eq!(agent.spool().usage().unwrap().reports, 0);
    assert_complete(&nester.dir.database(), &probe.state_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_nester_mid_ingest_loses_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let serve = || {
        let nester = Daemon::spawn("nester", &["serve", "--config", files.config_arg()]);
        nester.field("ingest");
        nester
    };
    let mut nester = serve();
    let state = temp.path().join("harvester");
    files.enroll(&state).await;
    let harvester_toml = temp.path().join("harvester.toml");
    write_harvester_config(&harvester_toml, &state, "100ms", &closed_port().to_string());
    let mut relay = Relay::start(files.ingest).await;
    let text = std::fs::read_to_string(&harvester_toml).unwrap();
    let text = format!("{text}[nester]\ningest = \"{}\"\n", relay.addr);
    std::fs::write(&harvester_toml, text).unwrap();

    // 24 kills of the nester, a third at each moment of a report's way in; each waits for the
    // relay to say it got there. A harvester runs for each round (a fresh one: one that had
    // failed many times would be backing off).
    let phases = [Phase::MidBody, Phase::Received, Phase::AckHeld];
    let mut landed = [0; 3];
    for round in 0..24 {
        let phase = phases[round % 3];
        relay.set(phase);
        let harvester = Daemon::spawn(
            "harvester",
            &["run", "--config", harvester_toml.to_str().unwrap()],
        );
        let hit = tokio::time::timeout(Duration::from_secs(10), relay.hits.recv()).await;
        nester.kill9();
        harvester.kill9();
        assert_eq!(
            hit.ok().flatten(),
            Some(phase),
            "round {round}: the relay never reached {phase:?}"
        );
        landed[round % 3] += 1;
        nester = serve();
    }
    assert_eq!(landed, [8, 8, 8]);
    // Whatever the harvester still holds goes out now, to the restarted nester.
    relay.set(Phase::Pass);
    let mut agent =
        harvester::Agent::new(harvester::Config::load(&harvester_toml).unwrap()).unwrap();
    agent.drain().await.unwrap();
    nester.stop("-TERM");
    assert_complete(&files.data.join("nester.db"), &state);
}
