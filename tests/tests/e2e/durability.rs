//! Durability a test can see. A SIGKILL leaves the page cache alone, so the crash tests pass
//! whether or not a file was synced: they cannot tell a report on stable storage from one
//! that a power cut would lose. The order of the real harvester's system calls, read with
//! `strace -f`, can: each report is written, synced, renamed into the spool and the spool
//! directory synced, before a byte of its delivery goes out.
//!
//! `strace` rather than a file system that drops unsynced writes (LazyFS and the like): it is
//! a Debian package that runs here without FUSE, it watches the unmodified binary, and a
//! missing or misplaced `fsync` shows as an assertion naming the call. The nester's side is
//! the same: no answer leaves for a harvester while its report's WAL frames are unsynced.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{TestNester, closed_port, harvester_toml, write_harvester_config};
use crate::process::{Daemon, NesterFiles, binary};

/// One system call as strace printed it: its name, the files its descriptors or paths name,
/// and whether it writes to a TCP socket.
#[derive(Debug)]
struct Call {
    name: String,
    line: String,
}

impl Call {
    fn parse(line: &str) -> Option<Self> {
        // `1234 fsync(5</tmp/x/spool/00000000000000000001.tmp>) = 0`
        let rest = line.split_once(' ')?.1.trim_start();
        let name = rest.split_once('(')?.0;
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            .then(|| Self {
                name: name.to_string(),
                line: rest.to_string(),
            })
    }

    fn is(&self, names: &[&str]) -> bool {
        names.contains(&self.name.as_str())
    }

    /// A sync of the file or directory at `path` (its descriptor printed as `N<path>`).
    fn syncs(&self, path: &Path) -> bool {
        self.is(&["fsync", "fdatasync"]) && self.line.contains(&format!("<{}>", path.display()))
    }

    fn writes_to(&self, path: &Path) -> bool {
        self.is(&["write", "pwrite64", "writev"])
            && self.line.contains(&format!("<{}>", path.display()))
    }

    fn sends(&self) -> bool {
        self.is(&["write", "writev", "sendto", "sendmsg"]) && self.line.contains("<TCP")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harvester_syncs_each_report_into_its_spool_before_sending_it() {
    let nester = TestNester::start().await;
    let probe = nester.probe().await;
    let (temp, config) = harvester_toml(&probe, "100ms");
    let trace = temp.path().join("trace");
    let harvester = binary("harvester");
    let args: Vec<PathBuf> = [
        "-f",
        "-qq",
        "-yy",
        "-e",
        "trace=write,pwrite64,writev,sendto,sendmsg,fsync,fdatasync,rename,renameat,renameat2",
        "-o",
    ]
    .iter()
    .map(PathBuf::from)
    .chain([trace.clone(), "--".into(), "timeout".into()])
    .chain(["-s", "KILL", "3"].iter().map(PathBuf::from))
    .chain([harvester, "run".into(), "--config".into(), config])
    .collect();
    let status = tokio::task::spawn_blocking(move || {
        Command::new("strace")
            .args(&args)
            .env("RUST_LOG", "warn")
            .status()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run strace ({e}): tests/run installs it"));
    // `timeout` ends the harvester with SIGKILL: not a success, and not strace failing.
    assert_ne!(status.code(), Some(1), "strace failed");

    let text = std::fs::read_to_string(&trace).unwrap();
    let calls: Vec<Call> = text.lines().filter_map(Call::parse).collect();
    let spool = probe.state_dir.join("spool");
    let mut checked = 0;
    for (at, call) in calls.iter().enumerate() {
        // `rename("…/spool/N.tmp", "…/spool/N.jws")`: a report entering the spool.
        let quoted: Vec<&str> = call.line.split('"').skip(1).step_by(2).collect();
        if !call.is(&["rename", "renameat", "renameat2"]) || quoted.len() != 2 {
            continue;
        }
        let (from, to) = (Path::new(quoted[0]), Path::new(quoted[1]));
        if to.parent() != Some(&spool) || to.extension().is_none_or(|e| e != "jws") {
            continue;
        }
        let before = &calls[..at];
        let last_write = before
            .iter()
            .rposition(|c| c.writes_to(from))
            .unwrap_or_else(|| panic!("{} was renamed, never written", from.display()));
        assert!(
            before[last_write..].iter().any(|c| c.syncs(from)),
            "{} renamed into the spool without an fsync after its last write",
            from.display()
        );
        let after = &calls[at + 1..];
        let synced = after
            .iter()
            .position(|c| c.syncs(&spool))
            .unwrap_or_else(|| panic!("the spool directory never synced after {}", to.display()));
        if let Some(sent) = after[..synced].iter().find(|c| c.sends()) {
            panic!(
                "{} went to the network before the spool directory was synced: {}",
                to.display(),
                sent.line
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} reports spooled in 3 s: nothing to judge\n{}",
        text.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(calls.iter().any(Call::sends), "no report was sent at all");
    assert!(nester.count("reports") >= 1);
}

/// The nester answers a report only once the WAL holding it is synced: under `strace -f`,
/// no byte goes to an ingest connection while a write to the WAL is not yet followed by an
/// `fdatasync` of it. One harvester reports every 100 ms over one kept-alive connection, so
/// nothing else talks on those connections while a commit is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nester_syncs_each_report_before_it_answers() {
    let temp = tempfile::tempdir().unwrap();
    let files = NesterFiles::new(temp.path());
    let state = temp.path().join("harvester");
    let trace = temp.path().join("trace");
    let config = files.config.clone();
    let traced = {
        let trace = trace.clone();
        std::thread::spawn(move || {
            Command::new("strace")
                .args(["-f", "-qq", "-yy", "-o"])
                .arg(&trace)
                .args([
                    "-e",
                    "trace=pwrite64,write,writev,sendto,sendmsg,fsync,fdatasync",
                ])
                .args(["--", "timeout", "-s", "INT", "6"])
                .arg(binary("nester"))
                .args(["serve", "--config"])
                .arg(&config)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap_or_else(|e| panic!("cannot run strace ({e}): tests/run installs it"))
        })
    };
    // Listening, and past its start (the first retention pass commits too).
    crate::harness::within(
        Duration::from_secs(10),
        "the nester did not start",
        || async {
            tokio::net::TcpStream::connect(files.ingest)
                .await
                .is_ok()
                .then_some(())
        },
    )
    .await;
    files.enroll(&state).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let toml = temp.path().join("harvester.toml");
    write_harvester_config(&toml, &state, "100ms", &closed_port().to_string());
    let harvester = Daemon::spawn("harvester", &["run", "--config", toml.to_str().unwrap()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    harvester.kill9();
    let out = tokio::task::spawn_blocking(move || traced.join().unwrap())
        .await
        .unwrap();
    assert!(out.status.code().is_some(), "strace ended by a signal");

    let text = std::fs::read_to_string(&trace).unwrap();
    let wal = format!("{}-wal>", files.data.join("nester.db").display());
    let ingest = format!("TCP:[{}->", files.ingest);
    // Whether the WAL has writes no finished sync covers; which threads are inside a sync.
    let (mut dirty, mut syncing, mut answers) = (false, Vec::new(), 0);
    for line in text.lines() {
        let Some((pid, call)) = line.split_once(' ') else {
            continue;
        };
        let call = call.trim_start();
        if call.starts_with("pwrite64(") && call.contains(&wal) {
            dirty = true;
        } else if (call.starts_with("fdatasync(") || call.starts_with("fsync("))
            && call.contains(&wal)
        {
            if call.contains("<unfinished ...>") {
                syncing.push(pid.to_string());
            } else {
                dirty = false;
            }
        } else if call.starts_with("<... fdatasync resumed>")
            || call.starts_with("<... fsync resumed>")
        {
            if let Some(at) = syncing.iter().position(|p| p == pid) {
                syncing.remove(at);
                dirty = false;
            }
        } else if call.contains(&ingest)
            && ["write(", "writev(", "sendto(", "sendmsg("]
                .iter()
                .any(|s| call.starts_with(s))
        {
            assert!(
                !dirty,
                "the nester wrote to a harvester while the WAL had unsynced writes: {line}"
            );
            answers += 1;
        }
    }
    let stored = rusqlite::Connection::open(files.data.join("nester.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM reports", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert!(
        stored >= 5,
        "only {stored} reports stored: nothing to judge"
    );
    assert!(
        answers >= stored,
        "{answers} writes to harvesters for {stored} reports"
    );
}
