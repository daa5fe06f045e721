//! Backup benchmark: a year of data for 100 probes reporting every 5 minutes (seeded as the
//! history benchmark does), then what a backup of it costs and what it costs ingest.
//!
//!   cargo run --release -p seahawks-tests --bin backup-bench -- [--probes 100] [--days 365]
//!
//! Against a real OpenSSH server on loopback (chroot'd `internal-sftp`, as `tests/sshd.rs`
//! sets it up; needs root and openssh-server), in the same run:
//! - alone: the snapshot by `VACUUM INTO` and by SQLite's online backup API (one step, so
//!   that writes cannot restart it: what the nester does), a whole `nester backup run`
//!   (snapshot, compress, hash, sign, push, retention, download and verify), a verify on its
//!   own, and a restore (download, verify, a data directory);
//! - ingest during each of the three against ingest just before and just after it (the
//!   same number of reports, fresh ones each time), in rounds. A phase is a fixed number of
//!   reports, not a time: an ingest phase shorter than the backup it runs beside measures its
//!   first part, the snapshot, where the database is read; the table says how far it got.
//!
//! The SFTP server stands for another machine: it runs here at nice 19, its directory in
//! memory, so that it takes what an off-site server would: no CPU and no disk bandwidth
//! from the nester (`--server-nice 0` to see it share the CPU).
//!
//! Record the figures in docs/benchmarks.md.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use anyhow::Context;
use clap::Parser;
use nester::backup::background;
use nester::config::{BackupConfig, Config};
use nester::datadir::DataDir;
use nester::db::Db;
use nester::server::{Listeners, Server};
use seahawks_tests::cpu::Rate;
use seahawks_tests::fleet::{Fleet, INTERVAL_S, IngestPath, Lane, SeedArgs, file_bytes, seed_year};
use seahawks_tests::sshd::{Sshd, USER};
use seahawks_tests::tmpfs::Tmpfs;
use std::net::SocketAddr;
use time::{Duration, OffsetDateTime};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    seed: SeedArgs,
    /// Rounds of the ingest comparison.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Reports per ingest phase: beside a snapshot, and around each op.
    #[arg(long, default_value_t = 20_000)]
    phase_reports: usize,
    /// At most this many reports beside a whole backup run (which gets enough to last it,
    /// at the rate measured before, up to this).
    #[arg(long, default_value_t = 300_000)]
    max_phase_reports: usize,
    /// "storage" (the database writer alone) or "e2e" (mTLS, verification, storage).
    #[arg(long, default_value = "storage")]
    path: String,
    /// The SFTP server's nice value.
    #[arg(long, default_value_t = 19)]
    server_nice: i32,
}

/// What runs beside an ingest phase.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    /// On a blocking thread of the runtime, at the nester's priority.
    VacuumInto,
    /// On a backup thread (nice 19), the copy not synced.
    VacuumIntoNiced,
    BackupApi,
    /// As `nester backup run` makes it: on the backup thread (nice 19), not synced.
    BackupApiNiced,
    Push,
}

const OPS: [Op; 5] = [
    Op::VacuumInto,
    Op::VacuumIntoNiced,
    Op::BackupApi,
    Op::BackupApiNiced,
    Op::Push,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::VacuumInto => "VACUUM INTO, nice 0",
            Self::VacuumIntoNiced => "VACUUM INTO, nice 19",
            Self::BackupApi => "backup API, nice 0",
            Self::BackupApiNiced => "backup API, as shipped",
            Self::Push => "nester backup run",
        }
    }
}

fn read_only(database: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// `VACUUM INTO`, the copy synced (SQLite's default) or not (as the nester makes it: the
/// copy is compressed and deleted at once).
fn vacuum_into(
    database: &std::path::Path,
    out: &std::path::Path,
    synced: bool,
) -> anyhow::Result<()> {
    let source = read_only(database)?;
    if !synced {
        source.pragma_update(None, "synchronous", "OFF")?;
    }
    source.execute("VACUUM INTO ?1", [out.to_string_lossy()])?;
    Ok(())
}

/// SQLite's online backup, in one step (in several, every write by another connection
/// would restart it); the copy synced or not (as the nester makes it).
fn backup_api(
    database: &std::path::Path,
    out: &std::path::Path,
    synced: bool,
) -> anyhow::Result<()> {
    let source = read_only(database)?;
    let mut copy = rusqlite::Connection::open(out)?;
    if !synced {
        copy.pragma_update(None, "synchronous", "OFF")?;
    }
    let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
    while backup.step(-1)? != rusqlite::backup::StepResult::Done {
        std::thread::sleep(StdDuration::from_millis(10));
    }
    Ok(())
}

/// A nester's database, data directory and backup settings.
#[derive(Clone)]
struct Nester {
    dir: DataDir,
    db: Db,
    backup: BackupConfig,
    scratch: PathBuf,
}

impl Nester {
    /// Runs `op` once; returns its duration.
    async fn run(&self, op: Op) -> anyhow::Result<StdDuration> {
        let started = Instant::now();
        let out = self.scratch.join("snapshot.db");
        let _ = std::fs::remove_file(&out);
        let database = self.dir.database();
        match op {
            Op::VacuumInto => {
                tokio::task::spawn_blocking(move || vacuum_into(&database, &out, true)).await??
            }
            Op::VacuumIntoNiced => {
                background::run(move || vacuum_into(&database, &out, false)).await?
            }
            Op::BackupApi => {
                tokio::task::spawn_blocking(move || backup_api(&database, &out, true)).await??
            }
            Op::BackupApiNiced => {
                background::run(move || backup_api(&database, &out, false)).await?
            }
            Op::Push => {
                let pushed = nester::backup::push::run(
                    &self.dir,
                    &self.backup,
                    &self.db,
                    OffsetDateTime::now_utc(),
                )
                .await?;
                match pushed.verified {
                    Some(Ok(())) => {}
                    other => anyhow::bail!("the backup did not verify: {other:?}"),
                }
            }
        }
        Ok(started.elapsed())
    }
}

/// The ingest phases: each delivers `per_probe` fresh reports from each probe, signed
/// before anything is timed, over connections opened for it (kept-alive ones would have
/// idled out while the next phase's reports were signed).
struct Phases {
    path: IngestPath,
    ingest: SocketAddr,
    db: Db,
    next: OffsetDateTime,
}

impl Phases {
    /// One phase, with `beside` started once the reports are signed and the connections
    /// open: the ingest rate, how long ingest took, and how long `beside` took.
    async fn run(
        &mut self,
        fleet: &mut Fleet,
        per_probe: usize,
        beside: Option<(&Nester, Op)>,
    ) -> anyhow::Result<(Rate, f64, Option<StdDuration>)> {
        let batches = fleet.sign(self.next, per_probe)?;
        self.next += Duration::seconds(INTERVAL_S * per_probe as i64);
        let mut lane = Lane::open(self.path, &self.db, self.ingest, fleet).await?;
        let task = beside.map(|(nester, op)| {
            let nester = nester.clone();
            tokio::spawn(async move { nester.run(op).await })
        });
        let started = Instant::now();
        let rate = lane.deliver(batches).await?;
        let ingest_s = started.elapsed().as_secs_f64();
        let took = match task {
            Some(task) => Some(task.await??),
            None => None,
        };
        Ok((rate, ingest_s, took))
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ingest_path = match args.path.as_str() {
        "storage" => IngestPath::Storage,
        "e2e" => IngestPath::EndToEnd,
        other => anyhow::bail!("--path is storage or e2e, not {other:?}"),
    };
    let temp = tempfile::tempdir()?;
    let dir = DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[])?;
    let mut config = Config::loopback(dir.root());
    config.ingest.enroll_per_minute = 100_000;
    // The bench runs retention itself, once the year is in.
    config.retention.every = StdDuration::from_secs(365 * 86_400);
    let server = Server::open(&config)?;
    let db = server.state.db.clone();
    let ca = server.state.authorities.get().issuing.cert.clone();
    let listeners = Listeners::bind(&config).await?;
    let ingest_addr = listeners.ingest_addr();
    tokio::spawn(server.run(listeners, std::future::pending()));

    let mut fleet = Fleet::enroll(&db, &ca, ingest_addr, &args.seed, temp.path()).await?;
    let per_probe = args.phase_reports.div_ceil(args.seed.probes);
    let phases = args.rounds * OPS.len() * 2 + 1;
    // The year ends this long ago, so that no phase posts a report from the future.
    let span = phases * per_probe + args.rounds * args.max_phase_reports.div_ceil(args.seed.probes);
    let now = OffsetDateTime::now_utc()
        - Duration::seconds(INTERVAL_S * span as i64)
        - Duration::hours(1);
    let seeded = seed_year(
        &db,
        &dir.database(),
        &mut fleet,
        now,
        args.seed.days,
        args.seed.report_days,
    )
    .await?;
    eprintln!("retention pass (roll-ups, report pruning)...");
    db.retain(config.retention.policy()?, now).await?;
    let database_bytes = file_bytes(&dir.database());
    eprintln!("database: {:.0} MB", mb(database_bytes));

    let key = nester::backup::key::load_or_create(&dir)?;
    let sshd = Sshd::start(&nester::backup::key::authorized_keys_line(&key)?);
    if args.server_nice != 0 {
        let status = std::process::Command::new("renice")
            .args(["-n", &args.server_nice.to_string(), "-p"])
            .arg(sshd.pid().to_string())
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "renice failed");
    }
    // The server's disk stands for another machine's: in memory, so that its writes do not
    // take this disk's bandwidth from the nester (as they would not off-site).
    let server_disk = sshd.backups();
    // Unmounted on the way out, whether the benchmark finishes or fails.
    let _server_disk = Tmpfs::mount(&server_disk, "size=8g,mode=0700")?;
    let owned = std::process::Command::new("chown")
        .arg(USER)
        .arg(&server_disk)
        .status()?;
    anyhow::ensure!(owned.success(), "chown failed");
    let scratch = temp.path().join("scratch");
    std::fs::create_dir(&scratch)?;
    let nester = Nester {
        dir: dir.clone(),
        db: db.clone(),
        backup: BackupConfig {
            keep_last: 2,
            keep_daily: 0,
            keep_weekly: 0,
            ..sshd.backup_config()
        },
        scratch: scratch.clone(),
    };

    // Alone.
    let mut alone = Vec::new();
    for op in OPS {
        eprintln!("{}, alone...", op.name());
        let took = nester.run(op).await?;
        let size = match op {
            Op::Push => None,
            _ => Some(std::fs::metadata(scratch.join("snapshot.db"))?.len()),
        };
        alone.push((op, took, size));
    }
    let remote = nester::backup::sftp::Remote::connect(&nester.backup, &key).await?;
    let newest = remote
        .list()
        .await?
        .into_iter()
        .max_by(|a, b| a.name.cmp(&b.name))
        .context("a backup on the server")?;
    eprintln!("verify, alone...");
    let started = Instant::now();
    nester::backup::push::verify(&remote, &newest.name, &dir, &db).await?;
    let verify_s = started.elapsed().as_secs_f64();
    eprintln!("restore, alone...");
    let restored = temp.path().join("restored");
    let started = Instant::now();
    nester::backup::push::restore(&remote, &newest.name, &restored).await?;
    let restore_s = started.elapsed().as_secs_f64();
    let restored_bytes = file_bytes(&DataDir::new(&restored).database());
    drop(remote);

    // Beside ingest.
    let mut phases = Phases {
        path: ingest_path,
        ingest: ingest_addr,
        db: db.clone(),
        next: now + Duration::seconds(1),
    };
    eprintln!("ingest warm-up...");
    let (mut before, _, _) = phases.run(&mut fleet, per_probe, None).await?;
    // Beside a whole run, enough reports to last it.
    let push_alone = alone
        .iter()
        .find(|a| a.0 == Op::Push)
        .map_or(0.0, |a| a.1.as_secs_f64());
    let per_probe_push = ((before.per_s * push_alone * 1.2) as usize)
        .min(args.max_phase_reports)
        .div_ceil(args.seed.probes)
        .max(per_probe);
    let mut rows: Vec<(Op, f64, f64, f64, f64)> = Vec::new();
    for round in 1..=args.rounds {
        for op in OPS {
            eprintln!("round {round}: ingest beside {}...", op.name());
            let count = if op == Op::Push {
                per_probe_push
            } else {
                per_probe
            };
            let (during, ingest_s, took) =
                phases.run(&mut fleet, count, Some((&nester, op))).await?;
            let took = took.context("the op beside")?.as_secs_f64();
            let (after, _, _) = phases.run(&mut fleet, per_probe, None).await?;
            let quiet = (before.per_s + after.per_s) / 2.0;
            eprintln!(
                "  {:.0}/s beside, {:.0}/s and {:.0}/s around: {:.2}; ingest {ingest_s:.1} s, {} {took:.1} s",
                during.per_s,
                before.per_s,
                after.per_s,
                during.per_s / quiet,
                op.name(),
            );
            rows.push((op, during.per_s, quiet, ingest_s, took));
            before = after;
        }
    }

    println!();
    println!(
        "backup benchmark: {} probes, {} hosts each, every {INTERVAL_S} s; {} days of WAN, {} of reports ({} reports seeded at {:.0}/s)",
        args.seed.probes,
        args.seed.hosts,
        args.seed.days,
        args.seed.report_days,
        seeded.reports,
        seeded.report_rate
    );
    println!("database: {:.0} MB", mb(database_bytes));
    for (op, took, size) in &alone {
        match size {
            Some(size) => println!(
                "{:<24} alone: {:>6.1} s, {:.0} MB",
                op.name(),
                took.as_secs_f64(),
                mb(*size)
            ),
            None => println!("{:<24} alone: {:>6.1} s", op.name(), took.as_secs_f64()),
        }
    }
    println!(
        "verify (download, check)  alone: {verify_s:>6.1} s; restore (download, verify, data dir) {restore_s:.1} s, {:.0} MB restored (target < 300 s for 1 GB)",
        mb(restored_bytes)
    );
    println!(
        "ingest, {} ({} reports per phase, {} rounds; target >= 0.9):",
        ingest_path.name(),
        per_probe * args.seed.probes,
        args.rounds
    );
    println!(
        "  {:<24} {:>9} {:>9} {:>6} {:>9} {:>9}",
        "beside", "rate/s", "around/s", "ratio", "ingest s", "op s"
    );
    for op in OPS {
        let mut ratios: Vec<f64> = Vec::new();
        for (o, during, quiet, ingest_s, took) in rows.iter().filter(|r| r.0 == op) {
            println!(
                "  {:<24} {during:>9.0} {quiet:>9.0} {:>6.2} {ingest_s:>9.1} {took:>9.1}",
                o.name(),
                during / quiet
            );
            ratios.push(during / quiet);
        }
        println!(
            "  {:<24} median ratio {:.2}",
            op.name(),
            seahawks_tests::cpu::median(ratios.into_iter())
        );
    }
    drop(sshd);
    Ok(())
}
