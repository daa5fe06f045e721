//! What a flood from a banned address costs the nester: its accept loop refuses each
//! connection before TLS (and logs it), and the question is how much of one core that takes
//! at 10,000 connections a second. Measured against a bare tokio accept-and-close loop in the
//! same run, each served on a runtime of one thread whose CPU time is read from /proc, while
//! client threads connect from the banned address as fast as they can.
//!
//!     cargo run --release -p seahawks-tests --bin ban-bench [-- --seconds 3]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use nester::config::Config;
use nester::datadir::DataDir;
use nester::db::audit::Actor;
use nester::server::{Listeners, Server};
use seahawks_tests::cpu;

#[derive(Parser)]
struct Args {
    /// Seconds of flood per server.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Client threads connecting from the banned address.
    #[arg(long, default_value_t = 2)]
    clients: usize,
}

const BANNED: &str = "127.0.0.9";

/// Connects from the banned address to `to` as fast as `clients` threads can, for `time`;
/// returns the connections made.
fn flood(to: SocketAddr, clients: usize, time: Duration) -> u64 {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (done, count) = (done.clone(), count.clone());
            std::thread::spawn(move || {
                let client = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                client.block_on(async {
                    let from: SocketAddr = format!("{BANNED}:0").parse().unwrap();
                    while !done.load(Ordering::Relaxed) {
                        let socket = tokio::net::TcpSocket::new_v4().unwrap();
                        socket.bind(from).unwrap();
                        if socket.connect(to).await.is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            })
        })
        .collect();
    std::thread::sleep(time);
    done.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    count.load(Ordering::Relaxed)
}

/// CPU µs of the threads named `name` per connection, during a flood of `to`.
fn measure(name: &str, to: SocketAddr, args: &Args) -> anyhow::Result<(f64, f64)> {
    let threads = cpu::threads_named(name)?;
    anyhow::ensure!(!threads.is_empty(), "no thread named {name}");
    let before: f64 = threads
        .iter()
        .map(|t| cpu::thread_us(*t))
        .sum::<anyhow::Result<f64>>()?;
    let started = Instant::now();
    let n = flood(to, args.clients, Duration::from_secs(args.seconds));
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let after: f64 = threads
        .iter()
        .map(|t| cpu::thread_us(*t))
        .sum::<anyhow::Result<f64>>()?;
    Ok((rate, (after - before) / n.max(1) as f64))
}

fn runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = DataDir::new(temp.path().join("nester"));
    nester::cli::init::init(&dir, &[])?;
    let mut config = Config::loopback(dir.root());
    config.threats.allow = vec!["127.0.0.1/32".parse()?];

    // The nester, alone on its one-thread runtime, with 127.0.0.9 banned.
    let nester_rt = runtime("nester-rt")?;
    let (web, threats) = nester_rt.block_on(async {
        let server = Server::open(&config)?;
        let threats = server.state.threats.clone();
        let listeners = Listeners::bind(&config).await?;
        let web = listeners.web_addr();
        tokio::spawn(server.run(listeners, std::future::pending()));
        let prefix = threats.prefix(BANNED.parse()?);
        threats
            .ban(
                Actor::cli(),
                prefix,
                "manual",
                "bench".into(),
                Some(Duration::from_secs(3600)),
            )
            .await?;
        anyhow::Ok((web, threats))
    })?;
    anyhow::ensure!(threats.banned(BANNED.parse()?), "the ban did not take");

    // The peer: a bare accept-and-close loop, alone on its own one-thread runtime.
    let bare_rt = runtime("bare-rt")?;
    let bare = bare_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            loop {
                if let Ok((tcp, _)) = listener.accept().await {
                    // As the nester refuses a banned address: a reset.
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                }
            }
        });
        anyhow::Ok(addr)
    })?;

    eprintln!(
        "flooding for {} s each, {} client threads...",
        args.seconds, args.clients
    );
    let (bare_rate, bare_us) = measure("bare-rt", bare, &args)?;
    let (rate, us) = measure("nester-rt", web, &args)?;
    println!();
    println!(
        "banned flood, {} client threads from {BANNED}:",
        args.clients
    );
    println!("  bare accept-and-close: {bare_rate:>8.0} connections/s, {bare_us:>5.1} us CPU each");
    println!(
        "  nester (refuse + log):  {rate:>8.0} connections/s, {us:>5.1} us CPU each ({:.2}x the bare loop)",
        us / bare_us.max(0.001)
    );
    let share = us * 10_000.0 / 1e6 * 100.0;
    println!("  at 10,000 banned connections/s: {share:.1} % of one core (target: under 10 %)");
    drop(nester_rt);
    drop(bare_rt);
    Ok(())
}
