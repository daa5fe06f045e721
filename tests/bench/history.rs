//! History benchmark: a year of data for 100 probes reporting every 5 minutes, then what it
//! costs to keep and to read.
//!
//!   cargo run --release -p seahawks-tests --bin history-bench -- [--probes 100] [--days 365]
//!
//! Seeding: WAN samples for the whole year are written raw and rolled up by the real retention
//! pass; signed reports for the retention window (14 days) go through the real insert path
//! (history intervals, change feed, WAN samples). Then, in the same run:
//! - ingest rate into that database against an empty one, the same reports: through the
//!   storage path alone, and end to end (signed reports posted over mTLS to the ingest
//!   listener, verified and stored, from one kept-alive connection per probe). Each round
//!   gives both nesters the same reports in slices that take turns (ABBA), so that the
//!   machine speeding up or slowing down favours neither; an empty nester is measured once
//!   its start-up retention pass is over;
//! - the database size after rollups;
//! - p50 / p99 and throughput of the probe list, the probe page's data, a report fetch and a
//!   host search under 64 HTTPS keep-alive clients, against a bare axum + rustls "hello".
//!
//! Record the figures in docs/benchmarks.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

mod history_ingest;
mod history_reads;

use history_ingest::{Run, compare};
use history_reads::load;

use anyhow::{Context, bail};
use clap::Parser;
use nester::config::Config;
use nester::datadir::DataDir;
use nester::db::Db;
use nester::server::{Listeners, Server};
use seahawks_tests::cpu;
use seahawks_tests::fleet::{Fleet, INTERVAL_S, PATHS, SeedArgs, file_bytes, seed_year};
use seahawks_tests::peer;
use time::{Duration, OffsetDateTime};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    seed: SeedArgs,
    /// Concurrent HTTPS keep-alive clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Requests per endpoint, after a warm-up of 8 per client.
    #[arg(long, default_value_t = 32_000)]
    requests: usize,
    /// Reports in each ingest-rate run.
    #[arg(long, default_value_t = 6000)]
    ingest_reports: usize,
    /// Ingest comparisons (year-old against empty database), taking turns going first,
    /// after one warm-up round that is not counted.
    #[arg(long, default_value_t = 9)]
    ingest_rounds: usize,
    /// Stop after the ingest comparison (no reads).
    #[arg(long)]
    ingest_only: bool,
    /// Only the ingest paths whose name contains this ("storage", "end to end").
    #[arg(long, default_value = "")]
    ingest_paths: String,
    /// Only the reads whose name contains this.
    #[arg(long, default_value = "")]
    reads: String,
}

/// A running nester: its database, its ingest address and its database writer thread.
struct Target {
    db: Db,
    ingest: SocketAddr,
    writer: u32,
}

/// Opens a nester's database: returns it with the id of the writer thread it started.
fn open_server(config: &Config) -> anyhow::Result<(Server, u32)> {
    let before = cpu::threads_named("db-writer")?;
    let server = Server::open(config)?;
    // A thread names itself once it runs: wait for it, a little.
    for _ in 0..200 {
        let new: Vec<u32> = cpu::threads_named("db-writer")?
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        match new[..] {
            [] => std::thread::sleep(std::time::Duration::from_millis(10)),
            [writer] => return Ok((server, writer)),
            _ => bail!("expected one new db-writer thread, found {new:?}"),
        }
    }
    bail!("no db-writer thread after 2 s")
}

/// A nester with an empty database that trusts the same CA and knows the same enrolled
/// probes (their rows copied, nothing else): what the year-old database is compared with.
/// It stops when the returned sender is dropped.
async fn empty_nester(
    year_old: &DataDir,
    root: &std::path::Path,
) -> anyhow::Result<(Target, tokio::sync::oneshot::Sender<()>)> {
    let dir = DataDir::new(root);
    dir.create()?;
    // The whole pki directory: the CA, and the listeners' certificates and keys.
    for entry in std::fs::read_dir(year_old.root().join("pki"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.root().join("pki").join(entry.file_name()))
            .with_context(|| format!("copying {}", entry.path().display()))?;
    }
    let mut config = Config::loopback(dir.root());
    config.retention.every = std::time::Duration::from_secs(365 * 86_400);
    let (server, writer) = open_server(&config)?;
    let db = server.state.db.clone();
    let enrolled = year_old.database();
    db.write(move |c| {
        c.execute(
            "ATTACH ?1 AS enrolled",
            [enrolled.to_string_lossy().into_owned()],
        )?;
        c.execute_batch(
            "INSERT INTO probes (probe_id, site, harvester_version, first_seen_ms, cert_serial,
                                 cert_expires_ms)
             SELECT probe_id, site, harvester_version, first_seen_ms, cert_serial, cert_expires_ms
             FROM enrolled.probes;
             DETACH enrolled;",
        )?;
        Ok(())
    })
    .await?;
    let listeners = Listeners::bind(&config).await?;
    let ingest = listeners.ingest_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(listeners, async move {
        let _ = stopped.await;
    }));
    // A nester starts with a retention pass (hundreds of small commits): measured, it would
    // slow the empty database's first slice down. Wait until the writer is idle.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let before = cpu::thread_us(writer)?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if cpu::thread_us(writer)? - before < 1000.0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the empty nester's writer is still busy after a minute");
        }
    }
    Ok((Target { db, ingest, writer }, stop))
}

/// The peer: axum answering "hello" behind the nester's own web TLS configuration.
async fn bare_server(dir: &DataDir, config: &Config) -> anyhow::Result<SocketAddr> {
    let acceptor = tokio_rustls::TlsAcceptor::from(nester::net::tls::web(dir, &config.web)?.config);
    let app = axum::Router::new().fallback(|| async { "hello" });
    peer::serve_tls(acceptor, hyper_util::service::TowerToHyperService::new(app)).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[])?;
    let mut config = Config::loopback(dir.root());
    config.ingest.enroll_per_minute = 100_000;
    // The bench runs retention itself, once the year is in.
    config.retention.every = std::time::Duration::from_secs(365 * 86_400);
    let (server, writer) = open_server(&config)?;
    let db = server.state.db.clone();
    let ca = server.state.authorities.get().issuing.cert.clone();
    let listeners = Listeners::bind(&config).await?;
    let (ingest_addr, web_addr) = (listeners.ingest_addr(), listeners.web_addr());
    tokio::spawn(server.run(listeners, std::future::pending()));

    let mut fleet = Fleet::enroll(&db, &ca, ingest_addr, &args.seed, temp.path()).await?;

    // The year ends this long ago, so that the ingest rounds after it never post a report
    // from the future (the ingest listener refuses those): every round of every path moves
    // the probes' clocks on by one run.
    let per_probe_run = args.ingest_reports.div_ceil(args.seed.probes);
    let rounds_span = Duration::seconds(
        INTERVAL_S * (PATHS.len() * (args.ingest_rounds + 1) * per_probe_run) as i64,
    );
    let now = OffsetDateTime::now_utc() - rounds_span - Duration::hours(1);
    let year_old = Target {
        db: db.clone(),
        ingest: ingest_addr,
        writer,
    };
    let seeded = seed_year(
        &db,
        &dir.database(),
        &mut fleet,
        now,
        args.seed.days,
        args.seed.report_days,
    )
    .await?;
    let before_rollup = file_bytes(&dir.database());
    eprintln!("retention pass (roll-ups, report pruning)...");
    let started = Instant::now();
    let done = db.retain(config.retention.policy()?, now).await?;
    let retain_s = started.elapsed().as_secs_f64();
    let after_rollup = file_bytes(&dir.database());

    // Ingest at that size against an empty database: the same reports, the same code, in
    // rounds that take turns going first (the machine is noisy); the median ratio counts.
    let mut twin = fleet.clone();
    let empty_dirs = tempfile::tempdir()?;
    let mut runs = 0;
    let mut ingest_summary = Vec::new();
    for path in PATHS {
        if !path.name().contains(&args.ingest_paths) {
            continue;
        }
        let mut rounds = Vec::new();
        // Round 0 warms up: the retention pass has just rewritten the file and the writer's
        // cache is cold, which says nothing about ingest into a database of that size.
        for round in 0..=args.ingest_rounds {
            // A new empty nester each round.
            let (empty, stop) =
                empty_nester(&dir, &empty_dirs.path().join(format!("empty-{runs}"))).await?;
            let from = now + Duration::seconds(1 + INTERVAL_S * (runs * per_probe_run) as i64);
            runs += 1;
            if round == 0 {
                eprintln!("ingest, {}: warm-up round (not counted)...", path.name());
            } else {
                eprintln!("ingest, {}: round {round}...", path.name());
            }
            let [full, empty] = compare(
                path,
                [&year_old, &empty],
                [&mut fleet, &mut twin],
                from,
                per_probe_run,
            )
            .await?;
            drop(stop);
            eprintln!(
                "  year-old {:.0}/s, empty {:.0}/s: {:.2}; CPU per report {:.0} and {:.0} us, \
                 writer {:.0} and {:.0} us",
                full.rate.per_s,
                empty.rate.per_s,
                full.rate.per_s / empty.rate.per_s,
                full.rate.cpu_us,
                empty.rate.cpu_us,
                full.writer_us,
                empty.writer_us
            );
            if round > 0 {
                rounds.push((full.rate.per_s / empty.rate.per_s, full, empty));
            }
        }
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, full, empty) = rounds[rounds.len() / 2];
        let median = |pick: fn(&(f64, Run, Run)) -> f64| cpu::median(rounds.iter().map(pick));
        let (full_cpu, empty_cpu) = (median(|r| r.1.rate.cpu_us), median(|r| r.2.rate.cpu_us));
        let (full_writer, empty_writer) = (median(|r| r.1.writer_us), median(|r| r.2.writer_us));
        let line = format!(
            "ingest, {} ({} reports per run, median of {} rounds): year-old database {:.0}/s, \
             empty {:.0}/s, ratio {ratio:.2} (target >= 0.9); CPU per report (median, all \
             threads) {full_cpu:.0} and {empty_cpu:.0} us, ratio {:.2}; database writer \
             {full_writer:.0} and {empty_writer:.0} us, ratio {:.2}",
            path.name(),
            per_probe_run * args.seed.probes,
            args.ingest_rounds,
            full.rate.per_s,
            empty.rate.per_s,
            empty_cpu / full_cpu,
            empty_writer / full_writer
        );
        println!("{line}");
        ingest_summary.push(line);
    }
    if args.ingest_only {
        return Ok(());
    }

    // Reads under 64 keep-alive clients.
    let admin = {
        let hash = nester::auth::credentials::hash_password("benchmark password 1".into()).await?;
        db.add_user(
            nester::db::audit::Actor::cli(),
            "bench".into(),
            nester::db::Role::Support,
            hash,
        )
        .await?;
        let id = db
            .user_id("bench".into())
            .await?
            .context("the bench user")?;
        nester::ops::api_tokens::create(
            &db,
            nester::db::audit::Actor::cli(),
            id,
            "bench",
            nester::db::Scope::Read,
            Duration::days(1),
        )
        .await?
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(nester::pki::CaCert::load(&dir)?.der)?;
    let tls = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let probe_ids: Vec<String> = fleet.sims.iter().map(|s| s.probe_id.to_string()).collect();
    let report_ids: Vec<String> = {
        let conn = rusqlite::Connection::open(dir.database())?;
        let mut stmt =
            conn.prepare("SELECT report_id FROM reports ORDER BY random() LIMIT 1000")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let workloads: Vec<(&str, Vec<String>)> = vec![
        ("probe list", vec!["/api/v1/probes".into()]),
        (
            "probe page data (detail)",
            probe_ids
                .iter()
                .map(|p| format!("/api/v1/probes/{p}"))
                .collect(),
        ),
        (
            "probe page data (hosts)",
            probe_ids
                .iter()
                .map(|p| format!("/api/v1/probes/{p}/hosts"))
                .collect(),
        ),
        (
            "probe page data (WAN 24 h)",
            probe_ids
                .iter()
                .map(|p| format!("/api/v1/probes/{p}/wan"))
                .collect(),
        ),
        (
            "report fetch",
            report_ids
                .iter()
                .map(|r| format!("/api/v1/reports/{r}"))
                .collect(),
        ),
        (
            "host search",
            (1..=50)
                .map(|i| format!("/api/v1/hosts?q=host-{i}.site"))
                .collect(),
        ),
    ];
    let bare = bare_server(&dir, &config).await?;
    let mut rows = Vec::new();
    for (name, paths) in workloads
        .into_iter()
        .filter(|(name, _)| name.contains(&args.reads))
    {
        eprintln!("{name}...");
        let mut measured = Vec::new();
        for (addr, paths) in [(web_addr, paths), (bare, vec!["/".into()])] {
            let paths = Arc::new(paths);
            let run = |requests| {
                load(
                    addr,
                    tls.clone(),
                    &admin,
                    paths.clone(),
                    args.clients,
                    requests,
                )
            };
            // Connections, caches and first answers are not what is measured.
            run(args.clients * 8).await?;
            measured.push(run(args.requests).await?);
        }
        let [(p50, p99, rate, bytes), (b50, b99, brate, _)] = measured[..] else {
            unreachable!("two servers measured")
        };
        rows.push((name, p50, p99, rate, b50, b99, brate, bytes));
    }

    println!();
    println!(
        "history benchmark: {} probes, {} hosts each, every {INTERVAL_S} s; {} days of WAN, {} of reports",
        args.seed.probes, args.seed.hosts, args.seed.days, args.seed.report_days
    );
    println!(
        "seed: {:.0} reports/s through the insert path; {} raw WAN samples",
        seeded.report_rate, seeded.samples
    );
    println!(
        "retention pass: {:.1} s ({} reports deleted, {} samples rolled into hours, {} hours into days)",
        retain_s, done.reports_deleted, done.samples_rolled_up, done.hours_rolled_up
    );
    println!(
        "database: {:.1} MB before roll-ups, {:.1} MB after",
        before_rollup as f64 / 1e6,
        after_rollup as f64 / 1e6
    );
    for line in &ingest_summary {
        println!("{line}");
    }
    println!(
        "{:<28} {:>8} {:>8} {:>9} {:>8} | {:>8} {:>8} {:>9} | {:>6}",
        format!("reads ({} clients)", args.clients),
        "p50 ms",
        "p99 ms",
        "req/s",
        "bytes",
        "bare p50",
        "bare p99",
        "bare r/s",
        "ratio"
    );
    for (name, p50, p99, rate, b50, b99, brate, bytes) in &rows {
        println!(
            "{name:<28} {p50:>8.2} {p99:>8.2} {rate:>9.0} {bytes:>8.0} | {b50:>8.2} {b99:>8.2} {brate:>9.0} | {:>5.2}x",
            rate / brate
        );
    }
    let stats = db.stats().await?;
    println!("largest tables:");
    for t in stats.tables.iter().take(8) {
        println!(
            "  {:<24} {:>10} rows {:>10.1} MB",
            t.name,
            t.rows.map_or("-".into(), |r| r.to_string()),
            t.bytes as f64 / 1e6
        );
    }
    Ok(())
}
