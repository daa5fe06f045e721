//! A synthetic fleet for the benchmarks: probes enrolled with a nester for real, whose
//! reports are signed by their own keys, with a little churn, five minutes apart; and the
//! seeding of a database with them (the insert path) and with raw WAN samples.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use nester::db::{Db, Inserted, SignedReport};
use nester::pki::CaCert;
use time::{Duration, OffsetDateTime};

use crate::cpu::{Meter, Rate};
use crate::peer;
use crate::synthetic::{Rng, SimProbe, site_hosts, wan};

/// Seconds between two reports of a probe.
pub const INTERVAL_S: i64 = 300;

// The fleet and history to seed, as the benchmarks take them on the command line (a plain
// comment: clap would make a doc comment the benchmark's own description).
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    #[arg(long, default_value_t = 100)]
    pub probes: usize,
    /// Days of WAN history.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Days of signed reports (the retention window).
    #[arg(long, default_value_t = 14)]
    pub report_days: i64,
    /// Hosts per site.
    #[arg(long, default_value_t = 20)]
    pub hosts: u16,
}

#[derive(Clone)]
pub struct Fleet {
    pub sims: Vec<SimProbe>,
    pub signers: Vec<Arc<shared::Signer>>,
    pub clients: Vec<Arc<rustls::ClientConfig>>,
    pub rngs: Vec<Rng>,
}

impl Fleet {
    /// `seed.probes` probes of `seed.hosts` hosts each, enrolled for real with the nester
    /// whose database, CA and ingest listener these are; their state directories under `dir`.
    pub async fn enroll(
        db: &Db,
        ca: &CaCert,
        ingest: SocketAddr,
        seed: &SeedArgs,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let (probes, hosts) = (seed.probes, seed.hosts);
        eprintln!("enrolling {probes} probes...");
        let token = nester::ops::enrollment::create(
            db,
            nester::db::audit::Actor::cli(),
            ca,
            ingest.to_string(),
            "bench",
            Duration::hours(1),
            probes as u32,
        )
        .await?
        .encode();
        let mut fleet = Self {
            sims: Vec::new(),
            signers: Vec::new(),
            clients: Vec::new(),
            rngs: Vec::new(),
        };
        for i in 0..probes {
            let state = dir.join(format!("probe-{i}"));
            harvester::enroll::enroll(&token, &state).await?;
            let identity = harvester::state::Identity::load(&state)?;
            let mut rng = Rng::new(i as u64 + 1);
            let site_hosts = site_hosts((i % 250) as u8, hosts, &mut rng);
            let mut sim = SimProbe::new(identity.probe_id, "bench", site_hosts);
            sim.interval_s = INTERVAL_S as u64;
            fleet.sims.push(sim);
            fleet.signers.push(Arc::new(identity.signer()?));
            fleet
                .clients
                .push(Arc::new(harvester::tls::mtls(&identity)?));
            fleet.rngs.push(rng);
        }
        Ok(fleet)
    }

    /// The next report of probe `i` at `at`, signed, with a little churn: now and then a
    /// port opens or closes, a host leaves or returns.
    pub fn next(&mut self, i: usize, at: OffsetDateTime) -> anyhow::Result<SignedReport> {
        let (sim, rng) = (&mut self.sims[i], &mut self.rngs[i]);
        if rng.below(50) == 0 {
            let h = rng.below(sim.hosts.len() as u64) as usize;
            let port = [22u16, 80, 443, 3389, 8080][rng.below(5) as usize];
            let host = &mut sim.hosts[h];
            if host.open.iter().any(|(p, _)| *p == port) {
                host.close_port(port);
            } else {
                host.open_port(port, None);
            }
        }
        if rng.below(200) == 0 {
            let h = rng.below(sim.hosts.len() as u64) as usize;
            sim.hosts[h].up = !sim.hosts[h].up;
        }
        let rtt = 20.0 + 5.0 * rng.unit();
        let received = if rng.below(20) == 0 { 8 } else { 10 };
        let report = sim.report(
            at,
            vec![wan(
                "192.0.2.1",
                10,
                received,
                Some((rtt - 2.0, rtt, rtt + 6.0)),
            )],
        );
        let jws = self.signers[i].sign_report(&report)?.into_bytes();
        Ok(SignedReport::own(report, "bench".into(), jws)?)
    }

    /// `count` signed reports per probe from `start`, five minutes apart. Signed in the
    /// order they will arrive (each probe's n-th report, then the (n+1)-th), so the UUID v7
    /// report ids rise with arrival as a live fleet's do, instead of falling into one range
    /// per probe.
    pub fn sign(
        &mut self,
        start: OffsetDateTime,
        count: usize,
    ) -> anyhow::Result<Vec<Vec<SignedReport>>> {
        let mut batches: Vec<Vec<SignedReport>> = (0..self.sims.len())
            .map(|_| Vec::with_capacity(count))
            .collect();
        for n in 0..count {
            for (i, reports) in batches.iter_mut().enumerate() {
                reports.push(self.next(i, start + Duration::seconds(INTERVAL_S * n as i64))?);
            }
        }
        Ok(batches)
    }
}

/// How the ingest comparison hands reports to the nester.
#[derive(Clone, Copy, PartialEq)]
pub enum IngestPath {
    /// `Db::insert_report`, as the ingest handler calls it once a report is verified.
    Storage,
    /// HTTPS with the probe's certificate: TLS, verification and storage.
    EndToEnd,
}

pub const PATHS: [IngestPath; 2] = [IngestPath::Storage, IngestPath::EndToEnd];

impl IngestPath {
    pub fn name(self) -> &'static str {
        match self {
            Self::Storage => "storage path",
            Self::EndToEnd => "end to end (mTLS, verify, store)",
        }
    }
}

/// How reports reach a nester: its database directly, or each probe's kept-alive mTLS
/// connection to its ingest listener.
pub enum Lane {
    Storage(Db),
    Https(Vec<SendRequest<Full<Bytes>>>),
}

impl Lane {
    pub async fn open(
        path: IngestPath,
        db: &Db,
        ingest: SocketAddr,
        fleet: &Fleet,
    ) -> anyhow::Result<Self> {
        Ok(match path {
            IngestPath::Storage => Self::Storage(db.clone()),
            IngestPath::EndToEnd => {
                let mut senders = Vec::new();
                for client in &fleet.clients {
                    senders.push(peer::connect(ingest, client.clone()).await?);
                }
                Self::Https(senders)
            }
        })
    }

    /// Delivers each probe's reports in order, the probes concurrently (group commit).
    pub async fn deliver(&mut self, batches: Vec<Vec<SignedReport>>) -> anyhow::Result<Rate> {
        match self {
            Self::Storage(db) => store(db, batches).await,
            Self::Https(senders) => {
                let total = batches.iter().map(Vec::len).sum::<usize>();
                let meter = Meter::start()?;
                let tasks: Vec<_> = std::mem::take(senders)
                    .into_iter()
                    .zip(batches)
                    .map(|(mut sender, reports)| {
                        tokio::spawn(async move {
                            for report in reports {
                                peer::post_report(&mut sender, Bytes::from(report.into_jws()))
                                    .await?;
                            }
                            anyhow::Ok(sender)
                        })
                    })
                    .collect();
                for task in tasks {
                    senders.push(task.await??);
                }
                meter.rate(total)
            }
        }
    }
}

/// Inserts each probe's reports in order, the probes concurrently.
pub async fn store(db: &Db, batches: Vec<Vec<SignedReport>>) -> anyhow::Result<Rate> {
    let total = batches.iter().map(Vec::len).sum::<usize>();
    let meter = Meter::start()?;
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|reports| {
            let db = db.clone();
            tokio::spawn(async move {
                for report in reports {
                    let outcome = db.insert_report(report, db.expect_write()).await?;
                    if outcome != Inserted::Stored {
                        bail!("not stored: {outcome:?}");
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    meter.rate(total)
}

/// A year of raw WAN samples, written straight into SQLite (the retention pass then rolls
/// them up, as it would have over the year).
fn seed_wan(
    path: &std::path::Path,
    probes: &[SimProbe],
    from: i64,
    to: i64,
) -> anyhow::Result<u64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut rng = Rng::new(99);
    let mut n = 0;
    for p in probes {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO wan_samples (probe_id, target, at_ms, method, sent, received, min_ms, median_ms, max_ms)
                 VALUES (?1, '192.0.2.1', ?2, 'icmp', 10, ?3, ?4, ?5, ?6)",
            )?;
            let mut at = from;
            while at < to {
                let rtt = 20.0 + 5.0 * rng.unit();
                let received = if rng.below(20) == 0 { 8 } else { 10 };
                stmt.execute(rusqlite::params![
                    p.probe_id.to_string(),
                    at,
                    received,
                    rtt - 2.0,
                    rtt,
                    rtt + 6.0
                ])?;
                at += INTERVAL_S * 1000;
                n += 1;
            }
        }
        tx.commit()?;
    }
    Ok(n)
}

/// What seeding a year took.
pub struct Seeded {
    /// Reports stored through the insert path, and at what rate.
    pub reports: usize,
    pub report_rate: f64,
    /// Raw WAN samples written before the reports' window, and in how long.
    pub samples: u64,
    pub samples_s: f64,
}

/// `days` of history for the fleet, ending at `now`: signed reports for the last
/// `report_days` through the real insert path (history intervals, change feed, WAN
/// samples), raw WAN samples before that, written straight to the database file at
/// `database` for the retention pass to roll up.
pub async fn seed_year(
    db: &Db,
    database: &Path,
    fleet: &mut Fleet,
    now: OffsetDateTime,
    days: i64,
    report_days: i64,
) -> anyhow::Result<Seeded> {
    let probes = fleet.sims.len();
    let reports_from = now - Duration::days(report_days);
    let per_probe = (report_days * 86_400 / INTERVAL_S) as usize;
    eprintln!(
        "seeding {} reports ({report_days} days × {probes} probes) through the insert path...",
        per_probe * probes,
    );
    // A day at a time: signed, the 14 days would take over 10 GB.
    let (mut seeded, mut seconds) = (0, 0.0);
    let per_day = (86_400 / INTERVAL_S) as usize;
    while seeded < per_probe {
        let count = per_day.min(per_probe - seeded);
        let from = reports_from + Duration::seconds(INTERVAL_S * seeded as i64);
        let rate = store(db, fleet.sign(from, count)?).await?;
        seconds += (count * probes) as f64 / rate.per_s;
        seeded += count;
    }
    let report_rate = (per_probe * probes) as f64 / seconds;
    eprintln!("  {report_rate:.0} reports/s");
    eprintln!(
        "seeding {} days of raw WAN samples before that...",
        days - report_days
    );
    let started = Instant::now();
    let samples = seed_wan(
        database,
        &fleet.sims,
        nester::clock::to_ms(now - Duration::days(days)),
        nester::clock::to_ms(reports_from),
    )?;
    let samples_s = started.elapsed().as_secs_f64();
    eprintln!("  {samples} samples in {samples_s:.0} s");
    Ok(Seeded {
        reports: per_probe * probes,
        report_rate,
        samples,
        samples_s,
    })
}

/// The bytes of an SQLite database and its write-ahead log.
pub fn file_bytes(path: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
        .map(|m| m.len())
        .sum()
}
