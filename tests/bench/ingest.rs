//! Ingest benchmark: K enrolled probes post signed ~20 KB reports (50 hosts) over mTLS to a
//! real nester (SQLite, `synchronous=FULL`, group commit), and the same requests to a bare
//! rustls mTLS server that only reads and discards them, in the same run.
//!
//!   cargo run --release -p seahawks-tests --bin ingest-bench -- [--probes 16] [--reports 40000] [--rounds 5]
//!
//! (a) a new TLS connection per report, (b) kept-alive connections. Prints rates and ratios;
//! record them in docs/benchmarks.md.
//!
//! A second nester, a copy of the first made after enrollment, runs with the access log off
//! (`[log] access = "off"`): the same requests to it give the access log's cost per report.
//! What detection adds on the request path for a stored report is timed apart (it is on in
//! both).

use seahawks_tests::cpu::{self, Rate};
use seahawks_tests::peer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use nester::config::Config;
use nester::datadir::DataDir;
use nester::server::{Listeners, Server};
use shared::report::{
    Host, HostState, OsFamily, OsGuess, Port, PortState, Protocol, Report, SCHEMA_VERSION,
    ScanParameters,
};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Simulated probes (concurrent clients).
    #[arg(long, default_value_t = 16)]
    probes: usize,
    /// Reports per kept-alive run, all rounds together.
    #[arg(long, default_value_t = 40_000)]
    reports: usize,
    /// Reports per new-connection run, all rounds together.
    #[arg(long, default_value_t = 10_000)]
    new_connection_reports: usize,
    /// Rounds each run is split into, alternating which server goes first; the medians
    /// are printed.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// One round: the nester's run, the same without its access log, and the bare server's,
/// back to back.
struct Round {
    real: Rate,
    unlogged: Rate,
    bare: Rate,
    /// CPU time of the nester's database writer per report: the one serial stage.
    writer_us: f64,
}

/// The median of each figure over the rounds (each taken on its own).
struct Medians {
    ratio: f64,
    real: Rate,
    bare: Rate,
    writer_us: f64,
    /// CPU per report with the access log over without it, less one.
    log_cost: f64,
    unlogged_cpu_us: f64,
}

impl Round {
    fn medians(rounds: &[Round]) -> Medians {
        let median = |pick: &dyn Fn(&Round) -> f64| cpu::median(rounds.iter().map(pick));
        let rate = |pick: fn(&Round) -> Rate| Rate {
            per_s: median(&|r| pick(r).per_s),
            cpu_us: median(&|r| pick(r).cpu_us),
        };
        Medians {
            ratio: median(&|r| r.real.per_s / r.bare.per_s),
            real: rate(|r| r.real),
            bare: rate(|r| r.bare),
            writer_us: median(&|r| r.writer_us),
            log_cost: median(&|r| r.real.cpu_us / r.unlogged.cpu_us - 1.0),
            unlogged_cpu_us: median(&|r| r.unlogged.cpu_us),
        }
    }
}

struct Probe {
    client: Arc<rustls::ClientConfig>,
    id: Uuid,
    signer: shared::Signer,
}

/// A report of 50 hosts with three ports each: about 20 KB signed, the size issue 3 specifies.
fn report(probe: Uuid, sequence: u64) -> Report {
    let now = OffsetDateTime::now_utc();
    let port = |port, state, banner: Option<&str>| Port {
        port,
        protocol: Protocol::Tcp,
        state,
        banner: banner.map(String::from),
    };
    let hosts = (1..=50u8)
        .map(|i| Host {
            address: format!("10.20.0.{i}").parse().expect("a valid address"),
            hostname: Some(format!("host-{i}.kc.example.net")),
            state: HostState::Up,
            discovery: None,
            os: OsGuess {
                family: OsFamily::Linux,
                confidence: 90,
                evidence: vec!["SSH banner: OpenSSH Debian".into()],
            },
            ports: vec![
                port(
                    22,
                    PortState::Open,
                    Some("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
                ),
                port(80, PortState::Open, None),
                port(443, PortState::Closed, None),
            ],
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        report_id: Uuid::now_v7(),
        probe_id: probe,
        site: "bench".into(),
        harvester_version: "bench".into(),
        sequence,
        unsent_reports: 0,
        generated_at: now,
        interval_s: 300,
        scan: ScanParameters {
            targets: vec!["10.20.0.0/16".into()],
            ports: "22,80,443".into(),
            started_at: now,
            finished_at: now,
            concurrency: 256,
            min_timeout_ms: 100,
            max_timeout_ms: 1000,
            retries: 1,
            rate: 0,
            discovery: true,
        },
        hosts_up: 50,
        hosts,
        wan: Vec::new(),
    }
}

fn client_config(
    identity: &harvester::state::Identity,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    Ok(Arc::new(harvester::tls::mtls(identity)?))
}

/// The peer: the same TLS configuration as the nester's ingest, and a handler that reads
/// the body and answers 201 without looking at it.
async fn bare_server(dir: &DataDir) -> anyhow::Result<SocketAddr> {
    let acceptor = tokio_rustls::TlsAcceptor::from(
        nester::net::tls::ingest(dir, &[nester::pki::CaCert::load(dir)?.der])?
            .0
            .config,
    );
    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
        let _ = req.into_body().collect().await?;
        Ok::<_, hyper::Error>(
            Response::builder()
                .status(201)
                .body(Full::new(Bytes::from_static(b"{\"status\":\"stored\"}")))
                .expect("static response"),
        )
    });
    peer::serve_tls(acceptor, service).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[])?;
    let mut config = Config::loopback(dir.root());
    config.ingest.enroll_per_minute = 100_000;
    let server = Server::open(&config)?;
    let db = server.state.db.clone();
    let ca = server.state.authorities.get().issuing.cert.clone();
    let listeners = Listeners::bind(&config).await?;
    let nester_addr = listeners.ingest_addr();
    tokio::spawn(server.run(listeners, std::future::pending()));
    let bare_addr = bare_server(&dir).await?;

    eprintln!("enrolling {} probes...", args.probes);
    let token = nester::ops::enrollment::create(
        &db,
        nester::db::audit::Actor::cli(),
        &ca,
        nester_addr.to_string(),
        "bench",
        time::Duration::hours(1),
        args.probes as u32,
    )
    .await?
    .encode();
    let mut probes = Vec::new();
    for i in 0..args.probes {
        let state = temp.path().join(format!("probe-{i}"));
        harvester::enroll::enroll(&token, &state).await?;
        let identity = harvester::state::Identity::load(&state)?;
        probes.push(Probe {
            client: client_config(&identity)?,
            id: identity.probe_id,
            signer: identity.signer()?,
        });
    }

    // Looked up once the writer has written (enrollment): a thread names itself as it starts.
    let writer = *cpu::threads_named("db-writer")?
        .first()
        .context("the nester's database writer thread is not running")?;
    let (unlogged_addr, access_log) = unlogged_copy(&config, temp.path()).await?;
    let detection_ns = detection_cost();
    eprintln!("detection on a stored report's event: {detection_ns:.0} ns");

    // Signing is the harvesters' work, not the nester's: done before the clock starts.
    let mut next_sequence = vec![1u64; args.probes];
    let mut sign_batch =
        |count: usize| -> anyhow::Result<Vec<(Arc<rustls::ClientConfig>, Vec<Bytes>)>> {
            let per_probe = count.div_ceil(args.probes);
            probes
                .iter()
                .zip(next_sequence.iter_mut())
                .map(|(p, seq)| {
                    let reports = (0..per_probe)
                        .map(|_| {
                            let r = report(p.id, *seq);
                            *seq += 1;
                            Ok(Bytes::from(p.signer.sign_report(&r)?))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    Ok((p.client.clone(), reports))
                })
                .collect()
        };
    let sample = sign_batch(1)?;
    let size = sample[0].1[0].len();
    eprintln!("report size: {size} bytes of JWS");

    // Where the nester's CPU goes, one core: verification of one report, alone.
    let verifier = shared::Verifier::new(nester::pki::CaCert::load(&dir)?.der)?;
    let jws = &sample[0].1[0];
    let started = Instant::now();
    const VERIFY_ROUNDS: u32 = 2000;
    for _ in 0..VERIFY_ROUNDS {
        verifier.verify(jws, rustls_pki_types::UnixTime::now())?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(VERIFY_ROUNDS);
    let payload = shared::jws::payload_unverified(jws)?;
    let started = Instant::now();
    for _ in 0..VERIFY_ROUNDS {
        shared::Report::from_json(&payload)?;
    }
    let parse_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(VERIFY_ROUNDS);
    eprintln!(
        "verify (chain, signature, parse): {verify_us:.0} us per report, of which JSON parse {parse_us:.0} us"
    );
    let sqlite_rate = raw_sqlite(&temp.path().join("raw.db"), jws, 20_000)?;
    eprintln!("raw SQLite: {sqlite_rate:.0} blobs/s");

    // Rounds that take turns going first, each a bare run and a nester run of the same
    // size: the machine is noisy, and a slow minute should hit both servers, not one.
    let mut rows = Vec::new();
    for (mode, count, keep_alive) in [
        (
            "(a) new TLS connection per report",
            args.new_connection_reports,
            false,
        ),
        ("(b) kept-alive connections", args.reports, true),
    ] {
        let per_round = count.div_ceil(args.rounds);
        let mut rounds = Vec::new();
        for round in 1..=args.rounds {
            let mut run = async |server, addr| {
                let work = sign_batch(per_round)?;
                eprintln!("{mode}, round {round}/{}: {server}...", args.rounds);
                peer::post_reports(addr, work, keep_alive)
                    .await
                    .with_context(|| format!("{server} run"))
            };
            // Each server goes first, second and third in turn.
            let mut order = [
                ("nester", nester_addr),
                ("nester, access log off", unlogged_addr),
                ("bare server", bare_addr),
            ];
            order.rotate_left(round % 3);
            let mut rates = Vec::new();
            let mut writer_us = 0.0;
            for (server, addr) in order {
                let writer_before = cpu::thread_us(writer)?;
                rates.push((server, run(server, addr).await?));
                if addr == nester_addr {
                    writer_us = (cpu::thread_us(writer)? - writer_before) / per_round as f64;
                }
            }
            let rate = |name| rates.iter().find(|(s, _)| *s == name).map(|(_, r)| *r);
            let (Some(real), Some(unlogged), Some(bare)) = (
                rate("nester"),
                rate("nester, access log off"),
                rate("bare server"),
            ) else {
                anyhow::bail!("a run is missing");
            };
            eprintln!(
                "{mode}, round {round}/{}: nester {:.0}/s, bare {:.0}/s: {:.2}x; CPU per report \
                 {:.0} and {:.0} us (writer {writer_us:.0}; access log off {:.0} us); cores busy \
                 {:.2} and {:.2}",
                args.rounds,
                real.per_s,
                bare.per_s,
                real.per_s / bare.per_s,
                real.cpu_us,
                bare.cpu_us,
                unlogged.cpu_us,
                real.busy_cores(),
                bare.busy_cores(),
            );
            rounds.push(Round {
                real,
                unlogged,
                bare,
                writer_us,
            });
        }
        rows.push((mode, Round::medians(&rounds)));
    }

    let db = rusqlite::Connection::open(dir.database())?;
    let stored: i64 = db.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))?;
    println!();
    println!(
        "ingest benchmark: {} probes, {size}-byte signed reports (50 hosts), synchronous=FULL",
        args.probes
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "medians of {} rounds; cores busy: CPU time over wall time, of {cores}",
        args.rounds
    );
    println!(
        "{:<36} {:>14} {:>14} {:>8} {:>22} {:>10} {:>16}",
        "mode",
        "nester rep/s",
        "bare rep/s",
        "ratio",
        "CPU us/report n / b",
        "writer us",
        "cores busy n / b"
    );
    for (mode, m) in &rows {
        println!(
            "{mode:<36} {:>14.0} {:>14.0} {:>7.2}x {:>14.0} / {:>5.0} {:>10.0} {:>9.2} / {:>4.2}",
            m.real.per_s,
            m.bare.per_s,
            m.ratio,
            m.real.cpu_us,
            m.bare.cpu_us,
            m.writer_us,
            m.real.busy_cores(),
            m.bare.busy_cores(),
        );
    }
    println!("targets (issue 3): (a) ratio >= 0.6x; (b) nester >= 10000 reports/s");
    println!();
    println!(
        "{:<36} {:>22} {:>16}",
        "access log and detection (issue 21)", "CPU us/report on / off", "log cost"
    );
    for (mode, m) in &rows {
        println!(
            "{mode:<36} {:>14.0} / {:>5.0} {:>15.1}%",
            m.real.cpu_us,
            m.unlogged_cpu_us,
            m.log_cost * 100.0
        );
    }
    let lines = std::fs::read_to_string(&access_log).map_or(0, |t| t.lines().count());
    println!(
        "detection on the request path: {detection_ns:.0} ns per report; access log lines \
         written: {lines}"
    );
    println!("target (issue 21): access log and detection add < 5% to the CPU per report");
    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            std::fs::metadata(format!("{}{suffix}", dir.database().display())).ok()
        })
        .map(|m| m.len())
        .sum();
    println!(
        "reports stored: {stored}, database {:.1} MB ({} bytes per report)",
        bytes as f64 / 1e6,
        bytes / stored.max(1) as u64
    );
    Ok(())
}

/// A second nester from a copy of the first's data dir (a consistent snapshot of its database,
/// so the enrolled probes are known), with the access log off; its address and the first
/// nester's access log file.
async fn unlogged_copy(
    config: &Config,
    temp: &std::path::Path,
) -> anyhow::Result<(SocketAddr, std::path::PathBuf)> {
    let from = DataDir::new(config.data_dir.clone());
    let to = DataDir::new(temp.join("nester-unlogged"));
    std::fs::create_dir_all(to.root().join("pki"))?;
    for entry in std::fs::read_dir(from.root().join("pki"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.root().join("pki").join(entry.file_name()))?;
    }
    rusqlite::Connection::open(from.database())?
        .execute("VACUUM INTO ?1", [to.database().to_string_lossy()])?;
    let mut copy = config.clone();
    copy.data_dir = to.root().to_path_buf();
    copy.log.access = nester::config::Destination::Off;
    let server = Server::open(&copy)?;
    let listeners = Listeners::bind(&copy).await?;
    let addr = listeners.ingest_addr();
    tokio::spawn(server.run(listeners, std::future::pending()));
    Ok((addr, from.root().join("logs").join("access.log")))
}

/// What detection does on the request path for a stored report's event, in ns: it finds
/// no rule for it.
fn detection_cost() -> f64 {
    const EVENTS: u32 = 1_000_000;
    let started = Instant::now();
    let mut rules = 0;
    for i in 0..EVENTS {
        let event = nester::threat::Event {
            ip: std::net::IpAddr::from([10, 20, 0, (i % 250) as u8]),
            refused: None,
            method: "POST",
            route: std::hint::black_box("/v1/reports"),
            status: std::hint::black_box(201),
            code: None,
            who: Some("probe:bench"),
        };
        rules += usize::from(nester::threat::Rule::of(&event).is_some());
    }
    assert_eq!(rules, 0, "a stored report counted for a rule");
    started.elapsed().as_secs_f64() * 1e9 / f64::from(EVENTS)
}

/// The storage peer: raw SQLite writing the same blobs, WAL, synchronous=FULL, 16 per
/// transaction (what group commit does with 16 busy probes). Returns rows per second.
fn raw_sqlite(path: &std::path::Path, jws: &[u8], rows: usize) -> anyhow::Result<f64> {
    let mut db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch("CREATE TABLE r (id TEXT PRIMARY KEY, probe TEXT, seq INTEGER, jws BLOB)")?;
    let started = Instant::now();
    for batch in 0..rows / 16 {
        let tx = db.transaction()?;
        for i in 0..16 {
            tx.execute(
                "INSERT INTO r VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    Uuid::now_v7().to_string(),
                    "probe",
                    (batch * 16 + i) as i64,
                    jws
                ],
            )?;
        }
        tx.commit()?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
