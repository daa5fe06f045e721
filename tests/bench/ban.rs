//! What a flood from a banned address costs the nester, at 10,000 connection attempts a
//! second. Three servers in the same run, each on a runtime of one thread whose CPU time is
//! read from /proc, flooded in turn by client threads attempting connections from the banned
//! address at a fixed rate (each attempt given up after 20 ms). The kernel's listen-queue
//! drops during each run are printed: an attempt dropped there never reached the server, so a
//! run with drops understates its cost.
//!
//! - a bare tokio accept-and-reset loop, the peer;
//! - the nester refusing in its accept loop (`[threats] kernel_after = 0`): an accept, a
//!   reset and an access log line per attempt;
//! - the nester as shipped, which hands a flooding banned prefix to the kernel (a socket
//!   filter on its listeners) after `kernel_after` refusals in a second.
//!
//! The clients' own CPU per attempt is printed too: on loopback the kernel's work for each
//! SYN (including dropping it) is done in the sender's context, so it shows there.
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
    /// Client threads attempting connections from the banned address.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Connection attempts per second, all clients together.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
}

const BANNED: &str = "127.0.0.9";
/// An attempt is given up after this long (a dropped SYN is never answered).
const GIVE_UP: Duration = Duration::from_millis(20);

/// This thread's id, for `cpu::thread_us`.
fn this_thread() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Attempts connections from the banned address to `to` at `args.rate` a second, with
/// `args.clients` threads, for `time`; returns the attempts and the clients' CPU µs in all.
fn flood(to: SocketAddr, args: &Args, time: Duration) -> (u64, f64) {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    // Each client thread starts its share of the attempts every millisecond.
    let per_ms = (args.rate as f64 / 1000.0 / args.clients as f64).max(0.001);
    let threads: Vec<_> = (0..args.clients)
        .map(|_| {
            let (done, count) = (done.clone(), count.clone());
            std::thread::spawn(move || {
                let tid = this_thread();
                let before = cpu::thread_us(tid).unwrap_or(0.0);
                let client = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a client runtime");
                client.block_on(async {
                    let from: SocketAddr = format!("{BANNED}:0").parse().expect("an address");
                    let mut tick = tokio::time::interval(Duration::from_millis(1));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    let (mut due, mut started) = (0.0, 0u64);
                    while !done.load(Ordering::Relaxed) {
                        tick.tick().await;
                        due += per_ms;
                        while (started as f64) < due {
                            started += 1;
                            count.fetch_add(1, Ordering::Relaxed);
                            tokio::spawn(async move {
                                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                                    return;
                                };
                                if socket.bind(from).is_ok() {
                                    let _ = tokio::time::timeout(GIVE_UP, socket.connect(to)).await;
                                }
                            });
                        }
                    }
                    // Let the last attempts end.
                    tokio::time::sleep(GIVE_UP * 2).await;
                });
                cpu::thread_us(tid).unwrap_or(0.0) - before
            })
        })
        .collect();
    std::thread::sleep(time);
    done.store(true, Ordering::Relaxed);
    let client_us = threads.into_iter().filter_map(|t| t.join().ok()).sum();
    (count.load(Ordering::Relaxed), client_us)
}

/// One server's figures: attempts per second, the share of a core the server's thread used,
/// CPU µs per attempt of the server's thread and of the clients, and the attempts the
/// kernel's listen queue dropped.
struct Figures {
    rate: f64,
    core_share: f64,
    server_us: f64,
    client_us: f64,
    listen_drops: u64,
}

/// The kernel's count of connections dropped for a full listen queue (`ListenDrops`).
fn listen_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenDrops")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Floods `to` (served by the threads named `name`) for a warm-up second, then measures.
fn measure(name: &str, to: SocketAddr, args: &Args) -> anyhow::Result<Figures> {
    let threads = cpu::threads_named(name)?;
    anyhow::ensure!(!threads.is_empty(), "no thread named {name}");
    let server_cpu = || -> anyhow::Result<f64> { threads.iter().map(|t| cpu::thread_us(*t)).sum() };
    flood(to, args, Duration::from_secs(1));
    let (before, drops) = (server_cpu()?, listen_drops());
    let started = Instant::now();
    let (n, client_us) = flood(to, args, Duration::from_secs(args.seconds));
    let elapsed = started.elapsed().as_secs_f64();
    let used = server_cpu()? - before;
    Ok(Figures {
        rate: n as f64 / elapsed,
        core_share: used / (elapsed * 1e6),
        server_us: used / n.max(1) as f64,
        client_us: client_us / n.max(1) as f64,
        listen_drops: listen_drops() - drops,
    })
}

fn runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// A nester with `BANNED` banned, alone on the one-thread runtime `name`.
fn nester(
    temp: &std::path::Path,
    name: &str,
    kernel_after: u32,
) -> anyhow::Result<(tokio::runtime::Runtime, SocketAddr)> {
    let dir = DataDir::new(temp.join(name));
    nester::cli::init::init(&dir, &[])?;
    let mut config = Config::loopback(dir.root());
    config.threats.allow = vec!["127.0.0.1/32".parse()?];
    config.threats.kernel_after = kernel_after;
    let rt = runtime(name)?;
    let web = rt.block_on(async {
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
        anyhow::ensure!(threats.banned(BANNED.parse()?), "the ban did not take");
        anyhow::Ok(web)
    })?;
    Ok((rt, web))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let (user_rt, user_space) = nester(temp.path(), "nester-user", 0)?;
    let (kernel_rt, kernel) = nester(temp.path(), "nester-kernel", 50)?;

    // The peer: a bare accept-and-reset loop, alone on its own one-thread runtime.
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
        "flooding each for 1 + {} s at {} attempts/s, {} client threads...",
        args.seconds, args.rate, args.clients
    );
    let rows = [
        (
            "bare accept-and-reset loop",
            measure("bare-rt", bare, &args)?,
        ),
        (
            "nester, accept loop refuses",
            measure("nester-user", user_space, &args)?,
        ),
        (
            "nester, kernel drops the flood",
            measure("nester-kernel", kernel, &args)?,
        ),
    ];
    let bare_us = rows[0].1.server_us;
    println!();
    println!(
        "banned flood from {BANNED} at {} attempts/s, {} client threads:",
        args.rate, args.clients
    );
    println!(
        "  {:<32} {:>11} {:>12} {:>15} {:>9} {:>15} {:>13}",
        "server",
        "attempts/s",
        "% of a core",
        "server us each",
        "vs bare",
        "client us each",
        "listen drops"
    );
    for (name, f) in &rows {
        println!(
            "  {name:<32} {:>11.0} {:>11.1}% {:>15.2} {:>8.2}x {:>15.1} {:>13}",
            f.rate,
            f.core_share * 100.0,
            f.server_us,
            f.server_us / bare_us.max(0.001),
            f.client_us,
            f.listen_drops,
        );
    }
    println!(
        "target (issue 21): a banned flood of 10,000 connections/s costs under 10 % of a core"
    );
    drop((user_rt, kernel_rt, bare_rt));
    Ok(())
}
